import { FlowProducer, Queue, type FlowJob } from 'bullmq';
import {
  buildChunkFlow,
  CHUNK_QUEUE,
  chunkCount,
  createWorkerRedis,
  jobIds,
  newRunId,
  planUuidChunks,
  STAGE_QUEUE,
  StageJob,
  stageJobOptions,
  type Config,
  type RunJobData,
} from '@freshet/core';
import type { Redis } from 'ioredis';
import { now } from './measure.js';
import { deleteKeys } from './world.js';

/** A production-size plan enqueued for real into Redis (nothing processes it). */
export interface PlanScale {
  readonly rows: number;
  readonly chunkSizeRows: number;
  readonly chunks: number;
  /** Chunk jobs in Redis (counted in the flows added, however many a chunk has). */
  readonly jobs: number;
  readonly batchSize: number;
  /** Time to add every chunk chain in batches (addBulk + the fan-out's checkpoint). */
  readonly enqueueMs: number;
  /** INFO memory used_memory after minus before (includes anything else using this Redis). */
  readonly usedMemoryDeltaBytes: number;
  /** Sum of MEMORY USAGE over every key under the scratch prefix (only this plan). */
  readonly keyBytes: number;
  readonly keys: number;
  readonly bytesPerChunk: number;
}

/** Jobs in a flow tree. */
function jobCount(flow: FlowJob): number {
  return 1 + (flow.children ?? []).reduce((n, child) => n + jobCount(child), 0);
}

async function usedMemory(redis: Redis): Promise<number> {
  const info = await redis.info('memory');
  return Number(/^used_memory:(\d+)/m.exec(info)?.[1] ?? 0);
}

async function keyUsage(redis: Redis, pattern: string): Promise<{ bytes: number; keys: number }> {
  let cursor = '0';
  let bytes = 0;
  let keys = 0;
  do {
    const [next, batch] = await redis.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
    cursor = next;
    const pipe = redis.pipeline();
    for (const key of batch) pipe.call('MEMORY', 'USAGE', key, 'SAMPLES', '0');
    for (const [err, n] of (await pipe.exec()) ?? []) {
      if (!err) bytes += Number(n ?? 0);
    }
    keys += batch.length;
  } while (cursor !== '0');
  return { bytes, keys };
}

/**
 * Builds the flow of a `rows`-row refresh in Redis exactly as the index stage's fan-out does
 * (core's buildChunkFlow, FlowProducer.addBulk in batches of FANOUT_BATCH_SIZE, the parent a
 * real stage job) under a scratch prefix, measures the time and the memory, and removes it.
 */
export async function planScale(
  config: Config,
  rows: number,
  chunkSizeRows: number,
): Promise<PlanScale> {
  const prefix = `${config.FRESHET_QUEUE_PREFIX}-plan`;
  const connection = createWorkerRedis(config);
  const flow = new FlowProducer({ connection, prefix });
  const stageQueue = new Queue(STAGE_QUEUE, { connection, prefix });
  const chunkQueue = new Queue(CHUNK_QUEUE, { connection, prefix });
  flow.on('error', () => undefined);
  stageQueue.on('error', () => undefined);
  chunkQueue.on('error', () => undefined);
  const chunks = chunkCount(rows, chunkSizeRows);
  const ranges = planUuidChunks(chunks);
  const data: RunJobData = { runId: newRunId(), media: 'image', profile: 'production' };
  const batchSize = config.FANOUT_BATCH_SIZE;
  try {
    await Promise.all([stageQueue.waitUntilReady(), chunkQueue.waitUntilReady()]);
    const parent = await stageQueue.add(StageJob.index, data, {
      jobId: jobIds.stage(data.runId, StageJob.index),
      ...stageJobOptions(config, StageJob.index),
    });
    const before = await usedMemory(connection);
    const started = now();
    let jobs = 0;
    for (let added = 0; added < chunks;) {
      const batch = ranges
        .slice(added, added + batchSize)
        .map((range, i) => buildChunkFlow(config, data, added + i, range, parent));
      for (const f of batch) jobs += jobCount(f);
      await flow.addBulk(batch);
      added += batch.length;
      await parent.updateData({ ...data, added });
    }
    const enqueueMs = now() - started;
    const after = await usedMemory(connection);
    const usage = await keyUsage(connection, `${prefix}:*`);
    return {
      rows,
      chunkSizeRows,
      chunks,
      jobs,
      batchSize,
      enqueueMs,
      usedMemoryDeltaBytes: after - before,
      keyBytes: usage.bytes,
      keys: usage.keys,
      bytesPerChunk: usage.bytes / chunks,
    };
  } finally {
    for (const q of [stageQueue, chunkQueue]) {
      await q.obliterate({ force: true }).catch(() => undefined);
      await q.close();
    }
    await flow.close();
    await deleteKeys(connection, `${prefix}:*`);
    connection.disconnect();
  }
}
