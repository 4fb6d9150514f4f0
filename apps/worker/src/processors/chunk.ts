import type { Job } from 'bullmq';
import {
  ChunkJob,
  cleanChunk,
  copyChunk,
  indexChunk,
  type ChunkJobData,
  type RefreshContext,
} from '@freshet/core';
import { tracked, type ActiveJobs } from './track.js';

/**
 * Rows the chunk's previous step left (copy: written, clean: kept), from its BullMQ result: when
 * none, the next step has nothing to read and skips its database and Elasticsearch work.
 */
async function rowsBefore(job: Job<ChunkJobData>): Promise<number | undefined> {
  const values = Object.values(await job.getChildrenValues<{ rows?: unknown }>());
  const rows = values.length === 1 ? values[0]?.rows : undefined;
  return typeof rows === 'number' ? rows : undefined;
}

/** Processes one step (copy, clean or index) of one chunk. */
export function createChunkProcessor(ctx: RefreshContext, active: ActiveJobs) {
  return async (job: Job<ChunkJobData>, token?: string, signal?: AbortSignal): Promise<unknown> => {
    const { runId, chunk } = job.data;
    const step = job.name as 'copy' | 'clean' | 'index';
    const result = await tracked(
      ctx,
      active,
      job,
      token,
      signal,
      {
        step,
        chunk,
        deadlineMs: ctx.config.CHUNK_DEADLINE_MS,
        heavy: true,
        chunkStep: step,
        onFinalFailure: async (err) => {
          await ctx.store.setChunkStep(runId, chunk, step, 'failed', { error: err.message });
          await ctx.store.setStatus(
            runId,
            'blocked',
            `chunk ${chunk} ${step} failed all attempts: ${err.message}`,
          );
        },
      },
      async (jobCtx) => {
        switch (step) {
          case ChunkJob.copy:
            return copyChunk(jobCtx, job.data);
          case ChunkJob.clean:
            if ((await rowsBefore(job)) === 0) {
              return { rows: 0, changed: {}, rejected: {}, tagsDropped: {}, ms: 0 };
            }
            return cleanChunk(jobCtx, job.data);
          case ChunkJob.index:
            if ((await rowsBefore(job)) === 0) return { rows: 0, filtered: 0, ms: 0 };
            return indexChunk(jobCtx, job.data);
          default:
            throw new Error(`unknown chunk job ${String(step)}`);
        }
      },
    );
    return result;
  };
}
