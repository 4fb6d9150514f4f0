import type { Client } from '@elastic/elasticsearch';
import { getMedia } from '../media.js';
import {
  buildMarker,
  refreshNames,
  runOfIndex,
  type AliasTarget,
  type RefreshNames,
} from '../names.js';
import { jobIds, type RunJobData } from '../queues.js';
import { ident } from '../sql.js';
import type { JobContext } from './context.js';
import { waitForGreen } from './green.js';
import { buildTableIndexes } from './table-indexes.js';
import { swapUnderShortLocks } from './table-swap.js';

export interface PromoteResult {
  /** Indices that served the aliases before (kept for rollback). */
  readonly previous: string[];
  /** Older indices deleted. */
  readonly deleted: string[];
  readonly tableSwapped: boolean;
}

async function tableComment(ctx: JobContext, table: string): Promise<string | null> {
  const { rows } = await ctx.scope.query<{ c: string | null }>(
    ctx.dbs.api,
    'SELECT obj_description(to_regclass($1), $2) AS c',
    [table, 'pg_class'],
  );
  return rows[0]?.c ?? null;
}

/**
 * Swaps the temp table in for the live one in one transaction, with issue "trust"'s lock rules
 * (short lock_timeout, retried with backoff until the attempt's deadline or a cancel; the run's
 * waiting reason names the lock holder). With `keep` (KEEP_PREVIOUS_BUILD) the replaced live
 * table becomes `<table>_previous`, an older one is dropped; otherwise it is dropped.
 */
async function swapTables(
  ctx: JobContext,
  runId: string,
  names: RefreshNames,
  keep: boolean,
): Promise<void> {
  const [live, temp, old, kept] = [
    names.table,
    names.tempTable,
    names.oldTable,
    names.previousTable,
  ].map((t) => ident(t));
  const jobId = jobIds.stage(runId, 'promote');
  let waiting: string | null = null;
  try {
    const { tries, waitedMs } = await swapUnderShortLocks({
      scope: ctx.scope,
      db: ctx.dbs.api,
      what: 'promotion',
      tables: [names.table, names.tempTable, names.oldTable, names.previousTable],
      // Tables nobody else reads first, the live table last.
      statements: [
        `LOCK TABLE ${temp} IN ACCESS EXCLUSIVE MODE`,
        `DROP TABLE IF EXISTS ${old}`,
        // Without keep, a kept build older than the replaced one goes too: nothing rolls back to it.
        `DROP TABLE IF EXISTS ${kept}`,
        `ALTER TABLE IF EXISTS ${live} RENAME TO ${keep ? kept : old}`,
        `ALTER TABLE ${temp} RENAME TO ${live}`,
        `DROP TABLE IF EXISTS ${old}`,
      ],
      onWait: async (reason) => {
        if (waiting === null) {
          await ctx.store.log(runId, jobId, 'warn', 'promotion waits for a lock', { reason });
        }
        waiting = reason;
        await ctx.store.setWaiting(runId, reason);
      },
    });
    if (waiting !== null) {
      await ctx.store.setWaiting(runId, null);
      await ctx.store.log(runId, jobId, 'info', 'promotion took its locks', {
        table: names.table,
        tries,
        waitedMs,
      });
    }
  } catch (err) {
    // The run is blocked or cancelled now: it no longer waits for the lock.
    if (waiting !== null) {
      await ctx.store.setWaiting(runId, null).catch((e: unknown) => {
        ctx.logger.warn({ err: e, runId }, 'could not clear the waiting reason');
      });
    }
    throw err;
  }
}

/** Indices currently holding `alias`. */
async function aliasHolders(es: Client, alias: string): Promise<string[]> {
  const exists = await es.indices.existsAlias({ name: alias });
  if (!exists) return [];
  return Object.keys(await es.indices.getAlias({ name: alias }));
}

/**
 * Moves both aliases to the new build in ONE `_aliases` request, so search never sees the main
 * and filtered aliases on different builds, nor a moment without either: each is removed from
 * whatever holds it now (the previous main index, or the previous filtered index when the media
 * type switched from `index` to `alias` mode) and added to its target (the filtered alias with
 * its filter in `alias` mode). Returns the indices that held them (deduplicated). Rollback moves
 * them back to the kept build the same way.
 */
export async function swapAliases(es: Client, targets: readonly AliasTarget[]): Promise<string[]> {
  const actions: (
    | { remove: { index: string; alias: string } }
    | { add: { index: string; alias: string; filter?: Record<string, unknown> } }
  )[] = [];
  const previous = new Set<string>();
  for (const target of targets) {
    const holders = await aliasHolders(es, target.alias);
    for (const holder of holders) {
      if (holder === target.index) continue;
      actions.push({ remove: { index: holder, alias: target.alias } });
      previous.add(holder);
    }
    if (!holders.includes(target.index)) {
      const { alias, index, filter } = target;
      actions.push({ add: { index, alias, ...(filter === undefined ? {} : { filter }) } });
    }
  }
  if (actions.length > 0) await es.indices.updateAliases({ actions });
  return [...previous];
}

/**
 * Promotion: builds the temp table's indexes (idempotently), waits while the new indices are not
 * green (within the attempt's deadline; checked again right before the aliases move), swaps the
 * temp table with the live table in one transaction, moves both aliases at once (as the media's `filtered` mode says), keeps the
 * previous indices for rollback and deletes older ones. A retry after a partial promotion picks
 * up where it stopped.
 */
export async function runPromote(ctx: JobContext, data: RunJobData): Promise<PromoteResult> {
  const def = getMedia(ctx.media, data.media);
  const names = refreshNames(def, data.profile, data.runId, ctx.config.ELASTICSEARCH_INDEX_PREFIX);
  const marker = buildMarker(data.runId);
  let tableSwapped = false;
  if ((await tableComment(ctx, names.tempTable)) === marker) {
    // Finalize built them already (beside its Elasticsearch work); a retry finds them there.
    await buildTableIndexes(ctx, def, names, data.runId);
    // A temp table built by an earlier version has a plain key index of its own.
    await ctx.scope.query(
      ctx.dbs.api,
      `DROP INDEX IF EXISTS ${ident(`${names.tempTable.slice(0, 50)}_key_build`)}`,
    );
    // The table and the aliases move together: neither while the new indices are not green.
    await waitForGreen(ctx, data.runId, names.indices, { stage: 'promote' });
    // The statements above lock only the temp table, which no query of the API reads; the swap
    // is the one that locks the live table.
    await swapTables(ctx, data.runId, names, ctx.config.KEEP_PREVIOUS_BUILD);
    tableSwapped = true;
  } else if ((await tableComment(ctx, names.table)) !== marker) {
    throw new Error(
      `neither ${names.tempTable} nor ${names.table} belongs to run ${data.runId}; nothing to promote`,
    );
  }

  // Never an alias on an index that is not green (a node may have left since the table swap).
  await waitForGreen(ctx, data.runId, names.indices, { stage: 'promote' });
  const previous = await swapAliases(ctx.es, names.aliases);

  // Keep the new build and the one it replaced (one index or two, whichever mode each was built
  // in); delete older builds of this media/profile.
  const keep = new Set([...names.indices, ...previous]);
  const run = await ctx.store.getRun(data.runId);
  const stored = run.counts as { previousIndices?: string[] } | null;
  for (const p of stored?.previousIndices ?? []) keep.add(p);
  if (previous.length > 0) await ctx.store.mergeCounts(data.runId, { previousIndices: previous });
  // Once per run (a retry of a promotion that got this far records nothing more).
  await ctx.store.recordPromotion({
    prefix: run.prefix,
    media: run.media,
    profile: run.profile,
    action: 'promote',
    runId: data.runId,
    replacedRunId: runOfIndex([...previous, ...(stored?.previousIndices ?? [])][0]),
    actor: run.requested_by ?? 'cli',
  });
  const all = await ctx.es.cat.indices({ index: `${names.alias}-*`, format: 'json', h: 'index' });
  const deleted = all
    .map((i) => i.index ?? '')
    .filter((i) => names.indexPattern.test(i) && !keep.has(i));
  if (deleted.length > 0) await ctx.es.indices.delete({ index: deleted.join(',') });
  return {
    previous: [...keep].filter((i) => !names.indices.includes(i)),
    deleted,
    tableSwapped,
  };
}
