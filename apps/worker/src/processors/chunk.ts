import type { Job } from 'bullmq';
import {
  ChunkJob,
  cleanChunk,
  copyChunk,
  indexChunk,
  type ChunkJobData,
  type RefreshContext,
} from '@freshet/core';
import { tracked } from './track.js';

/** Processes one step (copy, clean or index) of one chunk. */
export function createChunkProcessor(ctx: RefreshContext) {
  return async (
    job: Job<ChunkJobData>,
    _token?: string,
    signal?: AbortSignal,
  ): Promise<unknown> => {
    const { runId, chunk } = job.data;
    const step = job.name as 'copy' | 'clean' | 'index';
    await ctx.store.markRunning(runId);
    await ctx.store.setChunkStep(runId, chunk, step, 'running');
    const result = await tracked(
      ctx,
      job,
      step,
      chunk,
      async () => {
        switch (step) {
          case ChunkJob.copy:
            return copyChunk(ctx, job.data);
          case ChunkJob.clean:
            return cleanChunk(ctx, job.data);
          case ChunkJob.index:
            return indexChunk(ctx, job.data, signal);
          default:
            throw new Error(`unknown chunk job ${String(step)}`);
        }
      },
      async (err) => {
        await ctx.store.setChunkStep(runId, chunk, step, 'failed', { error: err.message });
        await ctx.store.setStatus(
          runId,
          'blocked',
          `chunk ${chunk} ${step} failed all attempts: ${err.message}`,
        );
      },
    );
    await ctx.store.setChunkStep(
      runId,
      chunk,
      step,
      'done',
      result as unknown as Record<string, unknown>,
    );
    return result;
  };
}
