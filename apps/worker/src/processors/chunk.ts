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
            return cleanChunk(jobCtx, job.data);
          case ChunkJob.index:
            return indexChunk(jobCtx, job.data);
          default:
            throw new Error(`unknown chunk job ${String(step)}`);
        }
      },
    );
    return result;
  };
}
