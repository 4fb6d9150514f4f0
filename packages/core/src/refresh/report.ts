import type { FilteredMode } from '../filtered-view.js';
import { getMedia } from '../media.js';
import { refreshNames } from '../names.js';
import type { RunJobData } from '../queues.js';
import type { JobContext } from './context.js';
import { countsPerSource } from './preflight.js';

export interface SourceChange {
  readonly before: number;
  readonly after: number;
  readonly change: number;
}

export interface ReportResult {
  /** Per source (all of them, not a top 10): rows before and after, and the difference. */
  readonly sources: Record<string, SourceChange>;
  /** Per-source document counts in the live index, for cross-checking. */
  readonly indexSources: Record<string, number>;
  /** How `<media>-filtered` is served, and the documents it shows now (searched through it). */
  readonly filtered: FilteredMode;
  readonly filteredDocs: number;
  readonly totalBefore: number;
  readonly totalAfter: number;
  /**
   * Rows the copy skipped (removed upstream, deleted), and rows rejected by reason: by the copy
   * (no key), the clean (bad URL or license, duplicate key) and the index (`es-refused:<type>`,
   * documents Elasticsearch refused for their content).
   */
  readonly skipped: Record<string, number>;
  readonly rejected: Record<string, number>;
}

/** Sums the per-chunk skipped and rejected counts of a run, by reason. */
async function accountedRows(
  ctx: JobContext,
  runId: string,
): Promise<{ skipped: Record<string, number>; rejected: Record<string, number> }> {
  const { rows } = await ctx.scope.query<{ kind: string; reason: string; n: number }>(
    ctx.dbs.api,
    `SELECT 'skipped' AS kind, k AS reason, sum(v::bigint)::bigint AS n
       FROM freshet.chunks, jsonb_each_text(coalesce(result -> 'pass' -> 'skipped', '{}')) AS s(k, v)
      WHERE run_id = $1 GROUP BY k
     UNION ALL
     SELECT 'rejected', k, sum((v ->> 'count')::bigint)::bigint
       FROM freshet.chunks, jsonb_each(coalesce(result -> 'pass' -> 'rejected', '{}')) AS r(k, v)
      WHERE run_id = $1 GROUP BY k`,
    [runId],
  );
  const skipped: Record<string, number> = {};
  const rejected: Record<string, number> = {};
  for (const r of rows) {
    const into = r.kind === 'skipped' ? skipped : rejected;
    into[r.reason] = (into[r.reason] ?? 0) + Number(r.n);
  }
  return { skipped, rejected };
}

/** Per-source counts of the live index, every source (the terms size covers them all). */
async function indexCountsPerSource(
  ctx: JobContext,
  alias: string,
  field: string,
  sources: number,
): Promise<Record<string, number>> {
  const res = await ctx.es.search<
    unknown,
    { s: { buckets: { key: string; doc_count: number }[] } }
  >({
    index: alias,
    size: 0,
    aggs: { s: { terms: { field, size: Math.max(10, sources + 10), missing: '(none)' } } },
  });
  return Object.fromEntries((res.aggregations?.s.buckets ?? []).map((b) => [b.key, b.doc_count]));
}

/** The report: per-source counts before and after the refresh, stored with the run. */
export async function runReport(ctx: JobContext, data: RunJobData): Promise<ReportResult> {
  const def = getMedia(ctx.media, data.media);
  const names = refreshNames(def, data.profile, data.runId, ctx.config.ELASTICSEARCH_INDEX_PREFIX);
  const run = await ctx.store.getRun(data.runId);
  const before = (run.counts as { before?: Record<string, number> } | null)?.before ?? {};
  const after = await countsPerSource(ctx, def, names.table);
  const sources: Record<string, SourceChange> = {};
  for (const source of new Set([...Object.keys(before), ...Object.keys(after)])) {
    const b = before[source] ?? 0;
    const a = after[source] ?? 0;
    sources[source] = { before: b, after: a, change: a - b };
  }
  const providerField = Object.entries(def.document.fields).find(
    ([, spec]) => spec === def.providerColumn,
  )?.[0];
  const indexSources = providerField
    ? await indexCountsPerSource(ctx, names.alias, providerField, Object.keys(sources).length)
    : {};
  const filteredDocs = (await ctx.es.count({ index: names.filteredAlias })).count;
  const sum = (o: Record<string, number>) => Object.values(o).reduce((x, y) => x + y, 0);
  const { skipped, rejected } = await accountedRows(ctx, data.runId);
  const result = {
    sources,
    indexSources,
    filtered: names.filtered,
    filteredDocs,
    totalBefore: sum(before),
    totalAfter: sum(after),
    skipped,
    rejected,
  };
  await ctx.store.mergeCounts(data.runId, {
    after,
    sources,
    skipped,
    rejected,
    filtered: { mode: names.filtered, docs: filteredDocs },
  });
  return result;
}
