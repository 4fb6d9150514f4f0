import { FlowProducer, Queue, type JobsOptions } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Config } from './config.js';
import type { KeyRange } from './chunks.js';
import type { Profile } from './names.js';

/** Queue of stage jobs (preflight, index fan-out, finalize, promote, report). */
export const STAGE_QUEUE = 'freshet-stages';
/** Queue of chunk jobs (copy, clean, index of one key range). */
export const CHUNK_QUEUE = 'freshet-chunks';
export const queueNames = [STAGE_QUEUE, CHUNK_QUEUE] as const;

export const StageJob = {
  preflight: 'preflight',
  index: 'index',
  finalize: 'finalize',
  compare: 'compare',
  promote: 'promote',
  report: 'report',
} as const;
export type StageJobName = (typeof StageJob)[keyof typeof StageJob];

/** A chunk has one job: one pass that reads, cleans, writes and indexes its rows. */
export const ChunkJob = { index: 'index' } as const;
export type ChunkJobName = (typeof ChunkJob)[keyof typeof ChunkJob];

/** The stages of a refresh, in order, as shown in the run view. */
export const stageOrder = [
  'preflight',
  'index',
  'finalize',
  'compare',
  'promote',
  'report',
] as const;
export type StageName = (typeof stageOrder)[number];

/** Data common to every job of a run. */
export interface RunJobData {
  readonly runId: string;
  readonly media: string;
  readonly profile: Profile;
  /** Rows per chunk for this run (else CHUNK_SIZE_ROWS, else the media definition's). */
  readonly chunkSizeRows?: number;
  /** Shadow build: compare with the live data before promotion and hold beyond thresholds. */
  readonly shadow?: boolean;
  /**
   * Approves ahead of time a production build that shrank beyond PROMOTE_MAX_DROP /
   * PROMOTE_MAX_SOURCE_DROP: it is promoted at once; the comparison is still recorded.
   */
  readonly allowShrink?: boolean;
}

export interface ChunkJobData extends RunJobData {
  readonly chunk: number;
  readonly range: KeyRange;
}

export interface FanoutJobData extends RunJobData {
  /** Chunks already added (checkpoint, so a retried fan-out adds only the rest). */
  readonly added?: number;
}

/** Job ids are deterministic per run so that re-adding is a no-op (no ':' allowed). */
export const jobIds = {
  stage: (runId: string, stage: StageJobName) => `${runId}.${stage}`,
  chunk: (runId: string, chunk: number, step: ChunkJobName) => `${runId}.c${chunk}.${step}`,
};

/** Completed jobs are kept a week for Bull Board; history lives in Postgres anyway. */
const keepCompleted = { age: 7 * 24 * 3600, count: 200_000 };

/** Default options for chunk jobs: retried with exponential backoff. */
export function chunkJobOptions(config: Config): JobsOptions {
  return {
    attempts: config.CHUNK_ATTEMPTS,
    backoff: { type: 'exponential', delay: config.CHUNK_BACKOFF_MS },
    removeOnComplete: keepCompleted,
    removeOnFail: false,
  };
}

/** Attempts per stage: promote swaps live tables and aliases, so it runs once and is retried by an operator. */
export function stageJobOptions(config: Config, stage: StageJobName): JobsOptions {
  const attempts =
    stage === StageJob.promote || stage === StageJob.finalize ? 1 : config.CHUNK_ATTEMPTS;
  return {
    attempts,
    backoff: { type: 'exponential', delay: config.CHUNK_BACKOFF_MS },
    removeOnComplete: keepCompleted,
    removeOnFail: false,
  };
}

/** The queues and flow producer a producer or dashboard uses. */
export interface Queues {
  readonly stage: Queue;
  readonly chunk: Queue;
  readonly flow: FlowProducer;
  readonly prefix: string;
  /** The connection the queues share (also used to publish control messages). */
  readonly redis: Redis;
  all(): Queue[];
  close(): Promise<void>;
}

export function createQueues(config: Config, connection: Redis): Queues {
  const prefix = config.FRESHET_QUEUE_PREFIX;
  const stage = new Queue(STAGE_QUEUE, { connection, prefix });
  const chunk = new Queue(CHUNK_QUEUE, { connection, prefix });
  const flow = new FlowProducer({ connection, prefix });
  // Connection errors surface on the calls that need Redis; the listeners keep them from crashing the process.
  stage.on('error', () => undefined);
  chunk.on('error', () => undefined);
  flow.on('error', () => undefined);
  return {
    stage,
    chunk,
    flow,
    prefix,
    redis: connection,
    all: () => [stage, chunk],
    async close() {
      await Promise.allSettled([stage.close(), chunk.close(), flow.close()]);
    },
  };
}
