import { setTimeout as delay } from 'node:timers/promises';
import { getMedia } from '../media.js';
import { refreshNames, type RefreshNames } from '../names.js';
import { jobIds, type RunJobData } from '../queues.js';
import { ident } from '../sql.js';
import type { JobContext } from './context.js';
import { buildTableIndexes } from './table-indexes.js';

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
 * How long one statement of the table swap waits for a lock (ms). While the swap waits for its
 * ACCESS EXCLUSIVE lock on the live table, every later query of that table queues behind it, so
 * the wait is kept short: on timeout the swap rolls back (the queue drains) and tries again later.
 * This bounds how long the API waits behind a promotion, however long a reader holds the table.
 */
const LOCK_TIMEOUT_MS = 500;
/** Pause after the first lock timeout (ms); doubled after each one, up to the cap. */
const LOCK_RETRY_FIRST_MS = 200;
const LOCK_RETRY_MAX_MS = 5_000;
/** SQLSTATE lock_not_available, raised when lock_timeout expires. */
const LOCK_NOT_AVAILABLE = '55P03';

const isLockTimeout = (err: unknown): boolean =>
  (err as { code?: unknown }).code === LOCK_NOT_AVAILABLE;

/** The pause after the `n`th lock timeout (n >= 1): doubling, capped, with ±25 % jitter. */
function lockRetryDelayMs(n: number): number {
  const base = Math.min(LOCK_RETRY_MAX_MS, LOCK_RETRY_FIRST_MS * 2 ** (n - 1));
  return Math.round(base * (0.75 + Math.random() * 0.5));
}

interface LockHolder {
  pid: number | null;
  relation: string;
  state: string | null;
  query: string | null;
  held_s: number | null;
}

/**
 * Why the swap waits: the sessions holding a lock on the live, temp or old table (the swap's own
 * backend has rolled back, so pg_blocking_pids has nothing to say). Best effort: a failed lookup
 * is reported in the reason, never thrown.
 */
async function lockWaitReason(ctx: JobContext, names: RefreshNames): Promise<string> {
  const tables = [names.table, names.tempTable, names.oldTable].map((t) => ident(t));
  try {
    const { rows } = await ctx.scope.query<LockHolder>(
      ctx.dbs.api,
      `SELECT DISTINCT ON (l.pid) l.pid, l.relation::regclass::text AS relation, a.state,
              left(regexp_replace(a.query, '\\s+', ' ', 'g'), 80) AS query,
              round(extract(epoch FROM now() - coalesce(a.xact_start, a.query_start)))::int AS held_s
         FROM pg_locks l LEFT JOIN pg_stat_activity a ON a.pid = l.pid
        WHERE l.locktype = 'relation' AND l.granted AND l.pid IS DISTINCT FROM pg_backend_pid()
          AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
          AND l.relation = ANY (ARRAY(SELECT to_regclass(t)::oid FROM unnest($1::text[]) AS t))
        ORDER BY l.pid, a.xact_start`,
      [tables],
    );
    if (rows.length === 0) {
      return `promotion waits for a lock on ${names.table} (its holder was gone when looked up)`;
    }
    rows.sort((a, b) => (b.held_s ?? 0) - (a.held_s ?? 0));
    const shown = rows.slice(0, 3).map((h) => {
      const who = h.pid === null ? 'a prepared transaction' : `pid ${h.pid}`;
      const what = [h.state, h.query].filter((part) => part !== null).join(': ');
      return `${who}${what === '' ? '' : ` (${what})`}${h.held_s === null ? '' : ` for ${h.held_s} s`}`;
    });
    const more = rows.length > shown.length ? `; and ${rows.length - shown.length} more` : '';
    const relations = [...new Set(rows.map((h) => h.relation))].join(', ');
    const by = rows.length === 1 ? 'another session' : `${rows.length} other sessions`;
    return `promotion waits for a lock on ${relations} (held by ${by}: ${shown.join('; ')}${more})`;
  } catch (err) {
    return `promotion waits for a lock on ${names.table} (holder unknown: ${(err as Error).message})`;
  }
}

/**
 * Swaps the temp table in for the live one in one transaction, taking each lock with a short
 * lock_timeout. On a lock timeout it rolls back, records why the run waits and who holds the
 * lock, and tries again after a growing pause, until the attempt's deadline or a cancel.
 */
async function swapTables(ctx: JobContext, runId: string, names: RefreshNames): Promise<void> {
  const [live, temp, old] = [names.table, names.tempTable, names.oldTable].map((t) => ident(t));
  const jobId = jobIds.stage(runId, 'promote');
  const started = Date.now();
  let waiting: string | null = null;
  try {
    for (let tries = 1; ; tries++) {
      ctx.scope.check();
      try {
        await ctx.scope.transaction(ctx.dbs.api, async (client) => {
          await client.query(`SET LOCAL lock_timeout = '${LOCK_TIMEOUT_MS}ms'`);
          // Tables nobody else reads first, the live table last: once it is locked nothing in
          // the transaction waits any more, so queries of it queue only for the swap itself.
          await client.query(`LOCK TABLE ${temp} IN ACCESS EXCLUSIVE MODE`);
          await client.query(`DROP TABLE IF EXISTS ${old}`);
          await client.query(`ALTER TABLE IF EXISTS ${live} RENAME TO ${old}`);
          await client.query(`ALTER TABLE ${temp} RENAME TO ${live}`);
          await client.query(`DROP TABLE IF EXISTS ${old}`);
        });
      } catch (err) {
        if (!isLockTimeout(err)) throw err;
        const reason = await lockWaitReason(ctx, names);
        if (waiting === null) {
          await ctx.store.log(runId, jobId, 'warn', 'promotion waits for a lock', { reason });
        }
        waiting = reason;
        await ctx.store.setWaiting(runId, reason);
        await delay(lockRetryDelayMs(tries), undefined, { signal: ctx.scope.signal }).catch(
          (e: unknown) => {
            if (!ctx.scope.signal.aborted) throw e;
          },
        );
        continue;
      }
      if (waiting !== null) {
        await ctx.store.setWaiting(runId, null);
        await ctx.store.log(runId, jobId, 'info', 'promotion took its locks', {
          table: names.table,
          tries,
          waitedMs: Date.now() - started,
        });
      }
      return;
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
async function aliasHolders(ctx: JobContext, alias: string): Promise<string[]> {
  const exists = await ctx.es.indices.existsAlias({ name: alias });
  if (!exists) return [];
  return Object.keys(await ctx.es.indices.getAlias({ name: alias }));
}

/**
 * Moves both aliases to the new build in ONE `_aliases` request, so search never sees the main
 * and filtered aliases on different builds, nor a moment without either: each is removed from
 * whatever holds it now (the previous main index, or the previous filtered index when the media
 * type switched from `index` to `alias` mode) and added to its target (the filtered alias with
 * its filter in `alias` mode). Returns the indices that held them (deduplicated).
 */
async function swapAliases(ctx: JobContext, names: RefreshNames): Promise<string[]> {
  const actions: (
    | { remove: { index: string; alias: string } }
    | { add: { index: string; alias: string; filter?: Record<string, unknown> } }
  )[] = [];
  const previous = new Set<string>();
  for (const target of names.aliases) {
    const holders = await aliasHolders(ctx, target.alias);
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
  if (actions.length > 0) await ctx.es.indices.updateAliases({ actions });
  return [...previous];
}

/**
 * Promotion: builds the temp table's indexes (idempotently), swaps it with the live table in one
 * transaction, moves both aliases at once (as the media's `filtered` mode says), keeps the
 * previous indices for rollback and deletes older ones. A retry after a partial promotion picks
 * up where it stopped.
 */
export async function runPromote(ctx: JobContext, data: RunJobData): Promise<PromoteResult> {
  const def = getMedia(ctx.media, data.media);
  const names = refreshNames(def, data.profile, data.runId, ctx.config.ELASTICSEARCH_INDEX_PREFIX);
  const marker = `freshet run ${data.runId}`;
  let tableSwapped = false;
  if ((await tableComment(ctx, names.tempTable)) === marker) {
    // Finalize built them already (beside its Elasticsearch work); a retry finds them there.
    await buildTableIndexes(ctx, def, names, data.runId);
    // A temp table built by an earlier version has a plain key index of its own.
    await ctx.scope.query(
      ctx.dbs.api,
      `DROP INDEX IF EXISTS ${ident(`${names.tempTable.slice(0, 50)}_key_build`)}`,
    );
    // The statements above lock only the temp table, which no query of the API reads; the swap
    // is the one that locks the live table.
    await swapTables(ctx, data.runId, names);
    tableSwapped = true;
  } else if ((await tableComment(ctx, names.table)) !== marker) {
    throw new Error(
      `neither ${names.tempTable} nor ${names.table} belongs to run ${data.runId}; nothing to promote`,
    );
  }

  const previous = await swapAliases(ctx, names);

  // Keep the new build and the one it replaced (one index or two, whichever mode each was built
  // in); delete older builds of this media/profile.
  const keep = new Set([...names.indices, ...previous]);
  const stored = (await ctx.store.getRun(data.runId)).counts as {
    previousIndices?: string[];
  } | null;
  for (const p of stored?.previousIndices ?? []) keep.add(p);
  if (previous.length > 0) await ctx.store.mergeCounts(data.runId, { previousIndices: previous });
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
