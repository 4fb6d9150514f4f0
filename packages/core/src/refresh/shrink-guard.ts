import type { Config } from '../config.js';
import { getMedia } from '../media.js';
import { refreshNames, type Profile } from '../names.js';
import type { RunJobData } from '../queues.js';
import { compareCounts, type CountComparison } from './compare.js';
import type { JobContext } from './context.js';
import { countsPerSource } from './preflight.js';

/** The limits of the shrink guard (PROMOTE_MAX_DROP, PROMOTE_MAX_SOURCE_DROP, PROMOTE_SOURCE_MIN_ROWS). */
export interface ShrinkLimits {
  /** Largest share of all live rows a new build may lose (0.10 = 10%). */
  readonly maxDrop: number;
  /** Largest share of its live rows a source of at least `sourceMinRows` may lose. */
  readonly maxSourceDrop: number;
  readonly sourceMinRows: number;
}

/**
 * What the guard decided: `within-limits` (promotion goes on), `held` (the run waits in
 * `awaiting-approval`), `approved-ahead` (beyond the limits, but the refresh was started with
 * allowShrink), `first-promotion` (nothing live to lose) or `staging-exempt` (a staging build).
 */
export type ShrinkOutcome =
  'within-limits' | 'held' | 'approved-ahead' | 'first-promotion' | 'staging-exempt';

/**
 * The shrink guard's comparison of a new build with the live one, stored in the run's
 * `counts.shrink`: `live` is the live table's rows (preflight's `counts.before`), `shadow` the
 * new build's, in all and per source.
 */
export interface ShrinkCheck extends CountComparison {
  readonly limits: ShrinkLimits;
  /** Each drop beyond the limits, with its numbers (empty when there is none). */
  readonly drops: string[];
  readonly outcome: ShrinkOutcome;
}

/** The guard's limits from the configuration. */
export function shrinkLimits(
  config: Pick<Config, 'PROMOTE_MAX_DROP' | 'PROMOTE_MAX_SOURCE_DROP' | 'PROMOTE_SOURCE_MIN_ROWS'>,
): ShrinkLimits {
  return {
    maxDrop: config.PROMOTE_MAX_DROP,
    maxSourceDrop: config.PROMOTE_MAX_SOURCE_DROP,
    sourceMinRows: config.PROMOTE_SOURCE_MIN_ROWS,
  };
}

/** A share as a percentage with at most one decimal: 0.1 -> `10%`, 0.125 -> `12.5%`. */
export const percentText = (fraction: number) => `${Number((fraction * 100).toFixed(1))}%`;
const dropOf = (c: { live: number; shadow: number }) =>
  c.live === 0 ? 0 : (c.live - c.shadow) / c.live;

/** The drops beyond the limits, as the hold's reasons (only drops count: growth is fine). */
export function shrinkDrops(counts: CountComparison, limits: ShrinkLimits): string[] {
  const drops: string[] = [];
  const shrinking = Object.entries(counts.sources)
    .filter(([, c]) => c.shadow < c.live)
    .sort(([a, x], [b, y]) => y.live - y.shadow - (x.live - x.shadow) || a.localeCompare(b));
  const total = dropOf(counts.totals);
  if (total > limits.maxDrop) {
    // Which sources the rows went missing from, the largest losses first.
    const most = shrinking
      .slice(0, 3)
      .map(([s, c]) => `source ${s} -${percentText(dropOf(c))} (${c.live} -> ${c.shadow})`);
    drops.push(
      `total rows drop ${(total * 100).toFixed(1)}% (${counts.totals.live} -> ${counts.totals.shadow}), beyond PROMOTE_MAX_DROP ${percentText(limits.maxDrop)}${most.length > 0 ? `; most from ${most.join(', ')}` : ''}`,
    );
  }
  for (const [s, c] of shrinking) {
    const drop = dropOf(c);
    if (c.live >= limits.sourceMinRows && drop > limits.maxSourceDrop) {
      drops.push(
        `source ${s} drops ${(drop * 100).toFixed(1)}% (${c.live} -> ${c.shadow}), beyond PROMOTE_MAX_SOURCE_DROP ${percentText(limits.maxSourceDrop)} of a source with at least ${limits.sourceMinRows} rows`,
      );
    }
  }
  return drops;
}

/**
 * The pure decision of the shrink guard. A staging build is exempt and a first promotion
 * (nothing live) has nothing to lose: neither is ever held. Otherwise a drop beyond the limits
 * holds the run, unless the refresh was approved ahead of time (`allowShrink`).
 */
export function judgeShrink(
  counts: CountComparison,
  limits: ShrinkLimits,
  run: { readonly profile: Profile; readonly allowShrink?: boolean | undefined },
): ShrinkCheck {
  const drops = shrinkDrops(counts, limits);
  const outcome: ShrinkOutcome =
    run.profile === 'staging'
      ? 'staging-exempt'
      : counts.totals.live === 0
        ? 'first-promotion'
        : drops.length === 0
          ? 'within-limits'
          : run.allowShrink
            ? 'approved-ahead'
            : 'held';
  return { ...counts, limits, drops, outcome };
}

/**
 * The shrink guard, after finalize's verification and before promotion: compares the new build
 * (the temp table, per source) with the live one (preflight's `counts.before`), records the
 * comparison in the run's `counts.shrink` and returns it. Whether to hold is the caller's part
 * (the stage right before promote sets `awaiting-approval`, so the gate parks promote).
 * `next`: the new build's rows per source when the caller has just counted them (a shadow
 * build's compare), so the temp table is not counted twice.
 */
export async function runShrinkGuard(
  ctx: JobContext,
  data: RunJobData,
  next?: Readonly<Record<string, number>>,
): Promise<ShrinkCheck> {
  const def = getMedia(ctx.media, data.media);
  const names = refreshNames(def, data.profile, data.runId, ctx.config.ELASTICSEARCH_INDEX_PREFIX);
  const run = await ctx.store.getRun(data.runId);
  const before = (run.counts?.before ?? {}) as Record<string, unknown>;
  const live = Object.fromEntries(Object.entries(before).map(([s, n]) => [s, Number(n)]));
  const built = next ?? (await countsPerSource(ctx, def, names.tempTable));
  const check = judgeShrink(compareCounts(live, built), shrinkLimits(ctx.config), data);
  await ctx.store.mergeCounts(data.runId, { shrink: check });
  if (check.outcome === 'approved-ahead') {
    const actor = run.requested_by ?? 'cli';
    const detail = { drops: check.drops, totals: check.totals };
    await ctx.store.log(
      data.runId,
      null,
      'warn',
      'shrink approved ahead of time: promoting',
      detail,
    );
    await ctx.store.audit(data.runId, actor, 'approve-shrink-ahead', detail);
  }
  return check;
}
