import type pg from 'pg';
import type { KeyRange, RangeList } from './chunks.js';
import { retryTransient } from './transient.js';
import { ConflictError, DuplicateRunIdError, NotFoundError } from './errors.js';
import type { Profile } from './names.js';
import type { StageName } from './queues.js';

/** Statuses in which a run holds its media type's refresh lock. */
export const activeStatuses = [
  'queued',
  'running',
  'blocked',
  'paused',
  'awaiting-approval',
] as const;
export type RunStatus = (typeof activeStatuses)[number] | 'succeeded' | 'failed' | 'cancelled';

export type StepStatus = 'pending' | 'running' | 'done' | 'failed' | 'skipped';

/**
 * How an attempt ended: `done`, `failed`, or `lost` (its worker died or its job stalled out
 * before it could say; closed by the next attempt of the job or by the reconciler).
 */
export type AttemptStatus = 'running' | 'done' | 'failed' | 'lost';

export interface RunRow {
  id: string;
  prefix: string;
  media: string;
  profile: Profile;
  status: RunStatus;
  stage: StageName | null;
  chunk_count: number | null;
  plan: Record<string, unknown> | null;
  counts: Record<string, unknown> | null;
  error: string | null;
  /** Why the run's work is waiting (no headroom), or null. */
  waiting_reason: string | null;
  waiting_since: Date | null;
  requested_by: string | null;
  created_at: Date;
  started_at: Date | null;
  finished_at: Date | null;
  updated_at: Date;
}

/**
 * The advisory lock (class, then `hashtext` of prefix, media and profile) a rollback holds while
 * it runs, and which a new run needs shared while it is recorded: no refresh starts during a
 * rollback, and a rollback checks for an active run under it.
 */
const MEDIA_LOCK_CLASS = 74_665_001;
const mediaLockName = (prefix: string, media: string, profile: Profile) =>
  `${prefix}/${media}/${profile}`;

/** How long a rollback waits for the media lock before saying another one is in progress. */
const MEDIA_LOCK_WAIT_MS = 2_000;

/** A change of the build serving a media type: a promotion, or a rollback. */
export interface PromotionRow {
  id: number;
  prefix: string;
  media: string;
  profile: Profile;
  action: 'promote' | 'rollback';
  /** The run whose build serves after the change. */
  run_id: string;
  /** The run whose build served before it (kept for rollback when KEEP_PREVIOUS_BUILD). */
  replaced_run_id: string | null;
  actor: string;
  at: Date;
}

export interface NewRun {
  id: string;
  prefix: string;
  media: string;
  profile: Profile;
  requestedBy?: string;
  plan?: Record<string, unknown>;
}

/**
 * The run row of `$1` (`snap`), a queued run made running (`u`), and the status the statement
 * may act on (`cur`). One statement sees one snapshot: when `u` waited for the row (a pause or
 * cancel being committed) and then found it no longer queued, `snap` still says queued, so the
 * status is unknown (NULL) and the caller asks again in a new statement. No row lock is kept: a
 * slow attempt insert never holds up the other jobs of the run.
 */
const runGateSql = `snap AS (SELECT status, waiting_reason FROM freshet.runs WHERE id = $1),
       u AS (UPDATE freshet.runs SET status = 'running', started_at = coalesce(started_at, now()), updated_at = now()
              WHERE id = $1 AND status = 'queued' RETURNING status),
       cur AS (SELECT CASE WHEN EXISTS (SELECT 1 FROM u) THEN 'running'
                           WHEN snap.status = 'queued' THEN NULL
                           ELSE snap.status END AS status, snap.waiting_reason FROM snap)`;

/** How often a gate whose answer was overtaken by a concurrent change asks again. */
const gateRounds = 10;

/** Options of a {@link RunStore}. */
export interface RunStoreOptions {
  /**
   * How long (ms) a write is retried while the database is unreachable or restarting (a
   * transient error), with backoff; 0 (the default) tries once. Workers pass STORE_RETRY_MS, so
   * the record of an attempt, a stage or a run survives a database that is away for a while.
   */
  readonly retryMs?: number;
  /** Called before each retry of a write (to log it). */
  readonly onRetry?: (err: unknown, delayMs: number) => void;
}

/** The run store: every run's state, stages, chunks, attempts and logs, in Postgres. */
export class RunStore {
  constructor(
    private readonly db: pg.Pool,
    private readonly options: RunStoreOptions = {},
  ) {}

  /**
   * A write, retried on transient errors within `retryMs`. Every write here is idempotent or
   * made so (a retried createRun recognises its own run; a retried beginAttempt closes the
   * row its first try may have left), so a retry after an unknown outcome is safe.
   */
  private write<R extends pg.QueryResultRow = pg.QueryResultRow>(
    sql: string,
    params?: unknown[],
    onRetry?: () => void,
  ): Promise<pg.QueryResult<R>> {
    const run = () => this.db.query<R>(sql, params);
    const budgetMs = this.options.retryMs ?? 0;
    if (budgetMs <= 0) return run();
    return retryTransient(run, {
      budgetMs,
      onRetry: (err, delayMs) => {
        onRetry?.();
        this.options.onRetry?.(err, delayMs);
      },
    });
  }

  /**
   * Records a new queued run. Throws {@link ConflictError} if a run of the same media and
   * profile is still active (the one-refresh-per-media lock).
   */
  async createRun(run: NewRun): Promise<void> {
    // Whether the insert was sent more than once: a first try may have committed unseen.
    let retried = false;
    try {
      // Refused (no row) while a rollback of the media holds its lock.
      const { rowCount } = await this.write(
        `INSERT INTO freshet.runs (id, prefix, media, profile, status, requested_by, plan)
         SELECT $1, $2, $3, $4, 'queued', $5, $6
          WHERE pg_try_advisory_xact_lock_shared(${MEDIA_LOCK_CLASS}, hashtext($7))`,
        [
          run.id,
          run.prefix,
          run.media,
          run.profile,
          run.requestedBy ?? null,
          run.plan ?? null,
          mediaLockName(run.prefix, run.media, run.profile),
        ],
        () => (retried = true),
      );
      if (rowCount === 0) {
        throw new ConflictError(
          `a rollback of ${run.media} (${run.profile}) is in progress; start the refresh once it is done`,
        );
      }
    } catch (err) {
      const { code, constraint } = err as { code?: string; constraint?: string };
      if (code !== '23505') throw err;
      if (constraint === 'runs_pkey') {
        if (retried) return;
        throw new DuplicateRunIdError(`a run with id ${run.id} already exists`, { cause: err });
      }
      const active = await this.activeRun(run.prefix, run.media, run.profile);
      if (retried && active?.id === run.id) return;
      throw new ConflictError(
        `a ${run.profile} refresh of ${run.media} is already ${active?.status ?? 'active'} (run ${active?.id ?? '?'}); wait for it, retry it or cancel it first`,
        { cause: err },
      );
    }
  }

  /**
   * Runs `fn` holding the media lock of `media`/`profile` (on a connection of its own, for as
   * long as `fn` runs): no run of it can be recorded meanwhile. Throws {@link ConflictError} if
   * another holder (a rollback) keeps it past a short wait.
   */
  async withMediaLock<T>(
    prefix: string,
    media: string,
    profile: Profile,
    fn: () => Promise<T>,
  ): Promise<T> {
    const client = await this.db.connect();
    const name = mediaLockName(prefix, media, profile);
    let locked = false;
    try {
      await client.query(`SET lock_timeout = '${MEDIA_LOCK_WAIT_MS}ms'`);
      try {
        await client.query(`SELECT pg_advisory_lock(${MEDIA_LOCK_CLASS}, hashtext($1))`, [name]);
      } catch (err) {
        if ((err as { code?: unknown }).code !== '55P03') throw err;
        throw new ConflictError(
          `another rollback of ${media} (${profile}) is in progress; wait for it to end and look again`,
          { cause: err },
        );
      }
      locked = true;
      await client.query('RESET lock_timeout');
      return await fn();
    } finally {
      let healthy = true;
      if (locked) {
        await client
          .query(`SELECT pg_advisory_unlock(${MEDIA_LOCK_CLASS}, hashtext($1))`, [name])
          .catch(() => (healthy = false));
      }
      // A connection that could not unlock is closed: its lock goes with it.
      client.release(!healthy);
    }
  }

  /** Records a change of the build serving a media type (a promotion once per run). */
  async recordPromotion(p: {
    prefix: string;
    media: string;
    profile: Profile;
    action: 'promote' | 'rollback';
    runId: string;
    replacedRunId: string | null;
    actor: string;
  }): Promise<void> {
    await this.write(
      `INSERT INTO freshet.promotions (prefix, media, profile, action, run_id, replaced_run_id, actor)
       VALUES ($1, $2, $3, $4, $5, $6, $7)
       ON CONFLICT (run_id) WHERE action = 'promote' DO NOTHING`,
      [p.prefix, p.media, p.profile, p.action, p.runId, p.replacedRunId, p.actor],
    );
  }

  /** The latest changes of the serving build, newest first (one media/profile, or all). */
  async listPromotions(
    prefix: string,
    opts: { media?: string; profile?: Profile; limit?: number } = {},
  ): Promise<PromotionRow[]> {
    const { rows } = await this.db.query<PromotionRow>(
      `SELECT * FROM freshet.promotions WHERE prefix = $1
         AND ($2::text IS NULL OR media = $2) AND ($3::text IS NULL OR profile = $3)
       ORDER BY id DESC LIMIT $4`,
      [prefix, opts.media ?? null, opts.profile ?? null, opts.limit ?? 20],
    );
    return rows;
  }

  async activeRun(prefix: string, media: string, profile: Profile): Promise<RunRow | undefined> {
    const { rows } = await this.db.query<RunRow>(
      `SELECT * FROM freshet.runs WHERE prefix = $1 AND media = $2 AND profile = $3
         AND status = ANY($4) ORDER BY created_at DESC LIMIT 1`,
      [prefix, media, profile, activeStatuses],
    );
    return rows[0];
  }

  /** Those of `ids` that are recorded runs. */
  async existingRuns(ids: readonly string[]): Promise<string[]> {
    const { rows } = await this.db.query<{ id: string }>(
      'SELECT id FROM freshet.runs WHERE id = ANY($1::text[])',
      [[...ids]],
    );
    return rows.map((r) => r.id);
  }

  async getRun(id: string): Promise<RunRow> {
    const { rows } = await this.db.query<RunRow>('SELECT * FROM freshet.runs WHERE id = $1', [id]);
    if (!rows[0]) throw new NotFoundError(`no run with id ${JSON.stringify(id)}`);
    return rows[0];
  }

  async listRuns(prefix: string, limit = 50): Promise<RunRow[]> {
    const { rows } = await this.db.query<RunRow>(
      'SELECT * FROM freshet.runs WHERE prefix = $1 ORDER BY created_at DESC LIMIT $2',
      [prefix, limit],
    );
    return rows;
  }

  async deleteRun(id: string): Promise<void> {
    await this.write('DELETE FROM freshet.runs WHERE id = $1', [id]);
  }

  /** Sets the run's status (and error); terminal statuses stamp finished_at. */
  async setStatus(id: string, status: RunStatus, error: string | null = null): Promise<void> {
    await this.write(
      `UPDATE freshet.runs SET status = $2, error = $3, updated_at = now(),
         started_at = CASE WHEN $2 = 'running' THEN coalesce(started_at, now()) ELSE started_at END,
         finished_at = CASE WHEN $2 IN ('succeeded', 'failed', 'cancelled') THEN now() ELSE NULL END
       WHERE id = $1`,
      [id, status, error],
    );
  }

  /**
   * The gate every job passes before it starts: a queued run becomes running; returns the
   * run's status so the caller can hold (paused) or drop (cancelled) the job.
   */
  async gate(id: string): Promise<{ status: RunStatus; waitingReason: string | null }> {
    for (let round = 1; ; round++) {
      const { rows } = await this.write<{
        status: RunStatus | null;
        waiting_reason: string | null;
      }>(`WITH ${runGateSql} SELECT status, waiting_reason FROM cur`, [id]);
      const row = rows[0];
      if (!row) throw new NotFoundError(`no run with id ${JSON.stringify(id)}`);
      if (row.status !== null) return { status: row.status, waitingReason: row.waiting_reason };
      if (round >= gateRounds) throw new Error(`the status of run ${id} kept changing`);
    }
  }

  /** Records why the run's work waits (or clears it with null); only writes on a change. */
  async setWaiting(id: string, reason: string | null): Promise<void> {
    await this.write(
      `UPDATE freshet.runs SET waiting_reason = $2,
         waiting_since = CASE WHEN $2::text IS NULL THEN NULL ELSE coalesce(waiting_since, now()) END,
         updated_at = now()
       WHERE id = $1 AND waiting_reason IS DISTINCT FROM $2`,
      [id, reason],
    );
  }

  /**
   * A queued run whose first job starts is running. With `fromBlocked` (an operator's retry), a
   * blocked run runs again; other chunks still finishing never unblock it by themselves.
   */
  async markRunning(id: string, fromBlocked = false): Promise<void> {
    await this.write(
      `UPDATE freshet.runs SET status = 'running', error = NULL, updated_at = now(),
         started_at = coalesce(started_at, now())
       WHERE id = $1 AND (status = 'queued' OR ($2 AND status = 'blocked'))`,
      [id, fromBlocked],
    );
  }

  /** Marks the run running at `stage` unless it is in a state a worker must not override. */
  async enterStage(id: string, stage: StageName): Promise<void> {
    await this.write(
      `UPDATE freshet.runs SET stage = $2, updated_at = now(),
         status = CASE WHEN status = 'queued' THEN 'running' ELSE status END,
         started_at = coalesce(started_at, now())
       WHERE id = $1`,
      [id, stage],
    );
    await this.write(
      `INSERT INTO freshet.stages (run_id, stage, status, started_at) VALUES ($1, $2, 'running', now())
       ON CONFLICT (run_id, stage) DO UPDATE SET status = 'running', error = NULL,
         started_at = coalesce(freshet.stages.started_at, now()), finished_at = NULL`,
      [id, stage],
    );
  }

  async finishStage(
    id: string,
    stage: StageName,
    status: StepStatus,
    result: unknown = null,
    error: string | null = null,
  ): Promise<void> {
    await this.write(
      `INSERT INTO freshet.stages (run_id, stage, status, started_at, finished_at, result, error)
       VALUES ($1, $2, $3, now(), now(), $4, $5)
       ON CONFLICT (run_id, stage) DO UPDATE SET status = $3, finished_at = now(),
         result = coalesce($4, freshet.stages.result), error = $5`,
      [id, stage, status, result === null ? null : JSON.stringify(result), error],
    );
  }

  async mergeCounts(id: string, counts: Record<string, unknown>): Promise<void> {
    await this.write(
      `UPDATE freshet.runs SET counts = coalesce(counts, '{}'::jsonb) || $2::jsonb, updated_at = now() WHERE id = $1`,
      [id, JSON.stringify(counts)],
    );
  }

  async setPlan(id: string, plan: Record<string, unknown>, chunkCount: number): Promise<void> {
    await this.write(
      `UPDATE freshet.runs SET plan = coalesce(plan, '{}'::jsonb) || $2::jsonb, chunk_count = $3, updated_at = now() WHERE id = $1`,
      [id, JSON.stringify(plan), chunkCount],
    );
  }

  /** Stores the chunk ranges of a run (idempotent). */
  async saveChunks(id: string, ranges: RangeList): Promise<void> {
    const batch = 5000;
    for (let i = 0; i < ranges.length; i += batch) {
      const part = ranges.slice(i, i + batch);
      await this.write(
        `INSERT INTO freshet.chunks (run_id, chunk, range_start, range_end)
         SELECT $1, i, s, e FROM unnest($2::int[], $3::text[], $4::text[]) AS u(i, s, e)
         ON CONFLICT (run_id, chunk) DO NOTHING`,
        [id, part.map((_, j) => i + j), part.map((r) => r.start), part.map((r) => r.end)],
      );
    }
  }

  async getChunkRanges(id: string, from: number, count: number): Promise<KeyRange[]> {
    const { rows } = await this.db.query<{ range_start: string | null; range_end: string | null }>(
      `SELECT range_start, range_end FROM freshet.chunks WHERE run_id = $1 AND chunk >= $2 AND chunk < $3 ORDER BY chunk`,
      [id, from, from + count],
    );
    return rows.map((r) => ({ start: r.range_start, end: r.range_end }));
  }

  /** Records the status of one step of one chunk, with its result merged in. */
  async setChunkStep(
    id: string,
    chunk: number,
    step: 'copy' | 'clean' | 'index',
    status: StepStatus,
    result?: Record<string, unknown>,
  ): Promise<void> {
    const rowsColumn = step === 'copy' ? 'rows_copied' : step === 'index' ? 'rows_indexed' : null;
    const rows = typeof result?.rows === 'number' ? result.rows : null;
    await this.write(
      `UPDATE freshet.chunks SET ${step}_status = $3,
         result = result || $4::jsonb${rowsColumn ? `, ${rowsColumn} = coalesce($5, ${rowsColumn})` : ''}
       WHERE run_id = $1 AND chunk = $2`,
      rowsColumn
        ? [id, chunk, status, JSON.stringify(result ? { [step]: result } : {}), rows]
        : [id, chunk, status, JSON.stringify(result ? { [step]: result } : {})],
    );
  }

  /** Chunk counts per step and status, for progress. */
  async chunkProgress(id: string): Promise<ChunkProgress> {
    const { rows } = await this.db.query<ChunkProgress>(
      `SELECT count(*)::int AS total,
         count(*) FILTER (WHERE copy_status = 'done')::int AS copied,
         count(*) FILTER (WHERE clean_status = 'done')::int AS cleaned,
         count(*) FILTER (WHERE index_status = 'done')::int AS indexed,
         count(*) FILTER (WHERE 'failed' IN (copy_status, clean_status, index_status))::int AS failed,
         coalesce(sum(rows_copied), 0)::bigint AS rows_copied,
         coalesce(sum(rows_indexed), 0)::bigint AS rows_indexed
       FROM freshet.chunks WHERE run_id = $1`,
      [id],
    );
    return rows[0] as ChunkProgress;
  }

  /**
   * Starts an attempt in one round trip: passes the run's gate (a queued run becomes running),
   * records the attempt and marks the chunk step running, unless the run is paused, cancelled
   * or awaiting approval (then nothing is recorded and `attemptId` is null). An earlier attempt
   * of the same job still recorded as running is closed as `lost`: BullMQ runs a job once at a
   * time, so its worker died (or its first try of this very call left it).
   */
  async beginAttempt(a: {
    runId: string;
    jobId: string;
    step: string;
    chunk: number | null;
    chunkStep?: 'copy' | 'clean' | 'index';
    attempt: number;
    worker: string;
  }): Promise<{ status: RunStatus; waitingReason: string | null; attemptId: number | null }> {
    const chunkUpdate = a.chunkStep
      ? `, c AS (UPDATE freshet.chunks SET ${a.chunkStep}_status = 'running'
           WHERE run_id = $1 AND chunk = $4 AND EXISTS (SELECT 1 FROM ins) RETURNING 1)`
      : '';
    for (let round = 1; ; round++) {
      const { rows } = await this.write<{
        status: RunStatus | null;
        waiting_reason: string | null;
        attempt_id: number | null;
      }>(
        `WITH ${runGateSql},
       ins AS (INSERT INTO freshet.attempts (run_id, job_id, step, chunk, attempt, worker, status)
               SELECT $1, $2, $3, $4, $5, $6, 'running' FROM cur
                WHERE cur.status NOT IN ('paused', 'cancelled', 'awaiting-approval')
               RETURNING id),
       lost AS (UPDATE freshet.attempts SET status = 'lost', finished_at = now(),
                  ms = (extract(epoch FROM (now() - started_at)) * 1000)::int,
                  error = 'lost: its worker stopped before the attempt ended (the job started again)'
                 WHERE run_id = $1 AND job_id = $2 AND status = 'running' RETURNING 1)${chunkUpdate}
       SELECT cur.status, cur.waiting_reason, (SELECT id FROM ins) AS attempt_id FROM cur`,
        [a.runId, a.jobId, a.step, a.chunk, a.attempt, a.worker],
      );
      const row = rows[0];
      if (!row) throw new NotFoundError(`no run with id ${JSON.stringify(a.runId)}`);
      if (row.status !== null) {
        return { status: row.status, waitingReason: row.waiting_reason, attemptId: row.attempt_id };
      }
      if (round >= gateRounds) throw new Error(`the status of run ${a.runId} kept changing`);
    }
  }

  /** Ends an attempt that succeeded and, for a chunk step, records the step done with its result. */
  async finishAttemptDone(
    attemptId: number,
    result: unknown,
    chunk?: { runId: string; chunk: number; step: 'copy' | 'clean' | 'index' },
  ): Promise<void> {
    const rows =
      result && typeof (result as { rows?: unknown }).rows === 'number'
        ? (result as { rows: number }).rows
        : null;
    const json = result === undefined ? null : JSON.stringify(result);
    if (!chunk) {
      await this.finishAttempt(attemptId, 'done', result, null);
      return;
    }
    const rowsColumn =
      chunk.step === 'copy' ? 'rows_copied' : chunk.step === 'index' ? 'rows_indexed' : null;
    // A chunk's pass reports the rows it read (the "copied" count of the run view) and wrote.
    const read = (result as { read?: unknown } | undefined)?.read;
    await this.write(
      `WITH a AS (
         UPDATE freshet.attempts SET status = 'done', finished_at = now(),
           ms = (extract(epoch FROM (now() - started_at)) * 1000)::int, rows = $2, result = $3
          WHERE id = $1 RETURNING 1)
       UPDATE freshet.chunks SET ${chunk.step}_status = 'done',
         result = result || jsonb_build_object($6::text, $3::jsonb)${rowsColumn ? `, ${rowsColumn} = coalesce($2, ${rowsColumn})` : ''},
         rows_copied = coalesce($7, rows_copied)
        WHERE run_id = $4 AND chunk = $5`,
      [
        attemptId,
        rows,
        json,
        chunk.runId,
        chunk.chunk,
        chunk.step,
        typeof read === 'number' ? read : null,
      ],
    );
  }

  /**
   * Records that a running attempt made progress (rows streamed, a bulk answered): a long step
   * that keeps reporting it is not stuck.
   */
  async recordProgress(attemptId: number): Promise<void> {
    await this.write(
      `UPDATE freshet.attempts SET progress_at = now() WHERE id = $1 AND status = 'running'`,
      [attemptId],
    );
  }

  /** Closes the attempts of `jobId` still recorded as running as `lost` (its worker is gone). */
  async closeLostAttempts(runId: string, jobId: string, reason: string): Promise<number> {
    const { rowCount } = await this.write(
      `UPDATE freshet.attempts SET status = 'lost', finished_at = now(),
         ms = (extract(epoch FROM (now() - started_at)) * 1000)::int, error = $3
        WHERE run_id = $1 AND job_id = $2 AND status = 'running'`,
      [runId, jobId, reason],
    );
    return rowCount ?? 0;
  }

  async startAttempt(a: {
    runId: string;
    jobId: string;
    step: string;
    chunk: number | null;
    attempt: number;
    worker: string;
  }): Promise<number> {
    const { rows } = await this.write<{ id: number }>(
      `INSERT INTO freshet.attempts (run_id, job_id, step, chunk, attempt, worker, status)
       VALUES ($1, $2, $3, $4, $5, $6, 'running') RETURNING id`,
      [a.runId, a.jobId, a.step, a.chunk, a.attempt, a.worker],
    );
    return (rows[0] as { id: number }).id;
  }

  async finishAttempt(
    attemptId: number,
    status: Exclude<AttemptStatus, 'running'>,
    result: unknown,
    error: string | null,
  ): Promise<void> {
    const rows =
      result && typeof (result as { rows?: unknown }).rows === 'number'
        ? (result as { rows: number }).rows
        : null;
    await this.write(
      `UPDATE freshet.attempts SET status = $2, finished_at = now(),
         ms = (extract(epoch FROM (now() - started_at)) * 1000)::int, rows = $3, result = $4, error = $5
       WHERE id = $1`,
      [attemptId, status, rows, result === undefined ? null : JSON.stringify(result), error],
    );
  }

  async log(
    runId: string,
    jobId: string | null,
    level: string,
    msg: string,
    fields?: Record<string, unknown>,
  ): Promise<void> {
    await this.write(
      'INSERT INTO freshet.logs (run_id, job_id, level, msg, fields) VALUES ($1, $2, $3, $4, $5)',
      [runId, jobId, level, msg, fields ? JSON.stringify(fields) : null],
    );
  }

  async audit(
    runId: string | null,
    actor: string,
    action: string,
    detail?: unknown,
  ): Promise<void> {
    await this.write(
      'INSERT INTO freshet.audit (run_id, actor, action, detail) VALUES ($1, $2, $3, $4)',
      [runId, actor, action, detail === undefined ? null : JSON.stringify(detail)],
    );
  }
}

export interface ChunkProgress {
  total: number;
  copied: number;
  cleaned: number;
  indexed: number;
  failed: number;
  rows_copied: number;
  rows_indexed: number;
}
