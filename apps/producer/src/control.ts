import { ConflictError, RunStore, type Pool, type Queues } from '@freshet/core';

/** Dependencies of the run controls. */
export interface ControlDeps {
  readonly api: Pool;
  readonly queues: Queues;
}

/**
 * Pauses a run: no new chunk or stage of it starts; running ones finish. Resume continues.
 * (Implementation in progress: status only.)
 */
export async function pauseRun(deps: ControlDeps, runId: string, actor: string): Promise<void> {
  const store = new RunStore(deps.api);
  const run = await store.getRun(runId);
  if (!['queued', 'running', 'blocked'].includes(run.status)) {
    throw new ConflictError(
      `run ${runId} is ${run.status}; only a queued, running or blocked run can be paused`,
    );
  }
  await store.setStatus(runId, 'paused', run.error);
  await store.audit(runId, actor, 'pause');
}

/** Resumes a paused run where it stopped. */
export async function resumeRun(deps: ControlDeps, runId: string, actor: string): Promise<void> {
  const store = new RunStore(deps.api);
  const run = await store.getRun(runId);
  if (run.status !== 'paused') throw new ConflictError(`run ${runId} is ${run.status}, not paused`);
  await store.setStatus(runId, 'running');
  await store.audit(runId, actor, 'resume');
}

/** Cancels a run: its running work is stopped at the source in every worker process. */
export async function cancelRun(deps: ControlDeps, runId: string, actor: string): Promise<void> {
  const store = new RunStore(deps.api);
  const run = await store.getRun(runId);
  if (['succeeded', 'failed', 'cancelled'].includes(run.status)) {
    throw new ConflictError(`run ${runId} is already ${run.status}`);
  }
  await store.setStatus(runId, 'cancelled', `cancelled by ${actor}`);
  await store.audit(runId, actor, 'cancel');
}
