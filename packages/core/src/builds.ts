import type { Client } from '@elastic/elasticsearch';
import type pg from 'pg';
import { aliasFilters } from './live-views.js';
import type { MediaDefinition } from './media.js';
import {
  aliasTargets,
  refreshNames,
  runOfIndex,
  runOfMarker,
  type AliasTarget,
  type Profile,
  type RefreshNames,
} from './names.js';

/** The builds of one media type under one profile: the one serving and the one kept. */
export interface MediaBuilds {
  readonly media: string;
  readonly profile: Profile;
  /** The live API table and the kept one (`<table>_previous`). */
  readonly table: string;
  readonly previousTable: string;
  /** The run that built the live table (its `freshet run` comment), or null. */
  readonly liveRun: string | null;
  /** Whether `<table>_previous` exists, and the run that built it (null: none or no comment). */
  readonly previousExists: boolean;
  readonly keptRun: string | null;
  /** The run whose index the main alias is on, or null (not promoted yet). */
  readonly servingRun: string | null;
  /** The indices of the live run that exist (its main index, and its filtered one if any). */
  readonly liveIndices: readonly string[];
  /** The indices of the kept run that exist. */
  readonly keptIndices: readonly string[];
  /** The aliases a rollback moves. */
  readonly alias: string;
  readonly filteredAlias: string;
}

/** Where a rollback goes, or why there is none. */
export type RollbackPlan =
  | {
      readonly kind: 'refused';
      readonly reason: string;
    }
  | {
      /**
       * `swap`: the two tables trade places and both aliases move to the kept build's indices.
       * `aliases`: a rollback that stopped after its table swap is finished (aliases only).
       */
      readonly kind: 'swap' | 'aliases';
      /** The run whose build serves afterwards, and the one kept afterwards. */
      readonly toRun: string;
      readonly fromRun: string;
      readonly targets: readonly [AliasTarget, AliasTarget];
    };

async function tableRun(
  api: pg.Pool,
  table: string,
): Promise<{ exists: boolean; run: string | null }> {
  const { rows } = await api.query<{ exists: boolean; c: string | null }>(
    `SELECT to_regclass($1) IS NOT NULL AS exists, obj_description(to_regclass($1), 'pg_class') AS c`,
    [table],
  );
  return { exists: rows[0]?.exists === true, run: runOfMarker(rows[0]?.c) };
}

/**
 * The indices of a run, as it was built: its main index, then its filtered index if it was built
 * in `index` mode; none when its main index is gone.
 */
async function indicesOfRun(es: Client, names: RefreshNames): Promise<string[]> {
  if (!(await es.indices.exists({ index: names.index }))) return [];
  const filtered = `${names.index}-filtered`;
  return (await es.indices.exists({ index: filtered })) ? [names.index, filtered] : [names.index];
}

/** Reads the serving and the kept build of `def` under `profile`, as PostgreSQL and ES have them. */
export async function mediaBuilds(
  deps: { api: pg.Pool; es: Client; indexPrefix: string },
  def: MediaDefinition,
  profile: Profile,
): Promise<MediaBuilds> {
  const names = refreshNames(def, profile, 'live', deps.indexPrefix);
  const live = await tableRun(deps.api, names.table);
  const kept = await tableRun(deps.api, names.previousTable);
  const [serving] = await aliasFilters(deps.es, names.alias);
  const indicesOf = (run: string | null) =>
    run === null
      ? Promise.resolve([])
      : indicesOfRun(deps.es, refreshNames(def, profile, run, deps.indexPrefix));
  return {
    media: def.name,
    profile,
    table: names.table,
    previousTable: names.previousTable,
    liveRun: live.run,
    previousExists: kept.exists,
    keptRun: kept.run,
    servingRun: runOfIndex(serving?.index),
    liveIndices: await indicesOf(live.run),
    keptIndices: await indicesOf(kept.run),
    alias: names.alias,
    filteredAlias: names.filteredAlias,
  };
}

/**
 * Where a rollback of `b` goes: to the kept build (the tables trade places, both aliases move to
 * its indices, in the filtered mode it was built in), or, when a rollback stopped between its
 * table swap and its alias move, on to the live table's build (aliases only). Refused when there
 * is nothing to roll back to or the table and the aliases are of builds it cannot tell apart.
 */
export function planRollback(b: MediaBuilds): RollbackPlan {
  const refuse = (reason: string): RollbackPlan => ({ kind: 'refused', reason });
  const what = `${b.media} (${b.profile})`;
  if (!b.previousExists) {
    return refuse(
      `nothing to roll back to for ${what}: there is no kept table ${b.previousTable} (no build has been replaced since KEEP_PREVIOUS_BUILD=true, or it is false)`,
    );
  }
  if (b.keptRun === null) {
    return refuse(
      `nothing to roll back to for ${what}: ${b.previousTable} has no "freshet run <runId>" comment, so the build it belongs to is unknown`,
    );
  }
  if (b.liveRun === null) {
    return refuse(
      `cannot roll back ${what}: the live table ${b.table} has no "freshet run <runId>" comment; refresh ${b.media} to start over`,
    );
  }
  const targetsOf = (indices: readonly string[]) =>
    aliasTargets(b.alias, b.filteredAlias, indices[0] ?? '', indices[1] ?? null);
  if (b.servingRun === b.liveRun) {
    if (b.keptIndices.length === 0) {
      return refuse(
        `nothing to roll back to for ${what}: the indices of the kept build (run ${b.keptRun}) are gone; only a refresh can replace the live build`,
      );
    }
    return {
      kind: 'swap',
      toRun: b.keptRun,
      fromRun: b.liveRun,
      targets: targetsOf(b.keptIndices),
    };
  }
  if (b.servingRun === b.keptRun && b.liveIndices.length > 0) {
    return {
      kind: 'aliases',
      toRun: b.liveRun,
      fromRun: b.keptRun,
      targets: targetsOf(b.liveIndices),
    };
  }
  return refuse(
    `cannot roll back ${what}: the live table is run ${b.liveRun}'s, the kept table run ${b.keptRun}'s, and the aliases serve ${b.servingRun === null ? 'nothing' : `run ${b.servingRun}`}; they are of different builds, so nothing was changed; refresh ${b.media} to start over`,
  );
}
