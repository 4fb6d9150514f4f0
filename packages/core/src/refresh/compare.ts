import { isDeepStrictEqual } from 'node:util';
import { nonSensitiveQuery, SENSITIVE_FIELD } from '../filtered-view.js';
import { getMedia, type MediaDefinition } from '../media.js';
import { refreshNames } from '../names.js';
import type { RunJobData } from '../queues.js';
import { ident } from '../sql.js';
import type { JobContext } from './context.js';
import { countsPerSource } from './preflight.js';

export interface SourceComparison {
  readonly live: number;
  readonly shadow: number;
  /** (shadow - live) / max(live, 1). */
  readonly change: number;
}

export interface DocumentDiff {
  readonly id: string;
  readonly fields: Record<string, { live: unknown; shadow: unknown }>;
}

export interface FieldShift {
  readonly field: string;
  readonly liveNullRate: number;
  readonly shadowNullRate: number;
}

/** The shadow build against the live data, and whether promotion may proceed on its own. */
export interface ComparisonReport {
  readonly totals: SourceComparison;
  readonly sources: Record<string, SourceComparison>;
  /**
   * Documents of the filtered view: what `<media>-filtered` shows now, and what it will show
   * once the shadow build is promoted (its filtered index, or its main index through the filter,
   * as the media's `filtered` mode says).
   */
  readonly filtered: SourceComparison;
  readonly sampled: number;
  /** Sampled documents present in both builds whose fields differ, field by field. */
  readonly diffs: DocumentDiff[];
  readonly diffRate: number;
  readonly shiftedFields: FieldShift[];
  readonly withinThresholds: boolean;
  /** Why promotion is held (empty when within thresholds). */
  readonly reasons: string[];
}

/**
 * The fields in which two versions of one document differ, compared structurally: the order of
 * an object's keys does not matter (Elasticsearch returns `_source` as it was sent, and two builds
 * may write the keys of a nested object in different orders), the order of an array's items does.
 */
export function documentDiff(
  live: Record<string, unknown>,
  shadow: Record<string, unknown>,
): DocumentDiff['fields'] {
  const fields: DocumentDiff['fields'] = {};
  for (const f of new Set([...Object.keys(live), ...Object.keys(shadow)])) {
    // A live build from before documents carried `sensitive` differs in it everywhere.
    if (f === SENSITIVE_FIELD && !(f in live)) continue;
    if (!isDeepStrictEqual(live[f], shadow[f])) fields[f] = { live: live[f], shadow: shadow[f] };
  }
  return fields;
}

const change = (live: number, shadow: number) => (shadow - live) / Math.max(live, 1);

/** Row counts of two builds, in all and per source (every source of either). */
export interface CountComparison {
  readonly totals: SourceComparison;
  readonly sources: Record<string, SourceComparison>;
}

/**
 * Compares per-source row counts of the live build with a new one (`shadow`): the totals and
 * every source present in either (a source missing from one counts 0 there).
 */
export function compareCounts(
  live: Readonly<Record<string, number>>,
  shadow: Readonly<Record<string, number>>,
): CountComparison {
  const sources: Record<string, SourceComparison> = {};
  for (const s of new Set([...Object.keys(live), ...Object.keys(shadow)])) {
    const l = live[s] ?? 0;
    const n = shadow[s] ?? 0;
    sources[s] = { live: l, shadow: n, change: change(l, n) };
  }
  const sum = (o: Readonly<Record<string, number>>) => Object.values(o).reduce((a, b) => a + b, 0);
  const totals = { live: sum(live), shadow: sum(shadow), change: change(sum(live), sum(shadow)) };
  return { totals, sources };
}

/** Null rate of each plain-column document field in `table`, or nothing if it does not exist. */
async function nullRates(
  ctx: JobContext,
  def: MediaDefinition,
  table: string,
): Promise<Record<string, number> | null> {
  const exists = await ctx.scope.query<{ t: string | null }>(
    ctx.dbs.api,
    'SELECT to_regclass($1)::text AS t',
    [table],
  );
  if (!exists.rows[0]?.t) return null;
  const fields = Object.entries(def.document.fields).filter(
    (e): e is [string, string] => typeof e[1] === 'string',
  );
  const counts = fields.map(([f, col]) => `count(${ident(col)})::bigint AS ${ident(f)}`).join(', ');
  const { rows } = await ctx.scope.query<Record<string, number>>(
    ctx.dbs.api,
    `SELECT count(*)::bigint AS __total, ${counts} FROM ${ident(table)}`,
  );
  const row = rows[0] ?? {};
  const total = Number(row.__total ?? 0);
  return Object.fromEntries(
    fields.map(([f]) => [f, total === 0 ? 0 : 1 - Number(row[f] ?? 0) / total]),
  );
}

/** The documents `<media>-filtered` shows now (0 before a first promotion). */
async function liveFilteredDocs(ctx: JobContext, alias: string): Promise<number> {
  if (!(await ctx.es.indices.existsAlias({ name: alias }))) return 0;
  return (await ctx.es.count({ index: alias })).count;
}

/**
 * Compares a shadow build with the live one before promotion: row counts per source, documents of
 * the filtered view, a sample of documents diffed field by field, and fields whose share of
 * missing values shifted. Beyond the
 * configured thresholds the run is held for an operator's approval.
 */
export async function runCompare(ctx: JobContext, data: RunJobData): Promise<ComparisonReport> {
  const def = getMedia(ctx.media, data.media);
  const names = refreshNames(def, data.profile, data.runId, ctx.config.ELASTICSEARCH_INDEX_PREFIX);
  const { config } = ctx;
  const reasons: string[] = [];

  const { totals, sources } = compareCounts(
    await countsPerSource(ctx, def, names.table),
    await countsPerSource(ctx, def, names.tempTable),
  );
  if (Math.abs(totals.change) > config.SHADOW_MAX_COUNT_CHANGE) {
    reasons.push(
      `total rows change ${(totals.change * 100).toFixed(1)}% (${totals.live} -> ${totals.shadow})`,
    );
  }
  const filteredLive = await liveFilteredDocs(ctx, names.filteredAlias);
  const filteredShadow = (
    names.filteredIndex === null
      ? await ctx.es.count({ index: names.index, query: nonSensitiveQuery() })
      : await ctx.es.count({ index: names.filteredIndex })
  ).count;
  const filtered = {
    live: filteredLive,
    shadow: filteredShadow,
    change: change(filteredLive, filteredShadow),
  };
  if (Math.abs(filtered.change) > config.SHADOW_MAX_COUNT_CHANGE) {
    reasons.push(
      `${names.filteredAlias} documents change ${(filtered.change * 100).toFixed(1)}% (${filtered.live} -> ${filtered.shadow})`,
    );
  }
  for (const [s, c] of Object.entries(sources)) {
    // Tiny sources swing by large fractions on a handful of rows; judge those by the total.
    if (Math.max(c.live, c.shadow) >= 100 && Math.abs(c.change) > config.SHADOW_MAX_COUNT_CHANGE) {
      reasons.push(
        `source ${s} changes ${(c.change * 100).toFixed(1)}% (${c.live} -> ${c.shadow})`,
      );
    }
  }

  // A sample of documents present in both builds, diffed field by field.
  const key = ident(def.key.column);
  const n = config.SHADOW_SAMPLE_SIZE;
  const percent = Math.min(100, (100 * n * 4) / Math.max(totals.shadow, 1));
  const { rows: ids } = await ctx.scope.query<{ id: string }>(
    ctx.dbs.api,
    // Shuffle the sample: in physical order, rows rewritten upstream (the very ones that changed)
    // come last and would be left out by the limit.
    `SELECT id FROM (SELECT ${key}::text AS id FROM ${ident(names.tempTable)}
       TABLESAMPLE BERNOULLI (${percent.toFixed(6)}) REPEATABLE (7)) s ORDER BY md5(id) LIMIT ${n * 4}`,
  );
  const diffs: DocumentDiff[] = [];
  let sampled = 0;
  const liveHolders = (await ctx.es.indices.existsAlias({ name: names.alias }))
    ? Object.keys(await ctx.es.indices.getAlias({ name: names.alias }))
    : [];
  const liveIndex = liveHolders[0];
  if (liveIndex && ids.length > 0) {
    const docIds = ids.map((r) => r.id);
    const [a, b] = await Promise.all([
      ctx.es.mget<Record<string, unknown>>({ index: liveIndex, ids: docIds }),
      ctx.es.mget<Record<string, unknown>>({ index: names.index, ids: docIds }),
    ]);
    for (let i = 0; i < docIds.length && sampled < n; i++) {
      const l = a.docs[i] as { found?: boolean; _source?: Record<string, unknown> } | undefined;
      const s = b.docs[i] as { found?: boolean; _source?: Record<string, unknown> } | undefined;
      if (!l?.found || !s?.found || !l._source || !s._source) continue;
      sampled++;
      const fields = documentDiff(l._source, s._source);
      if (Object.keys(fields).length > 0) diffs.push({ id: docIds[i] as string, fields });
    }
  }
  const diffRate = sampled === 0 ? 0 : diffs.length / sampled;
  if (diffRate > config.SHADOW_MAX_DIFF_RATE) {
    reasons.push(
      `${diffs.length} of ${sampled} sampled documents differ (${(diffRate * 100).toFixed(1)}%)`,
    );
  }

  const shiftedFields: FieldShift[] = [];
  const liveRates = await nullRates(ctx, def, names.table);
  const shadowRates = await nullRates(ctx, def, names.tempTable);
  if (liveRates && shadowRates) {
    for (const [field, rate] of Object.entries(shadowRates)) {
      const before = liveRates[field] ?? 0;
      if (Math.abs(rate - before) > config.SHADOW_MAX_NULL_SHIFT) {
        shiftedFields.push({ field, liveNullRate: before, shadowNullRate: rate });
      }
    }
  }
  for (const f of shiftedFields) {
    reasons.push(
      `field ${f.field}: missing in ${(f.liveNullRate * 100).toFixed(1)}% -> ${(f.shadowNullRate * 100).toFixed(1)}%`,
    );
  }
  const report = {
    totals,
    sources,
    filtered,
    sampled,
    diffs: diffs.slice(0, 20),
    diffRate,
    shiftedFields,
    withinThresholds: reasons.length === 0,
    reasons,
  };
  await ctx.store.mergeCounts(data.runId, { comparison: report });
  return report;
}
