import type { FlowJob, Job } from 'bullmq';
import type { Config } from './config.js';
import type { KeyRange } from './chunks.js';
import {
  CHUNK_QUEUE,
  ChunkJob,
  chunkJobOptions,
  jobIds,
  STAGE_QUEUE,
  StageJob,
  stageJobOptions,
  type ChunkJobData,
  type RunJobData,
  type StageJobName,
} from './queues.js';

/**
 * The flow of one refresh: a chain of stage jobs, root last (report <- promote <- [compare, for
 * a shadow build] <- finalize <- index <- preflight). Children finish before their parent, so the stages run in order. The
 * index stage adds the per-chunk chains itself, in batches, once preflight has planned them.
 */
export function buildRefreshFlow(config: Config, data: RunJobData): FlowJob {
  const chain: StageJobName[] = [
    StageJob.report,
    StageJob.promote,
    ...(data.shadow ? [StageJob.compare] : []),
    StageJob.finalize,
    StageJob.index,
    StageJob.preflight,
  ];
  let node: FlowJob | undefined;
  for (const stage of [...chain].reverse()) {
    const job: FlowJob = {
      name: stage,
      queueName: STAGE_QUEUE,
      data,
      opts: { jobId: jobIds.stage(data.runId, stage), ...stageJobOptions(config, stage) },
      ...(node ? { children: [node] } : {}),
    };
    node = job;
  }
  return node as FlowJob;
}

/** One chunk's job (its single pass), a child of the index stage job. */
export function buildChunkFlow(
  config: Config,
  data: RunJobData,
  chunk: number,
  range: KeyRange,
  parent: Pick<Job, 'id' | 'queueQualifiedName'>,
): FlowJob {
  const chunkData: ChunkJobData = { ...data, chunk, range };
  return {
    name: ChunkJob.index,
    queueName: CHUNK_QUEUE,
    data: chunkData,
    opts: {
      ...chunkJobOptions(config),
      jobId: jobIds.chunk(data.runId, chunk, ChunkJob.index),
      parent: { id: parent.id as string, queue: parent.queueQualifiedName },
    },
  };
}
