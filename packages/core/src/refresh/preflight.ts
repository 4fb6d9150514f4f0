import { chunkCount, planIntegerChunks, planUuidChunks, type KeyRange } from '../chunks.js';
import { columnDefinitions, getMedia, type MediaDefinition } from '../media.js';
import { refreshNames, type RefreshNames } from '../names.js';
import type { RunJobData } from '../queues.js';
import { ident, literal } from '../sql.js';
import type { JobContext } from './context.js';

export interface PreflightResult {
  readonly chunkCount: number;
  readonly upstreamRows: number;
  readonly chunkSizeRows: number;
  readonly names: { table: string; tempTable: string; index: string; filteredIndex: string };
}

/** Rows of `table` (exact below 10M rows, the planner's estimate above: counting 700M rows takes minutes). */
async function estimateRows(ctx: JobContext, table: string): Promise<number> {
  const { rows } = await ctx.scope.query<{ n: number }>(
    ctx.dbs.catalog,
    `SELECT reltuples::bigint AS n FROM pg_class WHERE oid = to_regclass($1)`,
    [table],
  );
  const estimate = Number(rows[0]?.n ?? -1);
  if (estimate >= 10_000_000) return estimate;
  const exact = await ctx.scope.query<{ n: number }>(
    ctx.dbs.catalog,
    `SELECT count(*)::bigint AS n FROM ${ident(table)}`,
  );
  return Number(exact.rows[0]?.n ?? 0);
}

/** Plans the chunk ranges of `def`'s upstream table. */
export async function planRanges(
  ctx: JobContext,
  def: MediaDefinition,
  chunkSizeRows: number,
): Promise<{ ranges: KeyRange[]; upstreamRows: number }> {
  const upstreamRows = await estimateRows(ctx, def.upstreamTable);
  const count = chunkCount(upstreamRows, chunkSizeRows);
  if (def.key.type === 'uuid') return { ranges: planUuidChunks(count), upstreamRows };
  const key = ident(def.key.column);
  const { rows } = await ctx.scope.query<{ min: string | null; max: string | null }>(
    ctx.dbs.catalog,
    `SELECT min(${key})::text AS min, max(${key})::text AS max FROM ${ident(def.upstreamTable)}`,
  );
  const min = rows[0]?.min;
  const max = rows[0]?.max;
  if (min == null || max == null) return { ranges: planIntegerChunks(0n, -1n, 1), upstreamRows };
  return { ranges: planIntegerChunks(BigInt(min), BigInt(max), count), upstreamRows };
}

/** Per-source row counts of a table in the API database (empty if the table does not exist). */
export async function countsPerSource(
  ctx: JobContext,
  def: MediaDefinition,
  table: string,
): Promise<Record<string, number>> {
  const { rows: exists } = await ctx.scope.query<{ t: string | null }>(
    ctx.dbs.api,
    'SELECT to_regclass($1)::text AS t',
    [table],
  );
  if (!exists[0]?.t) return {};
  const provider = ident(def.providerColumn);
  const { rows } = await ctx.scope.query<{ source: string | null; n: number }>(
    ctx.dbs.api,
    `SELECT ${provider} AS source, count(*)::bigint AS n FROM ${ident(table)} GROUP BY 1 ORDER BY 1`,
  );
  return Object.fromEntries(rows.map((r) => [r.source ?? '(none)', Number(r.n)]));
}

/** Index body for a new build: the mapping file, with replicas 0 and refresh off for bulk loading. */
export function buildIndexBody(def: MediaDefinition): Record<string, unknown> {
  const body = structuredClone(def.mappingBody) as {
    settings?: { index?: Record<string, unknown> } & Record<string, unknown>;
  };
  const settings = body.settings ?? {};
  settings.index = { ...(settings.index ?? {}), number_of_replicas: 0, refresh_interval: '-1' };
  return { ...body, settings };
}

async function ensureIndex(ctx: JobContext, index: string, def: MediaDefinition): Promise<void> {
  const exists = await ctx.es.indices.exists({ index });
  if (exists) return;
  try {
    await ctx.es.indices.create({ index, ...buildIndexBody(def) });
  } catch (err) {
    const type = (err as { body?: { error?: { type?: string } } }).body?.error?.type;
    if (type !== 'resource_already_exists_exception') throw err;
  }
}

/**
 * Preflight: checks the cluster, records the per-source counts before the refresh, creates the
 * temp table and the two new indices, and plans the chunks. Safe to retry.
 */
export async function runPreflight(ctx: JobContext, data: RunJobData): Promise<PreflightResult> {
  const def = getMedia(ctx.media, data.media);
  const names: RefreshNames = refreshNames(
    def,
    data.profile,
    data.runId,
    ctx.config.ELASTICSEARCH_INDEX_PREFIX,
  );
  await ctx.es.cluster.health({ wait_for_status: 'yellow', timeout: '30s' });

  const before = await countsPerSource(ctx, def, names.table);
  await ctx.store.mergeCounts(data.runId, { before });

  const temp = ident(names.tempTable);
  await ctx.scope.query(ctx.dbs.api, `DROP TABLE IF EXISTS ${temp}`);
  await ctx.scope.query(ctx.dbs.api, `CREATE TABLE ${temp} (\n  ${columnDefinitions(def)}\n)`);
  await ctx.scope.query(
    ctx.dbs.api,
    `COMMENT ON TABLE ${temp} IS ${literal(`freshet run ${data.runId}`)}`,
  );

  await ensureIndex(ctx, names.index, def);
  await ensureIndex(ctx, names.filteredIndex, def);

  const size = data.chunkSizeRows ?? ctx.config.CHUNK_SIZE_ROWS ?? def.chunkSizeRows;
  const { ranges, upstreamRows } = await planRanges(ctx, def, size);
  await ctx.store.saveChunks(data.runId, ranges);
  const result: PreflightResult = {
    chunkCount: ranges.length,
    upstreamRows,
    chunkSizeRows: size,
    names: {
      table: names.table,
      tempTable: names.tempTable,
      index: names.index,
      filteredIndex: names.filteredIndex,
    },
  };
  await ctx.store.setPlan(data.runId, { ...result }, ranges.length);
  return result;
}
