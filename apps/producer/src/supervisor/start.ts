import {
  CHUNK_QUEUE,
  createProducerRedis,
  createQueues,
  queueDepth,
  type Config,
  type Logger,
  type QueueDepth,
  type Queues,
} from '@freshet/core';
import { createWorkerSpawner } from './spawn.js';
import { Supervisor, type Clock, type SpawnWorker } from './supervisor.js';

/** Options of `freshet workers`. */
export interface WorkersOptions {
  readonly min: number;
  readonly max: number;
  /** Jobs per worker process; default WORKER_CONCURRENCY. */
  readonly perWorker?: number;
  readonly intervalMs: number;
  readonly idleMs: number;
}

/** Defaults of `freshet workers` (ms). */
export const workersDefaults = { intervalMs: 2_000, idleMs: 60_000 } as const;

/**
 * Time a stopped worker gets beyond its own SHUTDOWN_TIMEOUT_MS before SIGKILL: the worker's
 * own deadline should end it first.
 */
export const KILL_MARGIN_MS = 10_000;

/** A running `freshet workers` supervisor. */
export interface SupervisorApp {
  readonly supervisor: Supervisor;
  /** How long {@link close} may take: every worker's SIGKILL deadline plus a little. */
  readonly closeTimeoutMs: number;
  /** Stops sampling, stops every worker gracefully, closes the Redis connection. */
  close(): Promise<void>;
  /** SIGKILLs every worker now (for a supervisor that is exiting at once). Synchronous. */
  killAll(): void;
}

/**
 * The number the supervisor scales on: the queue depth (see `queueDepth` in core), with the
 * chunk queue's part capped at its global concurrency (MAX_ACTIVE_CHUNKS): workers beyond that
 * cap would find no chunk they are allowed to start.
 */
export async function sampleDemand(queues: Queues): Promise<QueueDepth> {
  const [depth, cap] = await Promise.all([queueDepth(queues), queues.chunk.getGlobalConcurrency()]);
  const chunks = depth.byQueue[CHUNK_QUEUE] ?? 0;
  const usable = cap === null ? chunks : Math.min(chunks, cap);
  return { total: depth.total - chunks + usable, byQueue: depth.byQueue };
}

/**
 * Starts the `freshet workers` supervisor: sets the chunk queue's global concurrency to
 * MAX_ACTIVE_CHUNKS if that is set (so however many workers run, Elasticsearch sees at most that
 * many chunk jobs at once), then runs `freshet worker` processes scaled on the queue depth.
 * `deps` replaces the process spawner or the clock (tests).
 */
export async function startSupervisor(
  config: Config,
  logger: Logger,
  options: WorkersOptions,
  deps: { spawn?: SpawnWorker; clock?: Clock } = {},
): Promise<SupervisorApp> {
  const log = logger.child({ app: 'supervisor' });
  const redis = createProducerRedis(config);
  const queues = createQueues(config, redis);
  const closeQueues = async () => {
    try {
      await queues.close();
    } catch (err) {
      log.warn({ err }, 'error during shutdown');
    }
    redis.disconnect();
  };
  if (config.MAX_ACTIVE_CHUNKS !== undefined) {
    try {
      await queues.chunk.setGlobalConcurrency(config.MAX_ACTIVE_CHUNKS);
    } catch (err) {
      await closeQueues();
      throw new Error(
        `cannot set the global concurrency of ${CHUNK_QUEUE} to MAX_ACTIVE_CHUNKS=${config.MAX_ACTIVE_CHUNKS}: ${(err as Error).message}`,
        { cause: err },
      );
    }
    log.info(
      { queue: CHUNK_QUEUE, globalConcurrency: config.MAX_ACTIVE_CHUNKS },
      'chunk queue global concurrency set (MAX_ACTIVE_CHUNKS)',
    );
  }
  const killAfterMs = config.SHUTDOWN_TIMEOUT_MS + KILL_MARGIN_MS;
  const supervisor = new Supervisor(
    {
      min: options.min,
      max: options.max,
      perWorker: options.perWorker ?? config.WORKER_CONCURRENCY,
      intervalMs: options.intervalMs,
      idleMs: options.idleMs,
      killAfterMs,
    },
    {
      sample: () => sampleDemand(queues),
      spawn: deps.spawn ?? createWorkerSpawner(),
      logger: log,
      ...(deps.clock ? { clock: deps.clock } : {}),
    },
  );
  supervisor.start();
  return {
    supervisor,
    closeTimeoutMs: killAfterMs + 5_000,
    async close() {
      try {
        await supervisor.close();
      } catch (err) {
        log.warn({ err }, 'error while stopping the workers');
      }
      await closeQueues();
    },
    killAll: () => supervisor.killAll(),
  };
}
