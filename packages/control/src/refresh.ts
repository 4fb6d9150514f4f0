import { Job, type Queue } from 'bullmq';
import {
  chunkSettings,
  buildRefreshFlow,
  ConflictError,
  DuplicateRunIdError,
  ensureRunStore,
  getMedia,
  isRedisConnectionError,
  newRunId,
  profiles,
  RedisUnavailableError,
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
  /**
   * Approve ahead of time a production build that shrank beyond the shrink guard's limits
   * (PROMOTE_MAX_DROP, PROMOTE_MAX_SOURCE_DROP): it is promoted at once, the comparison is still
   * recorded, and the approval is audited with `requestedBy`.
   */
  readonly allowShrink?: boolean;
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
 * Resolves once the connection is ready (one PING if it is not yet): before a run is recorded,
 * so a Redis that is away refuses the refresh with nothing written. BullMQ would otherwise
 * wait for the connection without a bound, and add the flow whenever Redis came back.
 */
async function redisReady(redis: Queues['redis'], url: string): Promise<void> {
  if (redis.status === 'ready') return;
  try {
    await redis.ping();
  } catch (err) {
    if (!isRedisConnectionError(err)) throw err;
    throw new RedisUnavailableError(url, `${(err as Error).message}; the refresh was not started`, {
      cause: err,
    });
  }
}

/**
 * Takes back a run whose flow could not be added to Redis, so it never blocks its media as a
 * `queued` run with no jobs: its row is deleted (with its stages and audit, by cascade). Should
 * the database refuse that too, the run is marked failed; should that fail as well, the
 * reconciler fails it (a run whose jobs were never enqueued) within two of its intervals.
 * Returns what happened, for the error message.
 */
async function takeBack(store: RunStore, runId: string, reason: string): Promise<string> {
  try {
    await store.deleteRun(runId);
    return 'the run was not recorded';
  } catch (deleteErr) {
    try {
      await store.setStatus(runId, 'failed', `could not enqueue: ${reason}`);
      return `run ${runId} is recorded as failed (it could not be deleted: ${(deleteErr as Error).message})`;
    } catch {
      return `run ${runId} could not be taken back (${(deleteErr as Error).message}); the reconciler will fail it`;
    }
  }
}

/**
 * Starts a refresh: records the run (taking the per-media lock: a second refresh of the same media
 * and profile is refused with a ConflictError) and enqueues its flow. Returns the run id. If the
 * flow cannot be added, the run is taken back (deleted) before the error is thrown, so the media
 * is free again; a Redis that cannot be reached is a {@link RedisUnavailableError}.
 */
export async function startRefresh(
  deps: { config: Config; api: Pool; media: MediaCatalog; queues: Queues },
  request: RefreshRequest,
): Promise<string> {
  const def = getMedia(deps.media, request.media);
  const profile = parseProfile(request.profile);
  // A chunk size below the floor is refused before anything is recorded.
  chunkSettings(deps.config, def, profile, request.chunkSizeRows);
  await ensureRunStore(deps.api);
  const store = new RunStore(deps.api);
  await redisReady(deps.queues.redis, deps.config.REDIS_URL);
  // A new id is unique per second by 16 random bits: one drawn twice in the same second is drawn
  // again (a caller's own id, a schedule slot's, is never replaced).
  let runId = request.runId ?? newRunId();
  for (let draw = 1; ; draw++) {
    try {
      await store.createRun({
        id: runId,
        prefix: deps.queues.prefix,
        media: def.name,
        profile,
        ...(request.requestedBy ? { requestedBy: request.requestedBy } : {}),
      });
      break;
    } catch (err) {
      if (!(err instanceof DuplicateRunIdError) || request.runId !== undefined || draw >= 5) {
        throw err;
      }
      runId = newRunId();
    }
  }
  const data: RunJobData = {
    runId,
    media: def.name,
    profile,
    ...(request.chunkSizeRows ? { chunkSizeRows: request.chunkSizeRows } : {}),
    ...(request.shadow ? { shadow: true } : {}),
    ...(request.allowShrink ? { allowShrink: true } : {}),
  };
  try {
    await deps.queues.flow.add(buildRefreshFlow(deps.config, data));
  } catch (err) {
    const reason = (err as Error).message;
    const outcome = await takeBack(store, runId, reason);
    if (isRedisConnectionError(err)) {
      throw new RedisUnavailableError(
        deps.config.REDIS_URL,
        `${reason}; the refresh was not started (${outcome})`,
        { cause: err },
      );
    }
    throw new Error(`could not enqueue the refresh: ${reason} (${outcome})`, { cause: err });
  }
  await store.audit(runId, request.requestedBy ?? 'cli', 'start', {
    media: def.name,
    profile,
    ...(request.allowShrink ? { allowShrink: true } : {}),
  });
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
