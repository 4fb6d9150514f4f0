import { FlowProducer, Queue, WaitingChildrenError, Worker, type Job } from 'bullmq';
import {
  buildChunkFlow,
  CHUNK_QUEUE,
  createWorkerRedis,
  jobIds,
  planUuidChunks,
  STAGE_QUEUE,
  StageJob,
  stageJobOptions,
  type Config,
  type FanoutJobData,
  type RunJobData,
} from '@freshet/core';
import { now, perSecond } from './measure.js';
import { deleteKeys } from './world.js';

/** Orchestration cost of `chunks` chunks whose jobs do no data work. */
export interface OrchestrationRun {
  readonly label: string;
  readonly chunks: number;
  /** Chunk jobs processed (as many per chunk as the flow has: counted, not assumed). */
  readonly jobs: number;
  /** From the first chunk job's start to the last one's end. */
  readonly chunkSpanMs: number;
  readonly chunksPerSec: number;
  readonly msPerChunk: number;
  /** From enqueueing the fan-out job to its completion (or the run's, for Freshet). */
  readonly totalMs: number;
}

/**
 * BullMQ's floor for Freshet's flow shape: an in-process stage worker whose fan-out job adds
 * `chunks` chunk flows with core's buildChunkFlow (whatever jobs it makes a chunk) in batches of
 * FANOUT_BATCH_SIZE, as the index stage does, and waits for its children, and a chunk worker
 * (WORKER_CONCURRENCY) whose processor does nothing. No run store, no tracking, no database:
 * only Redis and BullMQ.
 */
export async function bullmqFloor(config: Config, chunks: number): Promise<OrchestrationRun> {
  const prefix = `${config.FRESHET_QUEUE_PREFIX}-floor`;
  const connection = createWorkerRedis(config);
  const flow = new FlowProducer({ connection, prefix });
  const stageQueue = new Queue(STAGE_QUEUE, { connection, prefix });
  const chunkQueue = new Queue(CHUNK_QUEUE, { connection, prefix });
  const ranges = planUuidChunks(chunks);
  const data: RunJobData = { runId: 'floor', media: 'image', profile: 'production' };
  let first = Infinity;
  let last = 0;
  let jobs = 0;
  let resolveDone: () => void = () => undefined;
  let rejectDone: (err: Error) => void = () => undefined;
  const done = new Promise<void>((resolve, reject) => {
    resolveDone = resolve;
    rejectDone = reject;
  });
  const stageWorker = new Worker<FanoutJobData>(
    STAGE_QUEUE,
    async (job: Job<FanoutJobData>, token?: string) => {
      let added = job.data.added ?? 0;
      while (added < chunks) {
        const batch = ranges.slice(added, added + config.FANOUT_BATCH_SIZE);
        await flow.addBulk(
          batch.map((range, i) => buildChunkFlow(config, data, added + i, range, job)),
        );
        added += batch.length;
        await job.updateData({ ...job.data, added });
      }
      if (await job.moveToWaitingChildren(token ?? '')) throw new WaitingChildrenError();
      resolveDone();
      return { added };
    },
    { connection, prefix, concurrency: config.STAGE_CONCURRENCY },
  );
  const chunkWorker = new Worker(
    CHUNK_QUEUE,
    () => {
      const t = now();
      if (t < first) first = t;
      last = t;
      jobs++;
      return Promise.resolve(null);
    },
    { connection, prefix, concurrency: config.WORKER_CONCURRENCY },
  );
  for (const w of [stageWorker, chunkWorker]) w.on('failed', (_job, err) => rejectDone(err));
  try {
    await Promise.all([stageWorker.waitUntilReady(), chunkWorker.waitUntilReady()]);
    const started = now();
    await stageQueue.add(StageJob.index, data, {
      jobId: jobIds.stage(data.runId, StageJob.index),
      ...stageJobOptions(config, StageJob.index),
    });
    await done;
    const totalMs = now() - started;
    const chunkSpanMs = last - first;
    return {
      label: 'BullMQ floor (no-op processors)',
      chunks,
      jobs,
      chunkSpanMs,
      chunksPerSec: perSecond(chunks, chunkSpanMs),
      msPerChunk: chunkSpanMs / chunks,
      totalMs,
    };
  } finally {
    await chunkWorker.close();
    await stageWorker.close();
    for (const q of [stageQueue, chunkQueue]) {
      await q.obliterate({ force: true }).catch(() => undefined);
      await q.close();
    }
    await flow.close();
    await deleteKeys(connection, `${prefix}:*`);
    connection.disconnect();
  }
}
