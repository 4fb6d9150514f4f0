import type { Job, Queue } from 'bullmq';
import {
  describeHealth,
  indicesHealth,
  ConflictError,
  ensureRunStore,
  getMedia,
  ident,
  JobScope,
  mediaBuilds,
  planRollback,
  publishControl,
  refreshNames,
  RunStore,
  swapAliases,
  swapUnderShortLocks,
  type Config,
  type EsClient,
  type Logger,
  type MediaBuilds,
  type MediaCatalog,
  type Pool,
  type PromotionRow,
  type Queues,
  type RunJobData,
} from '@freshet/core';
import { parseProfile } from './refresh.js';

/** Dependencies of the run controls. */
export interface ControlDeps {
  readonly api: Pool;
  readonly queues: Queues;
}

const controllable = ['queued', 'running', 'blocked'];

/**
 * Pauses a run: from now on no job of it starts (workers check the run before every job and park
 * the job instead); running jobs finish. Resume continues where it stopped.
 */
export async function pauseRun(deps: ControlDeps, runId: string, actor: string): Promise<void> {
  const store = new RunStore(deps.api);
  const run = await store.getRun(runId);
  if (!controllable.includes(run.status)) {
    throw new ConflictError(
      `run ${runId} is ${run.status}; only a queued, running or blocked run can be paused`,
    );
  }
  await store.setStatus(runId, 'paused', run.error);
  await store.audit(runId, actor, 'pause');
}

/** Delayed (parked) jobs of a run, across the run's queues. */
async function parkedJobs(queue: Queue, runId: string): Promise<Job[]> {
  const page = 1000;
  const found: Job[] = [];
  const total = await queue.getDelayedCount();
  for (let start = 0; start < total; start += page) {
    const jobs = await queue.getDelayed(start, start + page - 1);
    for (const job of jobs)
      if ((job.data as RunJobData | undefined)?.runId === runId) found.push(job);
  }
  return found;
}

/** Puts a run's parked (delayed) jobs back in their queues at once; returns how many. */
async function releaseParked(queues: Queues, runId: string): Promise<number> {
  let promoted = 0;
  for (const queue of queues.all()) {
    for (const job of await parkedJobs(queue, runId)) {
      // A job delayed for a retry backoff is promoted too: resuming should not wait.
      await job.promote().catch(() => undefined);
      promoted++;
    }
  }
  return promoted;
}

/**
 * Resumes a paused run where it stopped: it is running again and the jobs parked while it was
 * paused go back to their queues at once.
 */
export async function resumeRun(deps: ControlDeps, runId: string, actor: string): Promise<number> {
  const store = new RunStore(deps.api);
  const run = await store.getRun(runId);
  if (run.status !== 'paused') throw new ConflictError(`run ${runId} is ${run.status}, not paused`);
  await store.setStatus(runId, run.started_at ? 'running' : 'queued');
  const promoted = await releaseParked(deps.queues, runId);
  await store.audit(runId, actor, 'resume', { promoted });
  return promoted;
}

/**
 * Approves a run held for approval (a shadow build beyond its thresholds, or a build that shrank
 * beyond the shrink guard's limits): promotion proceeds.
 */
export async function approveRun(deps: ControlDeps, runId: string, actor: string): Promise<void> {
  const store = new RunStore(deps.api);
  const run = await store.getRun(runId);
  if (run.status !== 'awaiting-approval') {
    throw new ConflictError(`run ${runId} is ${run.status}, not awaiting approval`);
  }
  await store.setStatus(runId, 'running');
  await releaseParked(deps.queues, runId);
  await store.audit(runId, actor, 'approve');
}

/**
 * Discards a run held for approval (shadow comparison or shrink guard): the run is cancelled, its
 * table and indices are removed, and the live ones are left as they are.
 */
export async function discardRun(
  deps: ControlDeps & { es: EsClient; media: MediaCatalog; config: Config },
  runId: string,
  actor: string,
): Promise<void> {
  const store = new RunStore(deps.api);
  const run = await store.getRun(runId);
  if (run.status !== 'awaiting-approval') {
    throw new ConflictError(`run ${runId} is ${run.status}, not awaiting approval`);
  }
  await store.setStatus(runId, 'cancelled', `discarded by ${actor}`);
  const names = refreshNames(
    getMedia(deps.media, run.media),
    run.profile,
    runId,
    deps.config.ELASTICSEARCH_INDEX_PREFIX,
  );
  await deps.api.query(`DROP TABLE IF EXISTS ${ident(names.tempTable)}`);
  await deps.es.indices.delete({ index: [...names.indices], ignore_unavailable: true });
  // The parked promote wakes, sees the run cancelled and ends without retries.
  await releaseParked(deps.queues, runId);
  await store.audit(runId, actor, 'discard', {
    dropped: [names.tempTable, ...names.indices],
  });
}

/**
 * Cancels a run: no job of it starts again, and every worker process aborts the run's running
 * jobs, cancelling their queries at the server.
 */
export async function cancelRun(deps: ControlDeps, runId: string, actor: string): Promise<void> {
  const store = new RunStore(deps.api);
  const run = await store.getRun(runId);
  if (['succeeded', 'failed', 'cancelled'].includes(run.status)) {
    throw new ConflictError(`run ${runId} is already ${run.status}`);
  }
  await store.setStatus(runId, 'cancelled', `cancelled by ${actor}`);
  await publishControl(deps.queues.redis, deps.queues.prefix, { type: 'cancel', runId });
  await store.audit(runId, actor, 'cancel');
}

/** Dependencies of a rollback and of the builds view. */
export interface BuildDeps {
  readonly api: Pool;
  readonly es: EsClient;
  readonly media: MediaCatalog;
  readonly config: Config;
  readonly queues: Pick<Queues, 'prefix'>;
  /** Where the rollback is logged besides the run store (the dashboard's logger). */
  readonly logger?: Logger;
}

/** What a rollback did. */
export interface RollbackResult {
  readonly media: string;
  readonly profile: string;
  /** The run whose build serves now, and the one rolled away from (kept: a second rollback goes back). */
  readonly runId: string;
  readonly replacedRunId: string;
  readonly table: string;
  /** The indices both aliases are on now. */
  readonly indices: string[];
  /** `swap`: tables and aliases; `aliases`: an interrupted rollback finished (aliases only). */
  readonly kind: 'swap' | 'aliases';
  /** How long the table swap took, its lock waits included (ms); 0 when only aliases moved. */
  readonly waitedMs: number;
}

/** How long a rollback's table swap keeps retrying its locks before it gives up (ms). */
export const ROLLBACK_LOCK_WAIT_MS = 120_000;
/** How long a rollback waits for the kept build's indices to be green before it refuses (ms). */
const ROLLBACK_GREEN_WAIT_MS = 10_000;

/**
 * Puts the kept build of `media` back: `<table>` and `<table>_previous` trade places in one
 * transaction (with the promotion's lock rules: short lock_timeout, retried with backoff) and
 * both aliases move to the kept build's indices in one `_aliases` request; the build rolled away
 * from becomes the kept one, so a second rollback goes back. Runs under the media lock, so no
 * refresh starts meanwhile; refused (ConflictError) while a refresh of the media/profile is
 * active, when there is nothing to roll back to, or when the tables and aliases are of different
 * builds. Recorded in freshet.promotions, the audit log and the logs of both runs.
 */
export async function rollbackMedia(
  deps: BuildDeps,
  media: string,
  profileName: string | undefined,
  actor: string,
): Promise<RollbackResult> {
  const def = getMedia(deps.media, media);
  const profile = parseProfile(profileName);
  await ensureRunStore(deps.api);
  const store = new RunStore(deps.api);
  const prefix = deps.queues.prefix;
  return store.withMediaLock(prefix, def.name, profile, async () => {
    const active = await store.activeRun(prefix, def.name, profile);
    if (active) {
      throw new ConflictError(
        `cannot roll back ${def.name} (${profile}): run ${active.id} of it is ${active.status}; let it end or cancel it, then roll back`,
      );
    }
    const builds = await mediaBuilds(
      { api: deps.api, es: deps.es, indexPrefix: deps.config.ELASTICSEARCH_INDEX_PREFIX },
      def,
      profile,
    );
    const plan = planRollback(builds);
    if (plan.kind === 'refused') throw new ConflictError(plan.reason);
    const names = refreshNames(def, profile, plan.toRun, deps.config.ELASTICSEARCH_INDEX_PREFIX);
    // As promotion: never an alias onto an index that is not green (a node is missing).
    const keptIndices = [...new Set(plan.targets.map((t) => t.index))];
    const health = await indicesHealth(deps.es, keptIndices, ROLLBACK_GREEN_WAIT_MS);
    if (health.status !== 'green') {
      throw new ConflictError(
        `cannot roll back ${def.name} (${profile}): the kept build's indices ${keptIndices.join(', ')} are not green (${describeHealth(health)}); nothing was changed; roll back once the cluster has its nodes back`,
      );
    }
    const log = (level: string, msg: string, fields: Record<string, unknown>) =>
      logToRuns(store, [plan.toRun, plan.fromRun], level, msg, fields);
    let waitedMs = 0;
    if (plan.kind === 'swap') {
      waitedMs = await swapKeptTable(names, deps.api, async (reason) => {
        deps.logger?.warn({ media: def.name, profile, reason }, 'rollback waits for a lock');
        await log('warn', 'rollback waits for a lock', { reason });
      });
    }
    await swapAliases(deps.es, plan.targets);
    const indices = [...new Set(plan.targets.map((t) => t.index))];
    const detail = {
      media: def.name,
      profile,
      kind: plan.kind,
      from: plan.fromRun,
      to: plan.toRun,
      table: names.table,
      indices,
      waitedMs,
    };
    await store.recordPromotion({
      prefix,
      media: def.name,
      profile,
      action: 'rollback',
      runId: plan.toRun,
      replacedRunId: plan.fromRun,
      actor,
    });
    await store.audit(plan.toRun, actor, 'rollback', detail);
    await log('info', `rolled back by ${actor}: run ${plan.toRun} serves again`, detail);
    deps.logger?.info({ ...detail, actor }, 'rolled back');
    return {
      media: def.name,
      profile,
      runId: plan.toRun,
      replacedRunId: plan.fromRun,
      table: names.table,
      indices,
      kind: plan.kind,
      waitedMs,
    };
  });
}

/** Writes a log line to each of `runIds` that the run store still has. */
async function logToRuns(
  store: RunStore,
  runIds: readonly string[],
  level: string,
  msg: string,
  fields: Record<string, unknown>,
): Promise<void> {
  for (const id of await store.existingRuns(runIds)) await store.log(id, null, level, msg, fields);
}

/**
 * `<table>` and `<table>_previous` trade places in one transaction (three renames), the live
 * table locked last, under the promotion's lock rules. Gives up with a ConflictError naming the
 * lock holder after {@link ROLLBACK_LOCK_WAIT_MS}. Returns how long it waited (ms).
 */
async function swapKeptTable(
  names: { table: string; previousTable: string; oldTable: string },
  api: Pool,
  onWait: (reason: string) => Promise<void>,
): Promise<number> {
  const [live, kept, old] = [names.table, names.previousTable, names.oldTable].map((t) => ident(t));
  const deadline = new AbortController();
  const timer = setTimeout(
    () => deadline.abort(new Error('the rollback waited too long for its locks')),
    ROLLBACK_LOCK_WAIT_MS,
  );
  // Tagged per table: an aborted swap cancels its own backend only (one rollback per media at once).
  const scope = new JobScope(`freshet rollback ${names.table}`, deadline.signal);
  let waiting: string | null = null;
  try {
    const { waitedMs } = await swapUnderShortLocks({
      scope,
      db: api,
      what: 'rollback',
      tables: [names.table, names.previousTable, names.oldTable],
      statements: [
        `LOCK TABLE ${kept} IN ACCESS EXCLUSIVE MODE`,
        `DROP TABLE IF EXISTS ${old}`,
        `ALTER TABLE ${live} RENAME TO ${old}`,
        `ALTER TABLE ${kept} RENAME TO ${live}`,
        `ALTER TABLE ${old} RENAME TO ${kept}`,
      ],
      onWait: async (reason) => {
        if (waiting === null) await onWait(reason);
        waiting = reason;
      },
    });
    return waitedMs;
  } catch (err) {
    if (!scope.signal.aborted) throw err;
    await scope.settle();
    throw new ConflictError(
      `rollback gave up after ${ROLLBACK_LOCK_WAIT_MS / 1000} s: ${waiting ?? 'it waits for a lock'}; nothing was changed; end that session and roll back again`,
      { cause: err },
    );
  } finally {
    clearTimeout(timer);
  }
}

/** One media type's builds under one profile, with its latest promotions and rollbacks. */
export interface BuildsView extends MediaBuilds {
  /** Why a rollback would be refused now (null: it would go ahead). */
  readonly rollbackRefusal: string | null;
  readonly history: PromotionRow[];
}

/**
 * The serving and kept builds of every media type (production, and staging where it has a live
 * table), for the dashboard: what a rollback would do or why it is refused, and the history.
 */
export async function buildsView(deps: BuildDeps, historyLimit = 10): Promise<BuildsView[]> {
  await ensureRunStore(deps.api);
  const store = new RunStore(deps.api);
  const out: BuildsView[] = [];
  for (const def of deps.media.values()) {
    for (const profile of ['production', 'staging'] as const) {
      const b = await mediaBuilds(
        { api: deps.api, es: deps.es, indexPrefix: deps.config.ELASTICSEARCH_INDEX_PREFIX },
        def,
        profile,
      );
      if (profile === 'staging' && b.liveRun === null && !b.previousExists) continue;
      const active = await store.activeRun(deps.queues.prefix, def.name, profile);
      const plan = planRollback(b);
      out.push({
        ...b,
        rollbackRefusal: active
          ? `run ${active.id} of it is ${active.status}`
          : plan.kind === 'refused'
            ? plan.reason
            : null,
        history: await store.listPromotions(deps.queues.prefix, {
          media: def.name,
          profile,
          limit: historyLimit,
        }),
      });
    }
  }
  return out;
}
