import { AsyncLocalStorage } from 'node:async_hooks';
import type { Queue } from 'bullmq';
import { collectDefaultMetrics, Gauge, Registry } from 'prom-client';
import type { Redis } from 'ioredis';
import { QUEUE_DEPTH_METRIC, queueDepthOf, type Logger, type Pool } from '@freshet/core';

/** The job states reported per queue, as BullMQ names them. */
export const queueStates = [
  'waiting',
  'prioritized',
  'active',
  'delayed',
  'failed',
  'completed',
  'waiting-children',
  'paused',
] as const;
export type QueueState = (typeof queueStates)[number];

/** The states BullMQ 6 counts itself (it has no separate paused list). */
const bullmqStates = queueStates.filter((s): s is Exclude<QueueState, 'paused'> => s !== 'paused');

/** Job counts of one queue at scrape time. */
export interface QueueSnapshot {
  readonly queue: string;
  readonly paused: boolean;
  readonly counts: Readonly<Record<QueueState, number>>;
}

/** Reads the counts of each queue (one round trip per queue). */
export async function snapshotQueues(queues: readonly Queue[]): Promise<QueueSnapshot[]> {
  return Promise.all(
    queues.map(async (queue) => {
      const [counts, paused] = await Promise.all([
        queue.getJobCounts(...bullmqStates),
        queue.isPaused(),
      ]);
      const c = Object.fromEntries(bullmqStates.map((s) => [s, counts[s] ?? 0])) as Record<
        QueueState,
        number
      >;
      // BullMQ 6 keeps a paused queue's jobs in its wait list: report them as "paused" too.
      c.paused = paused ? c.waiting + c.prioritized : 0;
      return { queue: queue.name, paused, counts: c };
    }),
  );
}

/** Shares one in-flight promise between the collectors of one scrape. */
function perScrape<T>(fn: () => Promise<T>): () => Promise<T> {
  let inFlight: Promise<T> | undefined;
  return () => {
    inFlight ??= fn().finally(() => {
      inFlight = undefined;
    });
    return inFlight;
  };
}

interface RunStoreSnapshot {
  runs: { media: string; status: string; n: number }[];
  chunks: { media: string; status: string; done: number; failed: number; rows: number }[];
  lastStages: { media: string; profile: string; stage: string; seconds: number }[];
  runningStages: { media: string; profile: string; stage: string; seconds: number }[];
}

async function snapshotRunStore(db: Pool, prefix: string): Promise<RunStoreSnapshot> {
  const [runs, chunks, lastStages, runningStages] = await Promise.all([
    db.query<RunStoreSnapshot['runs'][number]>(
      `SELECT media, status, count(*)::int AS n FROM freshet.runs WHERE prefix = $1 GROUP BY media, status`,
      [prefix],
    ),
    db.query<RunStoreSnapshot['chunks'][number]>(
      `SELECT r.media, r.status,
              count(*) FILTER (WHERE c.index_status = 'done')::int AS done,
              count(*) FILTER (WHERE 'failed' IN (c.copy_status, c.clean_status, c.index_status))::int AS failed,
              coalesce(sum(c.rows_indexed), 0)::float8 AS rows
         FROM freshet.runs r JOIN freshet.chunks c ON c.run_id = r.id
        WHERE r.prefix = $1 GROUP BY r.media, r.status`,
      [prefix],
    ),
    db.query<RunStoreSnapshot['lastStages'][number]>(
      `SELECT DISTINCT ON (r.media, r.profile, s.stage) r.media, r.profile, s.stage,
              extract(epoch FROM s.finished_at - s.started_at)::float8 AS seconds
         FROM freshet.stages s JOIN freshet.runs r ON r.id = s.run_id
        WHERE r.prefix = $1 AND s.status = 'done' AND s.finished_at IS NOT NULL AND s.started_at IS NOT NULL
        ORDER BY r.media, r.profile, s.stage, s.finished_at DESC`,
      [prefix],
    ),
    db.query<RunStoreSnapshot['runningStages'][number]>(
      `SELECT r.media, r.profile, s.stage,
              max(extract(epoch FROM clock_timestamp() - s.started_at))::float8 AS seconds
         FROM freshet.stages s JOIN freshet.runs r ON r.id = s.run_id
        WHERE r.prefix = $1 AND s.status = 'running' AND s.started_at IS NOT NULL
          AND r.status IN ('queued', 'running', 'blocked', 'paused', 'awaiting-approval')
        GROUP BY r.media, r.profile, s.stage`,
      [prefix],
    ),
  ]);
  return {
    runs: runs.rows,
    chunks: chunks.rows,
    lastStages: lastStages.rows,
    runningStages: runningStages.rows,
  };
}

/** A metrics registry and the function that renders it. */
export interface DashboardMetrics {
  readonly registry: Registry;
  /**
   * The Prometheus text exposition, collected now. Rejects with the Redis error when the queue
   * counts could not be read: they are the autoscaling signal, and a scrape without them would
   * read as queues with nothing to do.
   */
  render(): Promise<string>;
}

/**
 * Builds the dashboard's Prometheus registry. Every Freshet metric is collected at scrape time
 * from Redis (queue counts) and the run store (runs, chunks, stages); nothing is kept in memory
 * between scrapes, so any number of dashboards report the same values. A failing run store is
 * logged and its metrics are left out of that scrape; failing Redis fails the scrape.
 */
export function createMetrics(deps: {
  queues: readonly Queue[];
  /** The queues' Redis connection, to count due delayed jobs in the autoscaling signal. */
  redis: Redis;
  db: Pool;
  prefix: string;
  logger: Logger;
}): DashboardMetrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'freshet_dashboard_' });
  const queueSnapshot = perScrape(() => snapshotQueues(deps.queues));
  const storeSnapshot = perScrape(() => snapshotRunStore(deps.db, deps.prefix));
  /** The Redis failure of the scrape in progress (each render has its own). */
  const scrape = new AsyncLocalStorage<{ redisError?: Error }>();
  const safely = async <T>(what: string, fn: () => Promise<T>): Promise<T | undefined> => {
    try {
      return await fn();
    } catch (err) {
      deps.logger.warn({ err, source: what }, 'metrics source failed');
      const state = scrape.getStore();
      if (what === 'redis' && state) {
        state.redisError ??= err instanceof Error ? err : new Error(String(err));
      }
      return undefined;
    }
  };

  new Gauge({
    name: 'freshet_queue_jobs',
    help: 'Jobs in each Freshet queue by BullMQ state; state="paused" counts the waiting and prioritized jobs a paused queue holds (they are in those states too)',
    labelNames: ['queue', 'state'],
    registers: [registry],
    async collect() {
      this.reset();
      const snaps = await safely('redis', queueSnapshot);
      for (const s of snaps ?? [])
        for (const state of queueStates) this.set({ queue: s.queue, state }, s.counts[state]);
    },
  });
  new Gauge({
    name: QUEUE_DEPTH_METRIC,
    help: 'Autoscaling signal: waiting + prioritized + active + due delayed jobs, 0 while the queue is paused',
    labelNames: ['queue'],
    registers: [registry],
    async collect() {
      this.reset();
      // The same number the local supervisor scales on (core's queueDepthOf).
      const depths = await safely('redis', () =>
        Promise.all(
          deps.queues.map(async (q) => [q.name, await queueDepthOf(q, deps.redis)] as const),
        ),
      );
      for (const [queue, depth] of depths ?? []) this.set({ queue }, depth);
    },
  });
  new Gauge({
    name: 'freshet_queue_paused',
    help: '1 while the queue is paused (Bull Board or API), else 0',
    labelNames: ['queue'],
    registers: [registry],
    async collect() {
      this.reset();
      const snaps = await safely('redis', queueSnapshot);
      for (const s of snaps ?? []) this.set({ queue: s.queue }, s.paused ? 1 : 0);
    },
  });
  new Gauge({
    name: 'freshet_runs',
    help: 'Runs in the run store by media type and status',
    labelNames: ['media', 'status'],
    registers: [registry],
    async collect() {
      this.reset();
      const snap = await safely('run store', storeSnapshot);
      for (const r of snap?.runs ?? []) this.set({ media: r.media, status: r.status }, r.n);
    },
  });
  new Gauge({
    name: 'freshet_chunks',
    help: 'Chunks fully indexed (state="done") or with a failed step (state="failed"), by media type and run status',
    labelNames: ['media', 'run_status', 'state'],
    registers: [registry],
    async collect() {
      this.reset();
      const snap = await safely('run store', storeSnapshot);
      for (const c of snap?.chunks ?? []) {
        this.set({ media: c.media, run_status: c.status, state: 'done' }, c.done);
        this.set({ media: c.media, run_status: c.status, state: 'failed' }, c.failed);
      }
    },
  });
  new Gauge({
    name: 'freshet_rows_indexed',
    help: 'Rows indexed by the chunks of runs, by media type and run status',
    labelNames: ['media', 'run_status'],
    registers: [registry],
    async collect() {
      this.reset();
      const snap = await safely('run store', storeSnapshot);
      for (const c of snap?.chunks ?? [])
        this.set({ media: c.media, run_status: c.status }, c.rows);
    },
  });
  new Gauge({
    name: 'freshet_stage_last_duration_seconds',
    help: 'Duration of the most recent finished run of each stage, by media type and profile',
    labelNames: ['media', 'profile', 'stage'],
    registers: [registry],
    async collect() {
      this.reset();
      const snap = await safely('run store', storeSnapshot);
      for (const s of snap?.lastStages ?? [])
        this.set({ media: s.media, profile: s.profile, stage: s.stage }, s.seconds);
    },
  });
  new Gauge({
    name: 'freshet_stage_running_seconds',
    help: 'How long each running stage of an active run has been running (alert on stuck runs)',
    labelNames: ['media', 'profile', 'stage'],
    registers: [registry],
    async collect() {
      this.reset();
      const snap = await safely('run store', storeSnapshot);
      for (const s of snap?.runningStages ?? [])
        this.set({ media: s.media, profile: s.profile, stage: s.stage }, s.seconds);
    },
  });

  return {
    registry,
    render: () =>
      scrape.run({}, async () => {
        const text = await registry.metrics();
        const failed = scrape.getStore()?.redisError;
        if (failed !== undefined) throw failed;
        return text;
      }),
  };
}
