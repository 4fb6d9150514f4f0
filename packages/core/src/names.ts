import { randomBytes } from 'node:crypto';
import { nonSensitiveQuery, type FilteredMode } from './filtered-view.js';
import type { MediaDefinition } from './media.js';

export type Profile = 'production' | 'staging';
export const profiles: readonly Profile[] = ['production', 'staging'];

/**
 * A run id: UTC time plus 4 hex digits (random, unless `suffix` gives them: a scheduled slot's
 * come from a hash of the slot), lower-case, safe in index, job and table names.
 */
export function newRunId(now = new Date(), suffix = randomBytes(2).toString('hex')): string {
  const iso = now.toISOString(); // 2026-11-24T07:01:02.123Z
  const date = iso.slice(0, 10).replaceAll('-', '');
  const time = iso.slice(11, 19).replaceAll(':', '');
  return `${date}-${time}-${suffix}`;
}

export const runIdPattern = /^\d{8}-\d{6}-[0-9a-f]{4}$/;

/** Where promotion puts an alias: onto `index`, with `filter` for a filtered alias. */
export interface AliasTarget {
  readonly alias: string;
  readonly index: string;
  readonly filter?: Record<string, unknown>;
}

/** Every name a refresh of one media type under one profile touches. */
export interface RefreshNames {
  /** The live API table. */
  readonly table: string;
  /** The table the refresh builds before the swap. */
  readonly tempTable: string;
  /** The table the live one becomes during the swap (dropped in the same transaction). */
  readonly oldTable: string;
  /** The replaced live table, kept for rollback (KEEP_PREVIOUS_BUILD). */
  readonly previousTable: string;
  /** Aliases moved at promotion. */
  readonly alias: string;
  readonly filteredAlias: string;
  /** How the filtered alias is served (the media definition's `filtered`). */
  readonly filtered: FilteredMode;
  /** The main index this run creates (every document). */
  readonly index: string;
  /**
   * The second index this run creates in `index` mode (documents without sensitive terms only);
   * null in `alias` mode, where the filtered alias is a filter over `index`.
   */
  readonly filteredIndex: string | null;
  /** Every index this run creates, fills and verifies: `index`, then `filteredIndex` if any. */
  readonly indices: readonly string[];
  /** Both aliases as promotion moves them, in one request: the main one, then the filtered one. */
  readonly aliases: readonly [AliasTarget, AliasTarget];
  /**
   * Matches indices made by earlier runs of this media/profile, in either mode (so a build of
   * the other mode is still kept or cleaned up).
   */
  readonly indexPattern: RegExp;
}

/**
 * Names for `def` under `profile`. Staging names are all prefixed, so a staging run can never
 * touch production tables or aliases. `indexPrefix` (ELASTICSEARCH_INDEX_PREFIX) lets several
 * deployments share one cluster.
 */
export function refreshNames(
  def: MediaDefinition,
  profile: Profile,
  runId: string,
  indexPrefix = '',
): RefreshNames {
  const p = profile === 'staging' ? 'staging_' : '';
  const ip = `${indexPrefix}${profile === 'staging' ? 'staging-' : ''}`;
  const base = `${ip}${def.name}`;
  const index = `${base}-${runId}`;
  const filteredIndex = def.filtered === 'index' ? `${index}-filtered` : null;
  const alias = base;
  const filteredAlias = `${base}-filtered`;
  return {
    table: `${p}${def.downstreamTable}`,
    tempTable: `${p}temp_import_${def.name}`,
    oldTable: `${p}${def.downstreamTable}_old`,
    previousTable: `${p}${def.downstreamTable}_previous`,
    alias,
    filteredAlias,
    filtered: def.filtered,
    index,
    filteredIndex,
    indices: filteredIndex === null ? [index] : [index, filteredIndex],
    aliases: aliasTargets(alias, filteredAlias, index, filteredIndex),
    indexPattern: new RegExp(`^${base}-\\d{8}-\\d{6}-[0-9a-f]{4}(-filtered)?$`),
  };
}

/**
 * Both aliases of a build as promotion (and rollback) puts them: the main alias on `index`, the
 * filtered alias on `filteredIndex` (`index` mode) or, when it is null, on `index` with the
 * filter (`alias` mode).
 */
export function aliasTargets(
  alias: string,
  filteredAlias: string,
  index: string,
  filteredIndex: string | null,
): [AliasTarget, AliasTarget] {
  return [
    { alias, index },
    filteredIndex === null
      ? { alias: filteredAlias, index, filter: nonSensitiveQuery() }
      : { alias: filteredAlias, index: filteredIndex },
  ];
}

/** The comment promotion leaves on a table it built: it survives renames. */
export function buildMarker(runId: string): string {
  return `freshet run ${runId}`;
}

/** The run that built a table, from its comment (null: none, or not Freshet's). */
export function runOfMarker(comment: string | null | undefined): string | null {
  const m = /^freshet run (\d{8}-\d{6}-[0-9a-f]{4})$/.exec(comment ?? '');
  return m?.[1] ?? null;
}

/** The run that made an index of Freshet's (its main or filtered index), or null. */
export function runOfIndex(index: string | undefined): string | null {
  const m = /-(\d{8}-\d{6}-[0-9a-f]{4})(-filtered)?$/.exec(index ?? '');
  return m?.[1] ?? null;
}
