import { UnrecoverableError } from 'bullmq';
import pg from 'pg';
import { literal } from './sql.js';

/** A step ran past its deadline; its work was cancelled at the source before this was thrown. */
export class DeadlineError extends Error {
  override readonly name = 'DeadlineError';
}

/** The run was cancelled by an operator: the job ends at once, without retries. */
export class RunCancelledError extends UnrecoverableError {
  override readonly name = 'RunCancelledError';
}

/** How long a cancelled backend gets to stop before it is terminated. */
const CANCEL_GRACE_MS = 500;
const POLL_MS = 50;

/**
 * An attempt that found, before committing, that its job was taken over by another worker (it
 * stalled: its lock expired, e.g. while Redis was away). It rolled back; the job is not failing:
 * the attempt that owns it now decides its outcome, so this one must not end the run.
 */
export class JobLockLostError extends Error {
  override readonly name = 'JobLockLostError';
}

/** The application_name every connection of a job carries, so leftovers can be found. */
export function jobTag(jobId: string): string {
  return `freshet ${jobId}`.slice(0, 63);
}

async function adminQuery<T extends pg.QueryResultRow>(
  url: string,
  sql: string,
  params: unknown[],
): Promise<T[]> {
  // A separate connection: the job's pool may be exhausted by the very queries being cancelled.
  const client = new pg.Client({ connectionString: url, application_name: 'freshet-cancel' });
  client.on('error', () => undefined);
  await client.connect();
  try {
    return (await client.query<T>(sql, params)).rows;
  } finally {
    await client.end().catch(() => undefined);
  }
}

/**
 * Stops every backend tagged `tag` (other than the caller): cancel first, terminate if it is
 * still running after a short grace, and return only once none is left.
 */
export async function stopTaggedBackends(
  url: string,
  tag: string,
  timeoutMs = 10_000,
): Promise<number> {
  const find = `SELECT pid, state FROM pg_stat_activity WHERE application_name = $1 AND pid <> pg_backend_pid()`;
  const first = await adminQuery<{ pid: number; state: string }>(url, find, [tag]);
  const active = first.filter((b) => b.state !== 'idle');
  if (active.length === 0) return 0;
  await adminQuery(url, 'SELECT pg_cancel_backend(pid) FROM unnest($1::int[]) AS pid', [
    active.map((b) => b.pid),
  ]);
  const deadline = Date.now() + timeoutMs;
  let terminated = false;
  const cancelledAt = Date.now();
  for (;;) {
    const left = (await adminQuery<{ pid: number; state: string }>(url, find, [tag])).filter(
      (b) => b.state !== 'idle',
    );
    if (left.length === 0) return active.length;
    if (!terminated && Date.now() - cancelledAt >= CANCEL_GRACE_MS) {
      await adminQuery(url, 'SELECT pg_terminate_backend(pid) FROM unnest($1::int[]) AS pid', [
        left.map((b) => b.pid),
      ]);
      terminated = true;
    }
    if (Date.now() > deadline) {
      throw new Error(`backends ${left.map((b) => b.pid).join(', ')} (${tag}) did not stop`);
    }
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
  }
}

/**
 * The lifetime of one job attempt: its PostgreSQL connections carry the job's tag, and when its
 * signal aborts (deadline or cancel) every backend it started is cancelled at the server.
 * `settle()` resolves once they are confirmed gone, so a retry never overlaps the old attempt.
 */
export class JobScope {
  /** Checked-out clients, each with the error listener it carries while checked out. */
  private readonly clients = new Map<pg.PoolClient, () => void>();
  private readonly urls = new Set<string>();
  private stopping: Promise<unknown> | undefined;
  /** When the work last reported progress (ms since the epoch), or 0. */
  progressAt = 0;

  constructor(
    readonly tag: string,
    readonly signal: AbortSignal,
    /** Whether this attempt still owns its job (its BullMQ lock); checked before each commit. */
    private readonly owned: () => Promise<boolean> = () => Promise.resolve(true),
  ) {
    signal.addEventListener('abort', () => this.stopAll(), { once: true });
  }

  private stopAll(): void {
    this.stopping ??= Promise.allSettled(
      [...this.urls].map((url) => stopTaggedBackends(url, this.tag)),
    );
  }

  /**
   * Throws unless this attempt still owns its job. Called right before a commit: an attempt that
   * stalled and was taken over by another worker rolls back instead of writing over it.
   */
  async assertOwned(): Promise<void> {
    this.check();
    if (!(await this.owned())) {
      throw new JobLockLostError(
        `${this.tag} lost its job lock (stalled and taken over); rolled back`,
      );
    }
  }

  /**
   * Says the work is moving (rows streamed, a bulk answered, one more index built): cheap, call
   * it as often as you like; the attempt's runner records it now and then, so a long step that
   * keeps moving is never reported stuck.
   */
  reportProgress(): void {
    this.progressAt = Date.now();
  }

  /** Throws the abort reason if the attempt was aborted. */
  check(): void {
    if (this.signal.aborted) throw this.signal.reason as Error;
  }

  /**
   * A client from `pool`, tagged with this job. Release it with {@link release}. `first` (SQL
   * without parameters, e.g. `BEGIN`) is sent with the tag in one round trip.
   */
  async connect(pool: pg.Pool, first?: string): Promise<pg.PoolClient> {
    this.check();
    const url = (pool as unknown as { options: { connectionString: string } }).options
      .connectionString;
    this.urls.add(url);
    const client = await pool.connect();
    // A connection lost while checked out (backend terminated, server restarted) emits 'error'
    // on the client, which would crash the worker without a listener. The query in flight fails
    // with that error anyway, and release() then discards the connection.
    const onError = () => undefined;
    client.on('error', onError);
    if (this.signal.aborted) {
      client.release(true);
      this.check();
    }
    this.clients.set(client, onError);
    try {
      const tag = `SET application_name = ${literal(this.tag)}`;
      await client.query(first === undefined ? tag : `${tag}; ${first}`);
    } catch (err) {
      // Not handed out, so nobody else will release it: discard it here.
      this.clients.delete(client);
      client.release(true);
      throw err;
    }
    return client;
  }

  /**
   * Returns a client to its pool; after an abort, or with `discard` (it was left mid-COPY), the
   * connection is closed, not reused.
   */
  release(client: pg.PoolClient, discard = false): void {
    const onError = this.clients.get(client);
    if (!onError) return;
    this.clients.delete(client);
    if (this.signal.aborted || discard) {
      client.release(true);
      return;
    }
    client
      .query("SELECT set_config('application_name', 'freshet', false)")
      .then(() => {
        client.removeListener('error', onError);
        client.release();
      })
      .catch(() => client.release(true));
  }

  /** One query on a tagged client. */
  async query<T extends pg.QueryResultRow>(
    pool: pg.Pool,
    sql: string,
    params?: unknown[],
  ): Promise<pg.QueryResult<T>> {
    const client = await this.connect(pool);
    try {
      return await client.query<T>(sql, params);
    } finally {
      this.release(client);
    }
  }

  /** Runs `fn` in a transaction on a tagged client. */
  async transaction<T>(pool: pg.Pool, fn: (client: pg.PoolClient) => Promise<T>): Promise<T> {
    const client = await this.connect(pool, 'BEGIN');
    try {
      const result = await fn(client);
      await this.assertOwned();
      await client.query('COMMIT');
      return result;
    } catch (err) {
      await client.query('ROLLBACK').catch(() => undefined);
      throw err;
    } finally {
      this.release(client);
    }
  }

  /** Resolves once every backend of an aborted attempt is gone (no-op otherwise). */
  async settle(): Promise<void> {
    if (this.signal.aborted) this.stopAll();
    await this.stopping;
  }
}

/** A scope that is never aborted, for code run outside a job (tests, CLI). */
export function detachedScope(tag = 'freshet'): JobScope {
  return new JobScope(tag, new AbortController().signal);
}
