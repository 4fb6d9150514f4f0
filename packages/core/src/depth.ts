import type { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Queues } from './queues.js';

/**
 * The Prometheus gauge the dashboard serves on `/metrics` (label `queue`), and the metric
 * the Kubernetes autoscaler (KEDA) scales the worker Deployment on.
 */
export const QUEUE_DEPTH_METRIC = 'freshet_queue_depth';

/** The autoscaling signal of every Freshet queue: work a worker has or could take now. */
export interface QueueDepth {
  /** The sum over the queues. */
  readonly total: number;
  /** Per queue name (`freshet-stages`, `freshet-chunks`). */
  readonly byQueue: Record<string, number>;
}

/**
 * BullMQ scores a delayed job `timestamp * 0x1000 + counter` (see its `getDelayedScore.lua`),
 * so every job due at or before `now` scores below `(now + 1) * 0x1000`.
 */
const dueScore = (now: number) => (now + 1) * 0x1000 - 1;

/**
 * The depth of one queue (`redis` is its connection): waiting + prioritized + active jobs, plus delayed jobs that are
 * already due; 0 while the queue is paused (more workers cannot help a paused queue).
 *
 * Jobs in `waiting-children` are parents waiting for their children, so they are left out.
 * Due delayed jobs count because only a worker moves a delayed job (a retry after its backoff)
 * back to the wait list: with no worker running, a retry would otherwise never run and the
 * signal would never leave 0. Delayed jobs not yet due (a backoff in progress, a paused run's
 * parked jobs) do not count.
 */
export async function queueDepthOf(queue: Queue, redis: Redis, now = Date.now()): Promise<number> {
  const [paused, counts, due] = await Promise.all([
    queue.isPaused(),
    queue.getJobCounts('waiting', 'prioritized', 'active'),
    redis.zcount(queue.keys.delayed ?? queue.toKey('delayed'), 0, dueScore(now)),
  ]);
  if (paused) return 0;
  return (counts.waiting ?? 0) + (counts.prioritized ?? 0) + (counts.active ?? 0) + due;
}

/**
 * The autoscaling signal of Freshet's queues (see {@link queueDepthOf}): what the dashboard
 * exports as {@link QUEUE_DEPTH_METRIC} and what `freshet workers` scales on.
 */
export async function queueDepth(queues: Pick<Queues, 'all' | 'redis'>): Promise<QueueDepth> {
  const now = Date.now();
  const entries = await Promise.all(
    queues
      .all()
      .map(async (queue) => [queue.name, await queueDepthOf(queue, queues.redis, now)] as const),
  );
  return {
    total: entries.reduce((sum, [, n]) => sum + n, 0),
    byQueue: Object.fromEntries(entries),
  };
}
