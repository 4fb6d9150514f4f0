import { WaitingChildrenError, type FlowProducer, type Job } from 'bullmq';
import {
  buildChunkFlow,
  runFinalize,
  runPreflight,
  runPromote,
  runReport,
  StageJob,
  type FanoutJobData,
  type RefreshContext,
  type RunJobData,
  type StageName,
} from '@freshet/core';
import { tracked } from './track.js';

async function runStage<T>(
  ctx: RefreshContext,
  job: Job<RunJobData>,
  stage: StageName,
  fn: () => Promise<T>,
): Promise<T> {
  await ctx.store.enterStage(job.data.runId, stage);
  const result = await tracked(ctx, job, stage, null, fn, async (err) => {
    await ctx.store.finishStage(job.data.runId, stage, 'failed', null, err.message);
    await ctx.store.setStatus(
      job.data.runId,
      err.name === 'VerificationError' ? 'failed' : 'blocked',
      `${stage} failed: ${err.message}`,
    );
  });
  await ctx.store.finishStage(job.data.runId, stage, 'done', result);
  return result;
}

/**
 * The index stage job: adds the chunk chains as its children in batches (checkpointed in the
 * job's data, so a retry adds only the rest), then waits for all of them.
 */
async function fanOut(
  ctx: RefreshContext,
  flow: FlowProducer,
  job: Job<FanoutJobData>,
  token: string,
): Promise<unknown> {
  const { runId } = job.data;
  const run = await ctx.store.getRun(runId);
  const total = run.chunk_count ?? 0;
  let added = job.data.added ?? 0;
  if (added < total) {
    for (const stage of ['copy', 'clean', 'index'] as const)
      await ctx.store.enterStage(runId, stage);
  }
  while (added < total) {
    const ranges = await ctx.store.getChunkRanges(runId, added, ctx.config.FANOUT_BATCH_SIZE);
    await flow.addBulk(
      ranges.map((range, i) => buildChunkFlow(ctx.config, job.data, added + i, range, job)),
    );
    added += ranges.length;
    await job.updateData({ ...job.data, added });
  }
  if (await job.moveToWaitingChildren(token)) throw new WaitingChildrenError();
  const progress = await ctx.store.chunkProgress(runId);
  for (const stage of ['copy', 'clean', 'index'] as const) {
    await ctx.store.finishStage(runId, stage, 'done', progress);
  }
  return progress;
}

/** Processes stage jobs: preflight, the index fan-out, finalize, promote and report. */
export function createStageProcessor(ctx: RefreshContext, flow: FlowProducer) {
  return async (job: Job<RunJobData>, token?: string): Promise<unknown> => {
    const { runId } = job.data;
    switch (job.name) {
      case StageJob.preflight:
        return runStage(ctx, job, 'preflight', () => runPreflight(ctx, job.data));
      case StageJob.index:
        return tracked(
          ctx,
          job,
          'index',
          null,
          () => fanOut(ctx, flow, job as Job<FanoutJobData>, token ?? ''),
          async (err) => {
            await ctx.store.setStatus(runId, 'blocked', `index fan-out failed: ${err.message}`);
          },
        );
      case StageJob.finalize:
        return runStage(ctx, job, 'finalize', () => runFinalize(ctx, job.data));
      case StageJob.promote:
        return runStage(ctx, job, 'promote', () => runPromote(ctx, job.data));
      case StageJob.report: {
        const result = await runStage(ctx, job, 'report', () => runReport(ctx, job.data));
        await ctx.store.setStatus(runId, 'succeeded');
        return result;
      }
      default:
        throw new Error(`unknown stage job ${job.name}`);
    }
  };
}
