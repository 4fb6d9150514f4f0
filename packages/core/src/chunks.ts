/**
 * Chunk planning: half-open ranges `[start, end)` over a table's key. `start: null` means
 * "from the lowest key", `end: null` means "to the highest", so every possible key, including
 * keys outside the range seen when planning, belongs to exactly one chunk.
 */
export interface KeyRange {
  /** Inclusive lower bound, or null for unbounded. */
  readonly start: string | null;
  /** Exclusive upper bound, or null for unbounded. */
  readonly end: string | null;
}

export type KeyType = 'uuid' | 'integer' | 'bigint';

const UUID_SPACE = 1n << 128n;

/** Formats a 128-bit integer as a canonical lower-case uuid string. */
export function bigintToUuid(value: bigint): string {
  if (value < 0n || value >= UUID_SPACE) throw new RangeError(`uuid value out of range: ${value}`);
  const hex = value.toString(16).padStart(32, '0');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

/** Parses a uuid string into its 128-bit integer value. */
export function uuidToBigint(uuid: string): bigint {
  const hex = uuid.replaceAll('-', '').toLowerCase();
  if (!/^[0-9a-f]{32}$/.test(hex)) throw new Error(`not a uuid: ${JSON.stringify(uuid)}`);
  return BigInt(`0x${hex}`);
}

/**
 * `count` ranges slicing the whole uuid space evenly (uuid v4 keys are uniform over it). With
 * `limit` (a row cap), only `[0, limit)` is sliced and the last range ends at `limit`.
 */
export function planUuidChunks(count: number, limit?: bigint): KeyRange[] {
  if (!Number.isSafeInteger(count) || count < 1) throw new RangeError(`chunk count must be >= 1`);
  const n = BigInt(count);
  const space = limit ?? UUID_SPACE;
  const bounds = Array.from({ length: count - 1 }, (_, i) =>
    bigintToUuid((BigInt(i + 1) * space) / n),
  );
  return toRanges(bounds, limit === undefined ? null : bigintToUuid(limit));
}

/** The uuid value below which a fraction `f` (0..1] of the uuid space lies. */
export function uuidFractionLimit(f: number): bigint | undefined {
  if (f >= 1) return undefined;
  const scale = 1_000_000_000n;
  return (UUID_SPACE * BigInt(Math.max(1, Math.floor(f * Number(scale))))) / scale;
}

/**
 * `count` ranges slicing integer keys `[min, max]` by value. Keys below min or above max still
 * fall in the first or last range.
 */
export function planIntegerChunks(
  min: bigint,
  max: bigint,
  count: number,
  /** With a row cap: the exclusive end of the last range (else it is open above). */
  end?: bigint,
): KeyRange[] {
  if (!Number.isSafeInteger(count) || count < 1) throw new RangeError(`chunk count must be >= 1`);
  if (max < min) return toRanges([], end === undefined ? null : end.toString());
  const span = max - min + 1n;
  const n = span < BigInt(count) ? span : BigInt(count);
  const bounds: string[] = [];
  for (let i = 1n; i < n; i++) bounds.push((min + (i * span) / n).toString());
  return toRanges(bounds, end === undefined ? null : end.toString());
}

function toRanges(bounds: string[], last: string | null = null): KeyRange[] {
  const ranges: KeyRange[] = [];
  let start: string | null = null;
  for (const b of bounds) {
    ranges.push({ start, end: b });
    start = b;
  }
  ranges.push({ start, end: last });
  return ranges;
}

/** Number of chunks for `rows` rows at `chunkSize` rows per chunk (at least 1). */
export function chunkCount(rows: number, chunkSize: number): number {
  return Math.max(1, Math.ceil(rows / chunkSize));
}

/** Compares two keys of the given type (uuid bytewise as PostgreSQL does, integers by value). */
export function compareKeys(type: KeyType, a: string, b: string): number {
  if (type === 'uuid') {
    const x = uuidToBigint(a);
    const y = uuidToBigint(b);
    return x < y ? -1 : x > y ? 1 : 0;
  }
  const x = BigInt(a);
  const y = BigInt(b);
  return x < y ? -1 : x > y ? 1 : 0;
}

/** True when `key` lies in `[range.start, range.end)`. */
export function rangeContains(type: KeyType, range: KeyRange, key: string): boolean {
  return (
    (range.start === null || compareKeys(type, key, range.start) >= 0) &&
    (range.end === null || compareKeys(type, key, range.end) < 0)
  );
}

/** A key bound as SQL literal text, validated for its type (COPY takes no parameters). */
export function keyLiteral(type: KeyType, value: string): string {
  if (type === 'uuid') {
    if (!/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/.test(value)) {
      throw new Error(`not a canonical uuid: ${JSON.stringify(value)}`);
    }
    return `'${value}'::uuid`;
  }
  if (!/^-?\d{1,19}$/.test(value)) throw new Error(`not an integer key: ${JSON.stringify(value)}`);
  return `${value}::bigint`;
}

/** SQL predicate selecting `quotedColumn` in `range` (literals validated, no parameters). */
export function rangePredicate(type: KeyType, quotedColumn: string, range: KeyRange): string {
  const parts: string[] = [];
  if (range.start !== null) parts.push(`${quotedColumn} >= ${keyLiteral(type, range.start)}`);
  if (range.end !== null) parts.push(`${quotedColumn} < ${keyLiteral(type, range.end)}`);
  return parts.length > 0 ? parts.join(' AND ') : 'TRUE';
}
