import { randomBytes } from 'node:crypto';
import type { MediaDefinition } from './media.js';

export type Profile = 'production' | 'staging';
export const profiles: readonly Profile[] = ['production', 'staging'];

/** A run id: UTC time plus 4 random hex digits, lower-case, safe in index, job and table names. */
export function newRunId(now = new Date()): string {
  const iso = now.toISOString(); // 2026-11-24T07:01:02.123Z
  const date = iso.slice(0, 10).replaceAll('-', '');
  const time = iso.slice(11, 19).replaceAll(':', '');
  return `${date}-${time}-${randomBytes(2).toString('hex')}`;
}

export const runIdPattern = /^\d{8}-\d{6}-[0-9a-f]{4}$/;

/** Every name a refresh of one media type under one profile touches. */
export interface RefreshNames {
  /** The live API table. */
  readonly table: string;
  /** The table the refresh builds before the swap. */
  readonly tempTable: string;
  /** The table the live one becomes during the swap (dropped in the same transaction). */
  readonly oldTable: string;
  /** Aliases moved at promotion. */
  readonly alias: string;
  readonly filteredAlias: string;
  /** Indices this run creates. */
  readonly index: string;
  readonly filteredIndex: string;
  /** Matches indices made by earlier runs of this media/profile. */
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
  return {
    table: `${p}${def.downstreamTable}`,
    tempTable: `${p}temp_import_${def.name}`,
    oldTable: `${p}${def.downstreamTable}_old`,
    alias: base,
    filteredAlias: `${base}-filtered`,
    index: `${base}-${runId}`,
    filteredIndex: `${base}-${runId}-filtered`,
    indexPattern: new RegExp(`^${base}-\\d{8}-\\d{6}-[0-9a-f]{4}(-filtered)?$`),
  };
}
