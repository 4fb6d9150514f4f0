import { UnrecoverableError } from 'bullmq';
import {
  chunkCount,
  integerRanges,
  uuidFractionLimit,
  uuidRanges,
  type KeyRange,
  type RangeList,
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

/**
 * A plan outside the configured limits (a chunk size below MIN_CHUNK_SIZE_ROWS, more chunks than
 * MAX_CHUNKS_PER_RUN). Final: the same request plans the same way on every attempt, so the job is
 * not retried and the run fails with this message; the API answers it as a 400.
 */
export class PlanLimitError extends UnrecoverableError {
  override readonly name = 'PlanLimitError';
  /** Exit code of the CLI (a usage error). */
  readonly exitCode = 2;
}

export interface ChunkPlan {
  /** The ranges, computed on demand (a plan is never built whole in memory to be printed). */
  readonly ranges: RangeList;
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
  const settings =
    profile === 'staging'
      ? {
          chunkSizeRows: requestedChunkSize ?? config.STAGING_CHUNK_SIZE_ROWS,
          rowCap: config.STAGING_ROW_CAP,
        }
      : {
          chunkSizeRows: requestedChunkSize ?? config.CHUNK_SIZE_ROWS ?? def.chunkSizeRows,
          rowCap: null,
        };
  if (settings.chunkSizeRows < config.MIN_CHUNK_SIZE_ROWS) {
    throw new PlanLimitError(
      `a chunk size of ${settings.chunkSizeRows} rows is below the floor of ${config.MIN_CHUNK_SIZE_ROWS} (MIN_CHUNK_SIZE_ROWS)`,
    );
  }
  return settings;
}

/** Refuses a plan of more chunks than `maxChunks`, naming the chunk size that would fit. */
export function checkChunkCount(
  plannedRows: number,
  chunkSizeRows: number,
  maxChunks: number,
): void {
  const count = chunkCount(plannedRows, chunkSizeRows);
  if (count <= maxChunks) return;
  throw new PlanLimitError(
    `${plannedRows} rows in chunks of ${chunkSizeRows} would be ${count} chunks, more than the ${maxChunks} a run may have (MAX_CHUNKS_PER_RUN); use chunks of at least ${Math.ceil(plannedRows / maxChunks)} rows`,
  );
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
  maxChunks: number,
): Promise<ChunkPlan> {
  const upstreamRows = await upstreamRowCount(query, def.upstreamTable);
  const plannedRows = rowCap === null ? upstreamRows : Math.min(rowCap, upstreamRows);
  checkChunkCount(plannedRows, chunkSizeRows, maxChunks);
  const fraction = rowCap === null || upstreamRows === 0 ? 1 : Math.min(1, rowCap / upstreamRows);
  const count = chunkCount(plannedRows, chunkSizeRows);
  const base = { upstreamRows, plannedRows, chunkSizeRows, rowCap };
  if (def.key.type === 'uuid') {
    return { ...base, ranges: uuidRanges(count, uuidFractionLimit(fraction)) };
  }
  const key = ident(def.key.column);
  const rows = await query<{ min: string | null; max: string | null }>(
    `SELECT min(${key})::text AS min, max(${key})::text AS max FROM ${ident(def.upstreamTable)}`,
  );
  const min = rows[0]?.min;
  const max = rows[0]?.max;
  if (min == null || max == null) return { ...base, ranges: integerRanges(0n, -1n, 1) };
  const lo = BigInt(min);
  const hi = BigInt(max);
  if (fraction >= 1) return { ...base, ranges: integerRanges(lo, hi, count) };
  const end = lo + BigInt(Math.max(1, Math.floor(fraction * Number(hi - lo + 1n))));
  return { ...base, ranges: integerRanges(lo, end - 1n, count, end) };
}

/** Summarises ranges for a plan printout: the count and the first and last few. */
export function summariseRanges(ranges: RangeList, edge = 3): string[] {
  const show = (r: KeyRange, i: number) => `  #${i} [${r.start ?? '-inf'}, ${r.end ?? '+inf'})`;
  const n = ranges.length;
  if (n <= edge * 2) return ranges.slice(0, n).map(show);
  return [
    ...ranges.slice(0, edge).map(show),
    `  ... ${n - edge * 2} more ...`,
    ...ranges.slice(n - edge, n).map((r, i) => show(r, n - edge + i)),
  ];
}
