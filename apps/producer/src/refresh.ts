import { Job, type Queue } from 'bullmq';
import {
  buildRefreshFlow,
  ConflictError,
  ensureRunStore,
  getMedia,
  newRunId,
  profiles,
  RunStore,
  UserError,
  type Config,
  type MediaCatalog,
  type Pool,
  type Profile,
  type Queues,
  type RunJobData,
} from '@freshet/core';

export interface RefreshRequest {
  readonly media: string;
  readonly profile?: string;
  readonly chunkSizeRows?: number;
  readonly requestedBy?: string;
  /**
   * The run id to use (default: a new random one). A scheduler passes one derived from the
   * schedule slot, so a slot can never start two runs; it must match `runIdPattern`.
   */
  readonly runId?: string;
  /** Shadow build: compare before promotion; promote only within thresholds or on approval. */
  readonly shadow?: boolean;
}

/** Parses a profile name, with an error listing the valid ones. */
export function parseProfile(value: string | undefined): Profile {
  const profile = value ?? 'production';
  if (!(profiles as readonly string[]).includes(profile)) {
    throw new UserError(
      `unknown profile ${JSON.stringify(profile)}; expected one of ${profiles.join(', ')}`,
    );
  }
  return profile as Profile;
}

/**
 * Starts a refresh: records the run (taking the per-media lock: a second refresh of the same media
 * and profile is refused with a ConflictError) and enqueues its flow. Returns the run id.
 */
export async function startRefresh(
  deps: { config: Config; api: Pool; media: MediaCatalog; queues: Queues },
  request: RefreshRequest,
): Promise<string> {
  const def = getMedia(deps.media, request.media);
  const profile = parseProfile(request.profile);
  await ensureRunStore(deps.api);
  const store = new RunStore(deps.api);
  const runId = request.runId ?? newRunId();
  const data: RunJobData = {
    runId,
    media: def.name,
    profile,
    ...(request.chunkSizeRows ? { chunkSizeRows: request.chunkSizeRows } : {}),
    ...(request.shadow ? { shadow: true } : {}),
  };
  await store.createRun({
    id: runId,
    prefix: deps.queues.prefix,
    media: def.name,
    profile,
    ...(request.requestedBy ? { requestedBy: request.requestedBy } : {}),
  });
  try {
    await deps.queues.flow.add(buildRefreshFlow(deps.config, data));
  } catch (err) {
    await store.setStatus(runId, 'failed', `could not enqueue: ${(err as Error).message}`);
    throw err;
  }
  await store.audit(runId, request.requestedBy ?? 'cli', 'start', { media: def.name, profile });
  return runId;
}

/** Failed jobs of a run, across the stage and chunk queues. */
export async function failedJobsOfRun(queues: Queues, runId: string): Promise<Job[]> {
  const found: Job[] = [];
  for (const queue of queues.all()) found.push(...(await scanFailed(queue, runId)));
  return found;
}

async function scanFailed(queue: Queue, runId: string): Promise<Job[]> {
  const page = 1000;
  const found: Job[] = [];
  const total = await queue.getFailedCount();
  for (let start = 0; start < total; start += page) {
    const jobs = await queue.getFailed(start, start + page - 1);
    for (const job of jobs)
      if ((job.data as RunJobData | undefined)?.runId === runId) found.push(job);
  }
  return found;
}

/**
 * Retries a blocked run from the point of failure: every failed job of the run goes back to
 * the queue; completed chunks are not redone. Returns the retried job ids.
 */
export async function retryRun(
  deps: { api: Pool; queues: Queues },
  runId: string,
  actor = 'cli',
): Promise<string[]> {
  const store = new RunStore(deps.api);
  const run = await store.getRun(runId);
  if (run.status === 'succeeded' || run.status === 'cancelled') {
    throw new ConflictError(`run ${runId} is ${run.status}; there is nothing to retry`);
  }
  const jobs = await failedJobsOfRun(deps.queues, runId);
  if (jobs.length === 0) {
    throw new ConflictError(`run ${runId} has no failed job to retry (status ${run.status})`);
  }
  // Running first: a retried job that fails all its attempts again must be able to block the run
  // again. The audit row too: it opens the new alert episode, which a quick new failure needs.
  await store.markRunning(runId, true);
  await store.audit(runId, actor, 'retry', { jobs: jobs.map((j) => j.id) });
  for (const job of jobs) await job.retry('failed');
  return jobs.map((j) => j.id ?? '?');
}
