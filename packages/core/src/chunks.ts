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
 * A plan's ranges, computed on demand: the i-th range is a pure function of the plan's bounds, so
 * a plan of any size costs nothing until its ranges are read (a dry run prints a few; a run
 * stores them in batches).
 */
export interface RangeList {
  readonly length: number;
  /** The range at `i` (0 <= i < length). */
  at(i: number): KeyRange;
  /** Ranges `[from, to)`, clamped to the list. */
  slice(from: number, to: number): KeyRange[];
}

function rangeList(length: number, bound: (i: number) => string, last: string | null): RangeList {
  const at = (i: number): KeyRange => {
    if (!Number.isSafeInteger(i) || i < 0 || i >= length) {
      throw new RangeError(`chunk ${i} is outside the plan of ${length}`);
    }
    return { start: i === 0 ? null : bound(i), end: i === length - 1 ? last : bound(i + 1) };
  };
  return {
    length,
    at,
    slice(from, to) {
      const out: KeyRange[] = [];
      for (let i = Math.max(0, from); i < Math.min(length, to); i++) out.push(at(i));
      return out;
    },
  };
}

/** All ranges of a list, in order (for lists known to be small). */
export function allRanges(list: RangeList): KeyRange[] {
  return list.slice(0, list.length);
}

/**
 * `count` ranges slicing the whole uuid space evenly (uuid v4 keys are uniform over it). With
 * `limit` (a row cap), only `[0, limit)` is sliced and the last range ends at `limit`.
 */
export function uuidRanges(count: number, limit?: bigint): RangeList {
  if (!Number.isSafeInteger(count) || count < 1) throw new RangeError(`chunk count must be >= 1`);
  const n = BigInt(count);
  const space = limit ?? UUID_SPACE;
  return rangeList(
    count,
    (i) => bigintToUuid((BigInt(i) * space) / n),
    limit === undefined ? null : bigintToUuid(limit),
  );
}

/** {@link uuidRanges} as an array. */
export function planUuidChunks(count: number, limit?: bigint): KeyRange[] {
  return allRanges(uuidRanges(count, limit));
}

/** The uuid value below which a fraction `f` (0..1] of the uuid space lies. */
export function uuidFractionLimit(f: number): bigint | undefined {
  if (f >= 1) return undefined;
  const scale = 1_000_000_000n;
  return (UUID_SPACE * BigInt(Math.max(1, Math.floor(f * Number(scale))))) / scale;
}

/**
 * `count` ranges slicing integer keys `[min, max]` by value (fewer when the span is smaller).
 * Keys below min or above max still fall in the first or last range.
 */
export function integerRanges(
  min: bigint,
  max: bigint,
  count: number,
  /** With a row cap: the exclusive end of the last range (else it is open above). */
  end?: bigint,
): RangeList {
  if (!Number.isSafeInteger(count) || count < 1) throw new RangeError(`chunk count must be >= 1`);
  const last = end === undefined ? null : end.toString();
  if (max < min) return rangeList(1, () => '', last);
  const span = max - min + 1n;
  const n = span < BigInt(count) ? span : BigInt(count);
  return rangeList(Number(n), (i) => (min + (BigInt(i) * span) / n).toString(), last);
}

/** {@link integerRanges} as an array. */
export function planIntegerChunks(
  min: bigint,
  max: bigint,
  count: number,
  end?: bigint,
): KeyRange[] {
  return allRanges(integerRanges(min, max, count, end));
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
