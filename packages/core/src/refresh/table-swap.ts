import { setTimeout as delay } from 'node:timers/promises';
import type pg from 'pg';
import type { JobScope } from '../job-scope.js';
import { ident } from '../sql.js';

/**
 * How long one statement of a table swap waits for a lock (ms). While the swap waits for its
 * ACCESS EXCLUSIVE lock on the live table, every later query of that table queues behind it, so
 * the wait is kept short: on timeout the swap rolls back (the queue drains) and tries again later.
 * This bounds how long the API waits behind a promotion or a rollback, however long a reader
 * holds the table.
 */
export const LOCK_TIMEOUT_MS = 500;
/** Pause after the first lock timeout (ms); doubled after each one, up to the cap. */
const LOCK_RETRY_FIRST_MS = 200;
const LOCK_RETRY_MAX_MS = 5_000;
/** SQLSTATE lock_not_available, raised when lock_timeout expires. */
const LOCK_NOT_AVAILABLE = '55P03';

export const isLockTimeout = (err: unknown): boolean =>
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
 * Why a swap waits: the sessions holding a lock on one of `tables` (the swap's own backend has
 * rolled back, so pg_blocking_pids has nothing to say). `what` names the swap ("promotion",
 * "rollback"). Best effort: a failed lookup is reported in the reason, never thrown.
 */
export async function lockWaitReason(
  scope: JobScope,
  db: pg.Pool,
  what: string,
  tables: readonly string[],
): Promise<string> {
  const live = tables[0] ?? '?';
  try {
    const { rows } = await scope.query<LockHolder>(
      db,
      `SELECT DISTINCT ON (l.pid) l.pid, l.relation::regclass::text AS relation, a.state,
              left(regexp_replace(a.query, '\\s+', ' ', 'g'), 80) AS query,
              round(extract(epoch FROM now() - coalesce(a.xact_start, a.query_start)))::int AS held_s
         FROM pg_locks l LEFT JOIN pg_stat_activity a ON a.pid = l.pid
        WHERE l.locktype = 'relation' AND l.granted AND l.pid IS DISTINCT FROM pg_backend_pid()
          AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
          AND l.relation = ANY (ARRAY(SELECT to_regclass(t)::oid FROM unnest($1::text[]) AS t))
        ORDER BY l.pid, a.xact_start`,
      [tables.map((t) => ident(t))],
    );
    if (rows.length === 0) {
      return `${what} waits for a lock on ${live} (its holder was gone when looked up)`;
    }
    rows.sort((a, b) => (b.held_s ?? 0) - (a.held_s ?? 0));
    const shown = rows.slice(0, 3).map((h) => {
      const who = h.pid === null ? 'a prepared transaction' : `pid ${h.pid}`;
      const state = [h.state, h.query].filter((part) => part !== null).join(': ');
      return `${who}${state === '' ? '' : ` (${state})`}${h.held_s === null ? '' : ` for ${h.held_s} s`}`;
    });
    const more = rows.length > shown.length ? `; and ${rows.length - shown.length} more` : '';
    const relations = [...new Set(rows.map((h) => h.relation))].join(', ');
    const by = rows.length === 1 ? 'another session' : `${rows.length} other sessions`;
    return `${what} waits for a lock on ${relations} (held by ${by}: ${shown.join('; ')}${more})`;
  } catch (err) {
    return `${what} waits for a lock on ${live} (holder unknown: ${(err as Error).message})`;
  }
}

/** A table swap: renames (and drops) in one transaction, every lock taken with a short timeout. */
export interface TableSwap {
  readonly scope: JobScope;
  readonly db: pg.Pool;
  /** Names the swap in the waiting reason ("promotion", "rollback"). */
  readonly what: string;
  /** The tables whose lock holders a waiting reason names, the live table first. */
  readonly tables: readonly string[];
  /**
   * The statements, in order. Lock the tables nobody else reads first and the live table last:
   * once it is locked nothing in the transaction waits any more, so queries of it queue only for
   * the swap itself.
   */
  readonly statements: readonly string[];
  /** Called after each lock timeout with why the swap waits (who holds the lock). */
  onWait(reason: string, tries: number): Promise<void>;
}

/**
 * Runs a table swap in one transaction, each lock with a short lock_timeout. On a lock timeout it
 * rolls back, reports why it waits, and tries again after a growing pause, until the scope's
 * signal aborts (a deadline or a cancel). Resolves with the tries and the time it waited.
 */
export async function swapUnderShortLocks(
  swap: TableSwap,
): Promise<{ tries: number; waitedMs: number }> {
  const started = Date.now();
  for (let tries = 1; ; tries++) {
    swap.scope.check();
    try {
      await swap.scope.transaction(swap.db, async (client) => {
        await client.query(`SET LOCAL lock_timeout = '${LOCK_TIMEOUT_MS}ms'`);
        for (const statement of swap.statements) await client.query(statement);
      });
      return { tries, waitedMs: Date.now() - started };
    } catch (err) {
      if (!isLockTimeout(err)) throw err;
    }
    await swap.onWait(await lockWaitReason(swap.scope, swap.db, swap.what, swap.tables), tries);
    await delay(lockRetryDelayMs(tries), undefined, { signal: swap.scope.signal }).catch(
      (e: unknown) => {
        if (!swap.scope.signal.aborted) throw e;
      },
    );
  }
}
