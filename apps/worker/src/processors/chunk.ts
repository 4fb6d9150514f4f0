import type { Job } from 'bullmq';
import { refreshChunk, type ChunkJobData, type RefreshContext } from '@freshet/core';
import { tracked, type ActiveJobs } from './track.js';

/** Processes one chunk: its single pass (read, clean, write, index). */
export function createChunkProcessor(ctx: RefreshContext, active: ActiveJobs) {
  return async (job: Job<ChunkJobData>, token?: string, signal?: AbortSignal): Promise<unknown> => {
    const { runId, chunk } = job.data;
    return tracked(
      ctx,
      active,
      job,
      token,
      signal,
      {
        step: 'index',
        chunk,
        deadlineMs: ctx.config.CHUNK_DEADLINE_MS,
        heavy: true,
        chunkStep: 'index',
        onFinalFailure: async (err) => {
          await ctx.store.setChunkStep(runId, chunk, 'index', 'failed', { error: err.message });
          await ctx.store.setStatus(
            runId,
            'blocked',
            `chunk ${chunk} failed all attempts: ${err.message}`,
          );
        },
      },
      (jobCtx) => refreshChunk(jobCtx, job.data),
    );
  };
}
