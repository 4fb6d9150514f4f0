import { hostname } from 'node:os';
import { UnrecoverableError, WaitingChildrenError, type Job } from 'bullmq';
import type { RefreshContext, RunJobData } from '@freshet/core';

/** This worker process, as recorded with each attempt. */
export const workerName = `${hostname()}:${process.pid}`;

/** True when this attempt is the job's last: afterwards the run is blocked, not retried. */
export function isFinalAttempt(job: Job, err: unknown): boolean {
  return err instanceof UnrecoverableError || job.attemptsMade + 1 >= (job.opts.attempts ?? 1);
}

/**
 * Runs one attempt of a job and records it in the run store (start, end, result or error,
 * log lines), so history survives worker exit and Redis cleanup.
 */
export async function tracked<T>(
  ctx: RefreshContext,
  job: Job<RunJobData>,
  step: string,
  chunk: number | null,
  fn: () => Promise<T>,
  onFinalFailure: (err: Error) => Promise<void>,
): Promise<T> {
  const { runId } = job.data;
  const jobId = job.id ?? '?';
  const attemptId = await ctx.store.startAttempt({
    runId,
    jobId,
    step,
    chunk,
    attempt: job.attemptsMade + 1,
    worker: workerName,
  });
  const log = ctx.logger.child({ runId, jobId, step, chunk });
  try {
    const result = await fn();
    await ctx.store.finishAttempt(attemptId, 'done', result, null);
    log.debug({ result }, 'job done');
    return result;
  } catch (err) {
    if (err instanceof WaitingChildrenError) {
      await ctx.store.finishAttempt(attemptId, 'done', { waitingChildren: true }, null);
      throw err;
    }
    const e = err as Error;
    const final = isFinalAttempt(job, e);
    await ctx.store.finishAttempt(attemptId, 'failed', null, e.message);
    await ctx.store.log(
      runId,
      jobId,
      final ? 'error' : 'warn',
      final ? 'attempt failed, no attempts left' : 'attempt failed, will retry',
      {
        step,
        chunk,
        attempt: job.attemptsMade + 1,
        error: e.message,
      },
    );
    log.warn({ err: e, final }, 'job attempt failed');
    if (final) await onFinalFailure(e);
    throw err;
  }
}
