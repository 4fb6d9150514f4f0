import {
  chunkCount,
  planIntegerChunks,
  planUuidChunks,
  uuidFractionLimit,
  type KeyRange,
} from '../chunks.js';
import type { Config } from '../config.js';
import type { MediaDefinition } from '../media.js';
import type { Profile } from '../names.js';
import { ident } from '../sql.js';

/** Runs one query on the catalog database (a job's tagged scope, or a plain pool for a dry run). */
export type CatalogQuery = <T extends Record<string, unknown>>(
  sql: string,
  params?: unknown[],
) => Promise<T[]>;

export interface ChunkPlan {
  readonly ranges: KeyRange[];
  /** Rows in the upstream table (exact below 10M rows, else the planner's estimate). */
  readonly upstreamRows: number;
  /** Rows the plan covers (the row cap of a staging run, else all). */
  readonly plannedRows: number;
  readonly chunkSizeRows: number;
  readonly rowCap: number | null;
}

/** Rows per chunk and row cap for a run: the request, then the profile, then config, then media. */
export function chunkSettings(
  config: Config,
  def: MediaDefinition,
  profile: Profile,
  requestedChunkSize?: number,
): { chunkSizeRows: number; rowCap: number | null } {
  if (profile === 'staging') {
    return {
      chunkSizeRows: requestedChunkSize ?? config.STAGING_CHUNK_SIZE_ROWS,
      rowCap: config.STAGING_ROW_CAP,
    };
  }
  return {
    chunkSizeRows: requestedChunkSize ?? config.CHUNK_SIZE_ROWS ?? def.chunkSizeRows,
    rowCap: null,
  };
}

async function upstreamRowCount(query: CatalogQuery, table: string): Promise<number> {
  const estimate = await query<{ n: number }>(
    `SELECT reltuples::bigint AS n FROM pg_class WHERE oid = to_regclass($1)`,
    [table],
  );
  const n = Number(estimate[0]?.n ?? -1);
  // Counting 700M rows takes minutes; the planner's estimate is close enough to size chunks.
  if (n >= 10_000_000) return n;
  const exact = await query<{ n: number }>(`SELECT count(*)::bigint AS n FROM ${ident(table)}`);
  return Number(exact[0]?.n ?? 0);
}

/**
 * Plans the chunk ranges of `def`'s upstream table: the uuid space sliced evenly, or integer
 * keys by value. A row cap (staging) plans only the first part of the key space holding about
 * that many rows; its last range is closed, so no key beyond it is copied.
 */
export async function planChunks(
  query: CatalogQuery,
  def: MediaDefinition,
  chunkSizeRows: number,
  rowCap: number | null,
): Promise<ChunkPlan> {
  const upstreamRows = await upstreamRowCount(query, def.upstreamTable);
  const plannedRows = rowCap === null ? upstreamRows : Math.min(rowCap, upstreamRows);
  const fraction = rowCap === null || upstreamRows === 0 ? 1 : Math.min(1, rowCap / upstreamRows);
  const count = chunkCount(plannedRows, chunkSizeRows);
  const base = { upstreamRows, plannedRows, chunkSizeRows, rowCap };
  if (def.key.type === 'uuid') {
    return { ...base, ranges: planUuidChunks(count, uuidFractionLimit(fraction)) };
  }
  const key = ident(def.key.column);
  const rows = await query<{ min: string | null; max: string | null }>(
    `SELECT min(${key})::text AS min, max(${key})::text AS max FROM ${ident(def.upstreamTable)}`,
  );
  const min = rows[0]?.min;
  const max = rows[0]?.max;
  if (min == null || max == null) return { ...base, ranges: planIntegerChunks(0n, -1n, 1) };
  const lo = BigInt(min);
  const hi = BigInt(max);
  if (fraction >= 1) return { ...base, ranges: planIntegerChunks(lo, hi, count) };
  const end = lo + BigInt(Math.max(1, Math.floor(fraction * Number(hi - lo + 1n))));
  return { ...base, ranges: planIntegerChunks(lo, end - 1n, count, end) };
}

/** Summarises ranges for a plan printout: the count and the first and last few. */
export function summariseRanges(ranges: readonly KeyRange[], edge = 3): string[] {
  const show = (r: KeyRange, i: number) => `  #${i} [${r.start ?? '-inf'}, ${r.end ?? '+inf'})`;
  if (ranges.length <= edge * 2) return ranges.map(show);
  return [
    ...ranges.slice(0, edge).map(show),
    `  ... ${ranges.length - edge * 2} more ...`,
    ...ranges.slice(-edge).map((r, i) => show(r, ranges.length - edge + i)),
  ];
}
