import {
  chunkSettings,
  getMedia,
  planChunks,
  refreshNames,
  percentText,
  shrinkLimits,
  stageOrder,
  summariseRanges,
  type CatalogQuery,
  type Config,
  type EsClient,
  type FilteredMode,
  type MediaCatalog,
  type Pool,
  type ShrinkLimits,
} from '@freshet/core';
import { parseProfile, type RefreshRequest } from './refresh.js';

/** What a refresh would do, computed without changing anything anywhere. */
export interface RefreshPlan {
  readonly media: string;
  readonly profile: string;
  readonly shadow: boolean;
  readonly stages: string[];
  readonly chunks: {
    count: number;
    chunkSizeRows: number;
    rowCap: number | null;
    upstreamRows: number;
    plannedRows: number;
    ranges: string[];
  };
  readonly tables: { live: string; temp: string };
  /** How `<media>-filtered` is served: a filtered alias over the main index, or a second index. */
  readonly filtered: FilteredMode;
  /** Indices the run creates: the main one, and the filtered one in `index` mode (else null). */
  readonly indices: { main: string; filtered: string | null };
  /**
   * Aliases promotion would move, in one request: from the indices holding them now, to the new
   * ones (`filter`: the filtered alias's filter in `alias` mode).
   */
  readonly aliases: { alias: string; from: string[]; to: string; filter?: unknown }[];
  /**
   * Whether the shrink guard can hold this run before promotion (a production build over a live
   * one, not approved ahead with allowShrink), with its limits and why not when it cannot.
   */
  readonly shrinkGuard: { applies: boolean; reason: string; limits: ShrinkLimits };
}

/** Whether the shrink guard applies to a refresh, and why (the dry run's words). */
export function shrinkGuardOf(
  config: Config,
  request: { profile: string; allowShrink?: boolean | undefined },
  live: boolean,
): RefreshPlan['shrinkGuard'] {
  const limits = shrinkLimits(config);
  const rule = `held for approval if it loses more than ${percentText(limits.maxDrop)} of all rows (PROMOTE_MAX_DROP) or ${percentText(limits.maxSourceDrop)} of a source with at least ${limits.sourceMinRows} rows (PROMOTE_MAX_SOURCE_DROP, PROMOTE_SOURCE_MIN_ROWS)`;
  const [applies, reason] =
    request.profile === 'staging'
      ? [false, 'does not apply: staging is exempt']
      : !live
        ? [false, 'does not apply: first promotion (nothing live to lose)']
        : request.allowShrink
          ? [false, `approved ahead (--allow-shrink): never held, the comparison is recorded`]
          : [true, `applies: ${rule}`];
  return { applies, reason, limits };
}

async function aliasHolders(es: EsClient, alias: string): Promise<string[]> {
  if (!(await es.indices.existsAlias({ name: alias }))) return [];
  return Object.keys(await es.indices.getAlias({ name: alias }));
}

/**
 * The plan of a refresh (a dry run): stages, chunk count and ranges, index names, the aliases
 * that would move. Only reads: no run is recorded, nothing is enqueued, created or moved.
 */
export async function planRefresh(
  deps: { config: Config; catalog: Pool; es: EsClient; media: MediaCatalog },
  request: RefreshRequest & { shadow?: boolean },
): Promise<RefreshPlan> {
  const def = getMedia(deps.media, request.media);
  const profile = parseProfile(request.profile);
  const names = refreshNames(def, profile, '<runId>', deps.config.ELASTICSEARCH_INDEX_PREFIX);
  const { chunkSizeRows, rowCap } = chunkSettings(deps.config, def, profile, request.chunkSizeRows);
  const query: CatalogQuery = async (sql, params) =>
    (await deps.catalog.query(sql, params)).rows as never[];
  const plan = await planChunks(query, def, chunkSizeRows, rowCap, deps.config.MAX_CHUNKS_PER_RUN);
  const stages = stageOrder.flatMap((s) =>
    s !== 'compare' ? [s] : request.shadow ? ['compare (held for approval beyond thresholds)'] : [],
  );
  const aliases = await Promise.all(
    names.aliases.map(async (a) => ({
      alias: a.alias,
      from: await aliasHolders(deps.es, a.alias),
      to: a.index,
      ...(a.filter === undefined ? {} : { filter: a.filter }),
    })),
  );
  return {
    media: def.name,
    profile,
    shadow: request.shadow ?? false,
    stages,
    chunks: {
      count: plan.ranges.length,
      chunkSizeRows,
      rowCap,
      upstreamRows: plan.upstreamRows,
      plannedRows: plan.plannedRows,
      ranges: summariseRanges(plan.ranges),
    },
    tables: { live: names.table, temp: names.tempTable },
    filtered: names.filtered,
    indices: { main: names.index, filtered: names.filteredIndex },
    aliases,
    // A live build is one the main alias points at.
    shrinkGuard: shrinkGuardOf(
      deps.config,
      { ...request, profile },
      (aliases[0]?.from.length ?? 0) > 0,
    ),
  };
}

/** The plan as text for the terminal. */
export function formatPlan(plan: RefreshPlan): string {
  const lines = [
    `dry run: ${plan.profile} refresh of ${plan.media}${plan.shadow ? ' (shadow)' : ''} — nothing is changed`,
    `stages:  ${plan.stages.join(' -> ')}`,
    `chunks:  ${plan.chunks.count} of ~${plan.chunks.chunkSizeRows} rows over ${plan.chunks.plannedRows} of ${plan.chunks.upstreamRows} upstream rows${plan.chunks.rowCap === null ? '' : ` (row cap ${plan.chunks.rowCap})`}`,
    ...plan.chunks.ranges,
    `tables:  build ${plan.tables.temp}, swap into ${plan.tables.live}`,
    plan.indices.filtered === null
      ? `indices: ${plan.indices.main} (filtered: alias, no second index)`
      : `indices: ${plan.indices.main}, ${plan.indices.filtered} (filtered: index)`,
    ...plan.aliases.map(
      (a) =>
        `alias:   ${a.alias}: ${a.from.length > 0 ? a.from.join(', ') : '(none)'} -> ${a.to}${a.filter === undefined ? '' : ` with filter ${JSON.stringify(a.filter)}`}${plan.shadow || plan.shrinkGuard.applies ? ' (after approval if held)' : ''}`,
    ),
    `shrink:  guard ${plan.shrinkGuard.reason}`,
  ];
  return `${lines.join('\n')}\n`;
}
