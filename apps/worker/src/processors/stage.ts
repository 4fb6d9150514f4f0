import { WaitingChildrenError, type FlowProducer, type Job } from 'bullmq';
import {
  buildChunkFlow,
  runCompare,
  runFinalize,
  runPreflight,
  runPromote,
  runReport,
  runShrinkGuard,
  retryTransient,
  StageJob,
  VerificationError,
  PlanLimitError,
  type FanoutJobData,
  type JobContext,
  type RefreshContext,
  type RunJobData,
  type StageName,
} from '@freshet/core';
import { tracked, type ActiveJobs } from './track.js';

/**
 * The index stage job: adds the chunk chains as its children in batches (checkpointed in the
 * job's data, so a retry adds only the rest), then waits for all of them.
 */
async function fanOut(
  ctx: JobContext,
  flow: FlowProducer,
  job: Job<FanoutJobData>,
  token: string,
): Promise<unknown> {
  const { runId } = job.data;
  const run = await ctx.store.getRun(runId);
  const total = run.chunk_count ?? 0;
  let added = job.data.added ?? 0;
  if (added < total) await ctx.store.enterStage(runId, 'index');
  while (added < total) {
    ctx.scope.check();
    const ranges = await ctx.store.getChunkRanges(runId, added, ctx.config.FANOUT_BATCH_SIZE);
    await flow.addBulk(
      ranges.map((range, i) => buildChunkFlow(ctx.config, job.data, added + i, range, job)),
    );
    added += ranges.length;
    await job.updateData({ ...job.data, added });
  }
  if (await job.moveToWaitingChildren(token)) throw new WaitingChildrenError();
  const progress = await ctx.store.chunkProgress(runId);
  await ctx.store.finishStage(runId, 'index', 'done', progress);
  return progress;
}

const stageOfJob: Record<string, StageName> = {
  [StageJob.preflight]: 'preflight',
  [StageJob.index]: 'index',
  [StageJob.finalize]: 'finalize',
  [StageJob.compare]: 'compare',
  [StageJob.promote]: 'promote',
  [StageJob.report]: 'report',
};

/**
 * Holds the run before promotion: it waits in `awaiting-approval` (the gate parks promote) until
 * an operator approves (promote) or discards it, and the alert says why.
 */
async function holdForApproval(ctx: JobContext, runId: string, reasons: string[]): Promise<void> {
  await ctx.store.setStatus(runId, 'awaiting-approval', `held for approval: ${reasons.join('; ')}`);
  void ctx.notifier?.notifyRunStatus(runId);
}

/**
 * Finalize, compare, promote or report: the stages after the chunks, each idempotent. The stage
 * right before promote (finalize, or a shadow build's compare) runs the shrink guard, so a run
 * is held at most once, for all its reasons together.
 */
async function runLateStage(ctx: JobContext, job: Job<RunJobData>): Promise<unknown> {
  const { runId } = job.data;
  switch (job.name) {
    case StageJob.finalize: {
      const result = await runFinalize(ctx, job.data);
      if (job.data.shadow) return result;
      const shrink = await runShrinkGuard(ctx, job.data);
      if (shrink.outcome === 'held') await holdForApproval(ctx, runId, shrink.drops);
      return { ...result, shrink };
    }
    case StageJob.compare: {
      const report = await runCompare(ctx, job.data);
      const built = Object.fromEntries(
        Object.entries(report.sources).map(([source, c]) => [source, c.shadow]),
      );
      const shrink = await runShrinkGuard(ctx, job.data, built);
      // Beyond the thresholds the run waits for an operator: promote is parked by the gate.
      const reasons = [...report.reasons, ...(shrink.outcome === 'held' ? shrink.drops : [])];
      if (reasons.length > 0) await holdForApproval(ctx, runId, reasons);
      return { ...report, shrink };
    }
    case StageJob.promote:
      return runPromote(ctx, job.data);
    default:
      return runReport(ctx, job.data);
  }
}

/** Processes stage jobs: preflight, the index fan-out, finalize, promote and report. */
export function createStageProcessor(ctx: RefreshContext, flow: FlowProducer, active: ActiveJobs) {
  return async (job: Job<RunJobData>, token?: string, signal?: AbortSignal): Promise<unknown> => {
    const { runId } = job.data;
    const stage = stageOfJob[job.name];
    if (!stage) throw new Error(`unknown stage job ${job.name}`);
    const isFanout = job.name === StageJob.index;
    const result = await tracked(
      ctx,
      active,
      job,
      token,
      signal,
      {
        step: stage,
        chunk: null,
        deadlineMs: ctx.config.STAGE_DEADLINE_MS,
        heavy: !isFanout && job.name !== StageJob.report,
        onFinalFailure: async (err) => {
          if (!isFanout) await ctx.store.finishStage(runId, stage, 'failed', null, err.message);
          await ctx.store.setStatus(
            runId,
            err instanceof VerificationError || err instanceof PlanLimitError
              ? 'failed'
              : 'blocked',
            `${stage} failed: ${err.message}`,
          );
        },
      },
      async (jobCtx) => {
        if (isFanout) return fanOut(jobCtx, flow, job as Job<FanoutJobData>, token ?? '');
        await ctx.store.enterStage(runId, stage);
        if (job.name === StageJob.preflight) return runPreflight(jobCtx, job.data);
        // The later stages are safe to repeat: a database or Elasticsearch that is away for a
        // while (a restart) is waited for within the attempt; only other errors end it.
        return retryTransient(() => runLateStage(jobCtx, job), {
          budgetMs: ctx.config.TRANSIENT_RETRY_MS,
          signal: jobCtx.scope.signal,
          onRetry: (err, delayMs) =>
            ctx.logger.warn(
              { runId, stage, delayMs, error: (err as Error).message },
              'stage hit an unreachable service; retrying',
            ),
        });
      },
    );
    if (!isFanout) await ctx.store.finishStage(runId, stage, 'done', result);
    if (job.name === StageJob.report) {
      await ctx.store.setStatus(runId, 'succeeded');
      void ctx.notifier?.notifyRunStatus(runId);
    }
    return result;
  };
}
