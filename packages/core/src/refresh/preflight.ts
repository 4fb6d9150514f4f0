import { SENSITIVE_FIELD, type FilteredMode } from '../filtered-view.js';
import { columnDefinitions, getMedia, type MediaDefinition } from '../media.js';
import { buildMarker, refreshNames, type RefreshNames } from '../names.js';
import type { RunJobData } from '../queues.js';
import { ident, literal } from '../sql.js';
import type { JobContext } from './context.js';
import { chunkSettings, planChunks, type CatalogQuery } from './plan.js';
import { createIndexSql, tableIndexes } from './table-indexes.js';

export interface PreflightResult {
  readonly chunkCount: number;
  readonly upstreamRows: number;
  readonly plannedRows: number;
  readonly chunkSizeRows: number;
  readonly rowCap: number | null;
  readonly names: {
    table: string;
    tempTable: string;
    filtered: FilteredMode;
    index: string;
    /** The second index in `index` mode; null in `alias` mode. */
    filteredIndex: string | null;
  };
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

/**
 * Index body for a new build: the mapping file, with replicas 0 and refresh off for bulk loading,
 * the definition's primary shards (if it sets them), and the boolean `sensitive` field every
 * document carries (the mapping may be `dynamic: strict`).
 */
export function buildIndexBody(def: MediaDefinition): Record<string, unknown> {
  const body = structuredClone(def.mappingBody) as {
    settings?: { index?: Record<string, unknown> } & Record<string, unknown>;
    mappings?: { properties?: Record<string, unknown> } & Record<string, unknown>;
  };
  const settings = body.settings ?? {};
  const shards: Record<string, unknown> = {};
  if (def.shards !== undefined) {
    // The definition wins over the mapping file, whichever form the file spells the setting in.
    delete settings.number_of_shards;
    delete settings['index.number_of_shards'];
    shards.number_of_shards = def.shards;
  }
  settings.index = {
    ...(settings.index ?? {}),
    ...shards,
    number_of_replicas: 0,
    refresh_interval: '-1',
  };
  const mappings = body.mappings ?? {};
  mappings.properties = { ...(mappings.properties ?? {}), [SENSITIVE_FIELD]: { type: 'boolean' } };
  return { ...body, settings, mappings };
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
 * temp table and the new indices (the main one, and the filtered one in `index` mode), and plans
 * the chunks. Safe to retry.
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
  // Every chunk replaces its key range: without an index on the key each would scan the whole
  // table (quadratic in the number of chunks). It is the promoted table's unique key index.
  await ctx.scope.query(
    ctx.dbs.api,
    createIndexSql(tableIndexes(def, names, data.runId).key, names.tempTable),
  );
  await ctx.scope.query(
    ctx.dbs.api,
    `COMMENT ON TABLE ${temp} IS ${literal(buildMarker(data.runId))}`,
  );

  for (const index of names.indices) await ensureIndex(ctx, index, def);

  const { chunkSizeRows, rowCap } = chunkSettings(
    ctx.config,
    def,
    data.profile,
    data.chunkSizeRows,
  );
  const query: CatalogQuery = async (sql, params) =>
    (await ctx.scope.query(ctx.dbs.catalog, sql, params)).rows as never[];
  const plan = await planChunks(query, def, chunkSizeRows, rowCap, ctx.config.MAX_CHUNKS_PER_RUN);
  const ranges = plan.ranges;
  await ctx.store.saveChunks(data.runId, ranges);
  const result: PreflightResult = {
    chunkCount: ranges.length,
    upstreamRows: plan.upstreamRows,
    plannedRows: plan.plannedRows,
    chunkSizeRows,
    rowCap,
    names: {
      table: names.table,
      tempTable: names.tempTable,
      filtered: names.filtered,
      index: names.index,
      filteredIndex: names.filteredIndex,
    },
  };
  await ctx.store.setPlan(data.runId, { ...result }, ranges.length);
  return result;
}
