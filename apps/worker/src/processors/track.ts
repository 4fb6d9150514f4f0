import { hostname } from 'node:os';
import { DelayedError, UnrecoverableError, WaitingChildrenError, type Job } from 'bullmq';
import {
  DeadlineError,
  isTransientError,
  JobScope,
  JobLockLostError,
  jobTag,
  RunCancelledError,
  StageJob,
  stopTaggedBackends,
  type ChunkJobData,
  type JobContext,
  type RefreshContext,
  type RunJobData,
  type StageName,
} from '@freshet/core';

/** This worker process, as recorded with each attempt. */
export const workerName = `${hostname()}:${process.pid}`;

/** How long a job of a paused run is parked; resume promotes it at once. */
export const PARK_MS = 3600_000;

/** BullMQ's reason when it fails a job without running it: its workers kept dying. */
export const STALLED_OUT = 'job stalled more than allowable limit';

/**
 * A job BullMQ fails without running it (it stalled more than WORKER_MAX_STALLED_COUNT times:
 * its workers kept dying) never reaches its processor, so nothing else records the failure. The
 * run is blocked as after any final failure, never left "running"; retrying the job resumes it.
 */
export async function blockStalledOut(
  ctx: RefreshContext,
  job: Job<RunJobData> | undefined,
  err: Error,
): Promise<void> {
  if (!job || err.message !== STALLED_OUT) return;
  const { runId } = job.data;
  const run = await ctx.store.getRun(runId);
  if (['succeeded', 'failed', 'cancelled'].includes(run.status)) return;
  const reason = `${STALLED_OUT} (its worker died ${job.stalledCounter} times)`;
  await ctx.store.closeLostAttempts(runId, job.id ?? '?', `lost: ${reason}`);
  const chunk = (job.data as Partial<ChunkJobData>).chunk;
  if (typeof chunk === 'number') {
    const step = job.name as 'copy' | 'clean' | 'index';
    await ctx.store.setChunkStep(runId, chunk, step, 'failed', { error: reason });
    await ctx.store.setStatus(runId, 'blocked', `chunk ${chunk} ${step} failed: ${reason}`);
  } else {
    if (job.name !== StageJob.index) {
      await ctx.store.finishStage(runId, job.name as StageName, 'failed', null, reason);
    }
    await ctx.store.setStatus(runId, 'blocked', `${job.name} failed: ${reason}`);
  }
  await ctx.store.log(runId, job.id ?? null, 'error', 'job failed without running: stalled out', {
    error: reason,
  });
  void ctx.notifier?.notifyRunStatus(runId);
}

/** True when this attempt is the job's last: afterwards the run is blocked, not retried. */
export function isFinalAttempt(job: Job, err: unknown): boolean {
  return err instanceof UnrecoverableError || job.attemptsMade + 1 >= (job.opts.attempts ?? 1);
}

/** Jobs running in this process, by job id, so a cancel message can abort a run's work. */
export class ActiveJobs {
  private readonly jobs = new Map<string, { runId: string; controller: AbortController }>();

  add(jobId: string, runId: string, controller: AbortController): void {
    this.jobs.set(jobId, { runId, controller });
  }

  delete(jobId: string): void {
    this.jobs.delete(jobId);
  }

  /** Aborts every job of `runId` running here; returns how many. */
  cancelRun(runId: string, reason: Error): number {
    let n = 0;
    for (const { runId: r, controller } of this.jobs.values()) {
      if (r === runId && !controller.signal.aborted) {
        controller.abort(reason);
        n++;
      }
    }
    return n;
  }
}

export interface TrackOptions {
  readonly step: string;
  readonly chunk: number | null;
  readonly deadlineMs: number;
  /** Heavy work waits for headroom (Elasticsearch health and disk, free connections). */
  readonly heavy: boolean;
  /** For a chunk step: its status and result are recorded with the attempt. */
  readonly chunkStep?: 'copy' | 'clean' | 'index';
  /** Called once when the job has no attempts left (the run is blocked or failed). */
  readonly onFinalFailure: (err: Error) => Promise<void>;
}

/**
 * Before an attempt does any work: waits for headroom (the job is delayed, not failed), stops
 * leftovers of an earlier attempt (a killed worker's queries) and records the attempt.
 */
async function beginTracked(
  ctx: RefreshContext,
  job: Job<RunJobData>,
  token: string | undefined,
  options: TrackOptions,
) {
  const { runId } = job.data;
  const jobId = job.id ?? '?';
  // Headroom first (cached): without it the job waits before anything is recorded.
  if (options.heavy && ctx.admission) {
    const admission = await ctx.admission.check();
    if (!admission.ok) {
      const { status } = await ctx.store.gate(runId);
      if (status === 'cancelled') throw new RunCancelledError(`run ${runId} was cancelled`);
      // No headroom: the work waits (it does not fail) and the run says why.
      await ctx.store.setWaiting(runId, admission.reason);
      await job.moveToDelayed(Date.now() + ctx.config.ADMISSION_RETRY_MS, token);
      throw new DelayedError();
    }
  }
  // A previous attempt may have died with queries still running: they must be gone first.
  if (job.attemptsStarted > 1) {
    const tag = jobTag(jobId);
    await Promise.all(
      [ctx.config.CATALOG_DATABASE_URL, ctx.config.API_DATABASE_URL].map((url) =>
        stopTaggedBackends(url, tag),
      ),
    );
  }
  return ctx.store.beginAttempt({
    runId,
    jobId,
    step: options.step,
    chunk: options.chunk,
    ...(options.chunkStep ? { chunkStep: options.chunkStep } : {}),
    attempt: job.attemptsMade + 1,
    worker: workerName,
  });
}

/**
 * Runs one attempt of a job:
 * - the gate: a paused run's job is parked (delayed) and starts nothing; a cancelled run's job ends;
 * - leftovers of an earlier attempt (a killed worker's queries) are stopped before starting;
 * - the attempt gets a deadline and a cancellable scope: past the deadline, or on cancel, its
 *   queries are cancelled at the server and the error is thrown only once they are gone, so a
 *   retry never overlaps them;
 * - the attempt, its result or error, and log lines are recorded in the run store.
 */
export async function tracked<T>(
  ctx: RefreshContext,
  active: ActiveJobs,
  job: Job<RunJobData>,
  token: string | undefined,
  bullSignal: AbortSignal | undefined,
  options: TrackOptions,
  fn: (jobCtx: JobContext) => Promise<T>,
): Promise<T> {
  const { runId } = job.data;
  const jobId = job.id ?? '?';
  const log = ctx.logger.child({ runId, jobId, step: options.step, chunk: options.chunk });
  let begun: Awaited<ReturnType<RefreshContext['store']['beginAttempt']>>;
  try {
    begun = await beginTracked(ctx, job, token, options);
  } catch (err) {
    if (err instanceof DelayedError || !isTransientError(err)) throw err;
    // A database that is away before any work started costs no attempt: the job waits.
    log.warn({ error: (err as Error).message }, 'a service is unreachable; the job waits');
    await job.moveToDelayed(Date.now() + ctx.config.ADMISSION_RETRY_MS, token);
    throw new DelayedError();
  }
  if (begun.status === 'cancelled') throw new RunCancelledError(`run ${runId} was cancelled`);
  if (begun.attemptId === null) {
    // Paused or awaiting approval: park the job; resume or approve puts it back at once.
    await job.moveToDelayed(Date.now() + PARK_MS, token);
    throw new DelayedError();
  }
  const attemptId = begun.attemptId;
  if (options.heavy && begun.waitingReason !== null) await ctx.store.setWaiting(runId, null);

  const controller = new AbortController();
  const timer = setTimeout(
    () =>
      controller.abort(
        new DeadlineError(`${options.step} passed its deadline of ${options.deadlineMs} ms`),
      ),
    options.deadlineMs,
  );
  const onBullAbort = () => controller.abort(new RunCancelledError('job cancelled'));
  bullSignal?.addEventListener('abort', onBullAbort, { once: true });
  active.add(jobId, runId, controller);
  const scope = new JobScope(jobTag(jobId), controller.signal, async () =>
    token === undefined
      ? true
      : (await job.extendLock(token, ctx.config.WORKER_LOCK_DURATION_MS)) === 1,
  );

  // A long step's progress is recorded now and then, so it is not taken for a stuck one.
  let recorded = 0;
  let recording = false;
  const heartbeat = setInterval(
    () => {
      // One write at a time: while the database is away, the one being retried is enough.
      if (recording || scope.progressAt <= recorded) return;
      recorded = scope.progressAt;
      recording = true;
      ctx.store
        .recordProgress(attemptId)
        .catch((err: unknown) => log.warn({ err }, 'could not record progress'))
        .finally(() => (recording = false));
    },
    Math.min(Math.max(ctx.config.STUCK_AFTER_MS / 4, 1000), 60_000),
  );
  heartbeat.unref();
  try {
    let result: T;
    try {
      result = await fn({ ...ctx, scope });
    } catch (err) {
      // Prefer the abort reason (deadline or cancel) over the query error it caused.
      throw controller.signal.aborted ? (controller.signal.reason as Error) : err;
    } finally {
      clearTimeout(timer);
      clearInterval(heartbeat);
      await scope.settle();
    }
    scope.check();
    await ctx.store.finishAttemptDone(
      attemptId,
      result,
      options.chunkStep && options.chunk !== null
        ? { runId, chunk: options.chunk, step: options.chunkStep }
        : undefined,
    );
    return result;
  } catch (err) {
    if (err instanceof WaitingChildrenError) {
      await ctx.store.finishAttempt(attemptId, 'done', { waitingChildren: true }, null);
      throw err;
    }
    const e = err as Error;
    // A taken-over attempt is not the job's last word: the one that owns the job now decides.
    const final = !(e instanceof JobLockLostError) && isFinalAttempt(job, e);
    // The record of the failure is retried while the database is away (the store does); should
    // it still fail, the job's outcome stands and the reconciler repairs the run later.
    const record = async (what: string, write: () => Promise<void>) => {
      try {
        await write();
      } catch (writeErr) {
        log.error({ err: writeErr, what }, 'could not record a failed attempt');
      }
    };
    await record('attempt', () =>
      ctx.store.finishAttempt(attemptId, 'failed', null, `${e.name}: ${e.message}`),
    );
    await record('log', () =>
      ctx.store.log(
        runId,
        jobId,
        final ? 'error' : 'warn',
        final ? 'attempt failed, no attempts left' : 'attempt failed, will retry',
        {
          step: options.step,
          chunk: options.chunk,
          attempt: job.attemptsMade + 1,
          error: `${e.name}: ${e.message}`,
        },
      ),
    );
    log.warn({ error: e.message, errorName: e.name, final }, 'job attempt failed');
    if (final && !(e instanceof RunCancelledError)) {
      await record('final failure', () => options.onFinalFailure(e));
      // Alerting must not hold the job: the notifier retries on its own and never rejects.
      void ctx.notifier?.notifyRunStatus(runId);
    }
    throw err;
  } finally {
    bullSignal?.removeEventListener('abort', onBullAbort);
    active.delete(jobId);
  }
}
