import type { Job, Queue } from 'bullmq';
import {
  ConflictError,
  getMedia,
  ident,
  publishControl,
  refreshNames,
  RunStore,
  type Config,
  type EsClient,
  type MediaCatalog,
  type Pool,
  type Queues,
  type RunJobData,
} from '@freshet/core';

/** Dependencies of the run controls. */
export interface ControlDeps {
  readonly api: Pool;
  readonly queues: Queues;
}

const controllable = ['queued', 'running', 'blocked'];

/**
 * Pauses a run: from now on no job of it starts (workers check the run before every job and park
 * the job instead); running jobs finish. Resume continues where it stopped.
 */
export async function pauseRun(deps: ControlDeps, runId: string, actor: string): Promise<void> {
  const store = new RunStore(deps.api);
  const run = await store.getRun(runId);
  if (!controllable.includes(run.status)) {
    throw new ConflictError(
      `run ${runId} is ${run.status}; only a queued, running or blocked run can be paused`,
    );
  }
  await store.setStatus(runId, 'paused', run.error);
  await store.audit(runId, actor, 'pause');
}

/** Delayed (parked) jobs of a run, across the run's queues. */
async function parkedJobs(queue: Queue, runId: string): Promise<Job[]> {
  const page = 1000;
  const found: Job[] = [];
  const total = await queue.getDelayedCount();
  for (let start = 0; start < total; start += page) {
    const jobs = await queue.getDelayed(start, start + page - 1);
    for (const job of jobs)
      if ((job.data as RunJobData | undefined)?.runId === runId) found.push(job);
  }
  return found;
}

/** Puts a run's parked (delayed) jobs back in their queues at once; returns how many. */
async function releaseParked(queues: Queues, runId: string): Promise<number> {
  let promoted = 0;
  for (const queue of queues.all()) {
    for (const job of await parkedJobs(queue, runId)) {
      // A job delayed for a retry backoff is promoted too: resuming should not wait.
      await job.promote().catch(() => undefined);
      promoted++;
    }
  }
  return promoted;
}

/**
 * Resumes a paused run where it stopped: it is running again and the jobs parked while it was
 * paused go back to their queues at once.
 */
export async function resumeRun(deps: ControlDeps, runId: string, actor: string): Promise<number> {
  const store = new RunStore(deps.api);
  const run = await store.getRun(runId);
  if (run.status !== 'paused') throw new ConflictError(`run ${runId} is ${run.status}, not paused`);
  await store.setStatus(runId, run.started_at ? 'running' : 'queued');
  const promoted = await releaseParked(deps.queues, runId);
  await store.audit(runId, actor, 'resume', { promoted });
  return promoted;
}

/**
 * Approves a run held for approval (a shadow build beyond its thresholds, or a build that shrank
 * beyond the shrink guard's limits): promotion proceeds.
 */
export async function approveRun(deps: ControlDeps, runId: string, actor: string): Promise<void> {
  const store = new RunStore(deps.api);
  const run = await store.getRun(runId);
  if (run.status !== 'awaiting-approval') {
    throw new ConflictError(`run ${runId} is ${run.status}, not awaiting approval`);
  }
  await store.setStatus(runId, 'running');
  await releaseParked(deps.queues, runId);
  await store.audit(runId, actor, 'approve');
}

/**
 * Discards a run held for approval (shadow comparison or shrink guard): the run is cancelled, its
 * table and indices are removed, and the live ones are left as they are.
 */
export async function discardRun(
  deps: ControlDeps & { es: EsClient; media: MediaCatalog; config: Config },
  runId: string,
  actor: string,
): Promise<void> {
  const store = new RunStore(deps.api);
  const run = await store.getRun(runId);
  if (run.status !== 'awaiting-approval') {
    throw new ConflictError(`run ${runId} is ${run.status}, not awaiting approval`);
  }
  await store.setStatus(runId, 'cancelled', `discarded by ${actor}`);
  const names = refreshNames(
    getMedia(deps.media, run.media),
    run.profile,
    runId,
    deps.config.ELASTICSEARCH_INDEX_PREFIX,
  );
  await deps.api.query(`DROP TABLE IF EXISTS ${ident(names.tempTable)}`);
  await deps.es.indices.delete({ index: [...names.indices], ignore_unavailable: true });
  // The parked promote wakes, sees the run cancelled and ends without retries.
  await releaseParked(deps.queues, runId);
  await store.audit(runId, actor, 'discard', {
    dropped: [names.tempTable, ...names.indices],
  });
}

/**
 * Cancels a run: no job of it starts again, and every worker process aborts the run's running
 * jobs, cancelling their queries at the server.
 */
export async function cancelRun(deps: ControlDeps, runId: string, actor: string): Promise<void> {
  const store = new RunStore(deps.api);
  const run = await store.getRun(runId);
  if (['succeeded', 'failed', 'cancelled'].includes(run.status)) {
    throw new ConflictError(`run ${runId} is already ${run.status}`);
  }
  await store.setStatus(runId, 'cancelled', `cancelled by ${actor}`);
  await publishControl(deps.queues.redis, deps.queues.prefix, { type: 'cancel', runId });
  await store.audit(runId, actor, 'cancel');
}
