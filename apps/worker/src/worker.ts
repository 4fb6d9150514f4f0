import { FlowProducer, Queue, Worker } from 'bullmq';
import {
  CHUNK_QUEUE,
  checkRedis,
  createWorkerRedis,
  ensureRunStore,
  RunCancelledError,
  STAGE_QUEUE,
  startReconciler,
  subscribeControl,
  type Config,
  type Logger,
} from '@freshet/core';
import { createRefreshContext } from './context.js';
import { createChunkProcessor } from './processors/chunk.js';
import { createStageProcessor } from './processors/stage.js';
import { ActiveJobs, blockStalledOut } from './processors/track.js';

export interface WorkerApp {
  close(): Promise<void>;
}

/**
 * Starts a Freshet worker: one BullMQ worker on the stage queue and one on the chunk queue.
 * Many such processes can run at once; they share the work through Redis.
 */
export async function startWorker(config: Config, logger: Logger): Promise<WorkerApp> {
  const log = logger.child({ app: 'worker' });
  // Fail at once with the setting to fix (a wrong password or address), before opening anything:
  // its connections would otherwise retry forever and keep the process alive.
  await checkRedis(config);
  const ctx = createRefreshContext(config, log);
  await ensureRunStore(ctx.dbs.api);
  const connection = createWorkerRedis(config);
  const prefix = config.FRESHET_QUEUE_PREFIX;
  const flow = new FlowProducer({ connection, prefix });
  flow.on('error', (err) => log.error({ err }, 'flow producer error'));

  // Cancel reaches every worker process: BullMQ can only abort a job in the process running it.
  const active = new ActiveJobs();
  const subscriber = createWorkerRedis(config);
  await subscribeControl(subscriber, prefix, ({ runId }) => {
    const n = active.cancelRun(runId, new RunCancelledError(`run ${runId} was cancelled`));
    log.info({ runId, jobs: n }, 'run cancelled: running jobs aborted');
  });

  // A killed worker's jobs are taken over once their lock expires and a stalled check sees it.
  const stalls = {
    lockDuration: config.WORKER_LOCK_DURATION_MS,
    stalledInterval: config.WORKER_STALLED_INTERVAL_MS,
    maxStalledCount: config.WORKER_MAX_STALLED_COUNT,
  };
  const stageWorker = new Worker(STAGE_QUEUE, createStageProcessor(ctx, flow, active), {
    connection,
    prefix,
    concurrency: config.STAGE_CONCURRENCY,
    ...stalls,
  });
  const chunkWorker = new Worker(CHUNK_QUEUE, createChunkProcessor(ctx, active), {
    connection,
    prefix,
    concurrency: config.WORKER_CONCURRENCY,
    ...stalls,
  });
  for (const w of [stageWorker, chunkWorker]) {
    w.on('error', (err) => log.error({ err, queue: w.name }, 'worker error'));
    w.on('failed', (job, err) => {
      blockStalledOut(ctx, job, err).catch((e: unknown) =>
        log.error({ err: e, jobId: job?.id }, 'could not block the run of a stalled-out job'),
      );
    });
  }
  await Promise.all([stageWorker.waitUntilReady(), chunkWorker.waitUntilReady()]);
  if (config.MAX_ACTIVE_CHUNKS) {
    // A cap across all workers, however many autoscaling starts: bounds the load on Elasticsearch.
    const queue = new Queue(CHUNK_QUEUE, { connection, prefix });
    await queue.setGlobalConcurrency(config.MAX_ACTIVE_CHUNKS);
    await queue.close();
  }
  // Every worker keeps the run store true to BullMQ (many reconcilers are safe at once).
  const reconcileQueues = {
    stage: new Queue(STAGE_QUEUE, { connection, prefix }),
    chunk: new Queue(CHUNK_QUEUE, { connection, prefix }),
  };
  for (const q of Object.values(reconcileQueues)) q.on('error', () => undefined);
  const reconciler = startReconciler({
    api: ctx.dbs.api,
    queues: reconcileQueues,
    prefix,
    logger: log,
    ...(ctx.notifier ? { notifier: ctx.notifier } : {}),
    intervalMs: config.RECONCILE_INTERVAL_MS,
  });
  log.info(
    {
      stageConcurrency: config.STAGE_CONCURRENCY,
      chunkConcurrency: config.WORKER_CONCURRENCY,
      prefix,
    },
    'worker started',
  );

  return {
    async close() {
      // Stop taking work first, then close in reverse order of creation.
      for (const step of [
        () => reconciler.close(),
        () => chunkWorker.close(),
        () => stageWorker.close(),
        () => reconcileQueues.stage.close(),
        () => reconcileQueues.chunk.close(),
        () => flow.close(),
        () => subscriber.quit(),
        () => connection.quit(),
        () => ctx.close(),
      ]) {
        try {
          await step();
        } catch (err) {
          log.warn({ err }, 'error during shutdown');
        }
      }
      log.info('worker stopped');
    },
  };
}
