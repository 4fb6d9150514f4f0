import { Job, type Queue } from 'bullmq';
import type pg from 'pg';
import type { Logger } from './logger.js';
import { startPeriodic } from './periodic.js';
import type { RunStatusNotifier } from './refresh/context.js';
import { StageJob, jobIds } from './queues.js';
import type { RunStatus } from './run-store.js';

/** Options of {@link startReconciler}. */
export interface ReconcilerOptions {
  /** The API database (run store). */
  readonly api: pg.Pool;
  /** The deployment's stage and chunk queues. */
  readonly queues: { readonly stage: Queue; readonly chunk: Queue };
  /** Only runs of this queue prefix are reconciled. */
  readonly prefix: string;
  readonly logger: Logger;
  /** Sends the blocked (or failed) alert of a run the reconciler ended. */
  readonly notifier?: RunStatusNotifier;
  /** Time between ticks; 0 starts no timer: call `tick()` yourself. */
  readonly intervalMs: number;
}

/** What one tick found and repaired. */
export interface ReconcileReport {
  /** Attempts recorded as running whose job no worker runs, now closed as `lost`. */
  readonly lostAttempts: number;
  /** Runs with no live job seen for the first time (repaired if still so at the next tick). */
  readonly suspects: readonly string[];
  /** Runs ended by this tick: blocked (or failed, when their jobs were never enqueued). */
  readonly ended: readonly { readonly runId: string; readonly status: RunStatus }[];
}

/** A running reconciler. */
export interface Reconciler {
  /** Runs one comparison now (or joins the one in progress). Rejects if a service fails. */
  tick(): Promise<ReconcileReport>;
  /** Stops the timer and waits for a tick in progress. */
  close(): Promise<void>;
}

/** BullMQ states from which a job will still run by itself (a paused queue keeps its jobs in 'wait'). */
const liveStates = ['active', 'wait', 'delayed', 'prioritized'] as const;

/** Statuses of a run that says work is under way or parked (a blocked run waits for an operator). */
const workingStatuses: readonly RunStatus[] = ['queued', 'running', 'paused', 'awaiting-approval'];

interface ActiveRunRow {
  id: string;
  status: RunStatus;
  /** The last sign of progress: the run's own updates, any stage or attempt starting or ending. */
  marker: string;
}

const activeRunsSql = `
SELECT r.id, r.status,
       to_char(GREATEST(r.updated_at,
         (SELECT max(GREATEST(s.started_at, s.finished_at)) FROM freshet.stages s WHERE s.run_id = r.id),
         (SELECT max(GREATEST(a.started_at, a.finished_at)) FROM freshet.attempts a WHERE a.run_id = r.id)
       ) AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US') AS marker
  FROM freshet.runs r
 WHERE r.prefix = $1 AND r.status IN ('queued', 'running', 'blocked', 'paused', 'awaiting-approval')`;

/** The run id a job id belongs to (`<runId>.<stage>` or `<runId>.c<n>.<step>`). */
function runOfJobId(jobId: string): string {
  const dot = jobId.indexOf('.');
  return dot < 0 ? jobId : jobId.slice(0, dot);
}

/**
 * Keeps the run store true to BullMQ, whatever failed in between (a database away when a job's
 * failure was to be written, a worker killed, Redis emptied). Every `intervalMs` it compares the
 * deployment's active runs with the jobs BullMQ holds:
 * - an attempt recorded as `running` whose job is not active (no worker runs it) is closed as
 *   `lost`;
 * - a queued, running, paused or awaiting-approval run with no job that can still run (none
 *   waiting, active, delayed or prioritized), seen so on two ticks in a row with no progress in
 *   between, is repaired: `blocked`, with the failure BullMQ recorded (retrying that job resumes
 *   it), or `failed` if none of its jobs was ever enqueued; its running stages are closed, the
 *   repair is logged in the run's history and its alert sent;
 * - a blocked run with no live job gets its running stages closed.
 * Every change is conditional on what was read, so any number of reconcilers (every worker and
 * the dashboard run one) may run at once.
 */
export function startReconciler(options: ReconcilerOptions): Reconciler {
  const { api, queues, prefix, notifier } = options;
  const log = options.logger.child({ component: 'reconciler', prefix });
  /** Runs without a live job at the last tick, with their progress marker then. */
  let suspects = new Map<string, string>();

  async function liveJobIds(): Promise<{ live: Set<string>; active: Set<string> }> {
    const live = new Set<string>();
    const active = new Set<string>();
    for (const queue of [queues.stage, queues.chunk]) {
      // One Lua script per call: a consistent picture of the queue's lists.
      for (const id of await queue.getRanges(['active'], 0, -1)) active.add(id);
      for (const id of await queue.getRanges([...liveStates], 0, -1)) live.add(id);
    }
    for (const id of active) live.add(id);
    return { live, active };
  }

  /** Why a run with no live job stopped: the failure BullMQ recorded, if any. */
  async function failureOf(runId: string): Promise<{ reason: string; enqueued: boolean }> {
    const preflight = await Job.fromId(queues.stage, jobIds.stage(runId, StageJob.preflight));
    for (const queue of [queues.stage, queues.chunk]) {
      const failed = (await queue.getRanges(['failed'], 0, -1)).filter(
        (id) => runOfJobId(id) === runId,
      );
      for (const id of failed) {
        const job = await Job.fromId(queue, id);
        if (!job) continue;
        const chunk = (job.data as { chunk?: unknown }).chunk;
        const what = typeof chunk === 'number' ? `chunk ${chunk} ${job.name}` : job.name;
        return {
          reason: `${what} failed: ${job.failedReason ?? 'unknown error'} (found by the reconciler: the failure was never recorded; retry the run to resume it)`,
          enqueued: true,
        };
      }
    }
    return preflight
      ? {
          reason:
            'no job of this run is left in Redis (none waiting, active, delayed or failed); cancel it and start a new refresh',
          enqueued: true,
        }
      : {
          reason: 'its jobs were never enqueued (Redis was unreachable when it started)',
          enqueued: false,
        };
  }

  async function endRun(run: ActiveRunRow): Promise<RunStatus | undefined> {
    const { reason, enqueued } = await failureOf(run.id);
    const status: RunStatus = enqueued ? 'blocked' : 'failed';
    const client = await api.connect();
    client.on('error', () => undefined);
    let broken: Error | undefined;
    try {
      await client.query('BEGIN');
      // Only if nothing moved since it was read: a job that ran meanwhile wins.
      const { rowCount } = await client.query(
        `UPDATE freshet.runs SET status = $2, error = $3, updated_at = now(),
           finished_at = CASE WHEN $2 = 'failed' THEN now() ELSE NULL END
          WHERE id = $1 AND status = $4
            AND to_char(GREATEST(updated_at,
              (SELECT max(GREATEST(s.started_at, s.finished_at)) FROM freshet.stages s WHERE s.run_id = $1),
              (SELECT max(GREATEST(a.started_at, a.finished_at)) FROM freshet.attempts a WHERE a.run_id = $1)
            ) AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US') = $5`,
        [run.id, status, reason, run.status, run.marker],
      );
      if (rowCount !== 1) {
        await client.query('ROLLBACK');
        return undefined;
      }
      await closeStages(client, run.id, reason);
      await client.query(
        `INSERT INTO freshet.logs (run_id, job_id, level, msg, fields) VALUES ($1, NULL, 'error', $2, $3)`,
        [
          run.id,
          `run ${status} by the reconciler: it was ${run.status} with no live job`,
          JSON.stringify({ reason, was: run.status }),
        ],
      );
      await client.query(
        `INSERT INTO freshet.audit (run_id, actor, action, detail) VALUES ($1, 'reconciler', $2, $3)`,
        [
          run.id,
          status === 'failed' ? 'fail' : 'block',
          JSON.stringify({ reason, was: run.status }),
        ],
      );
      await client.query('COMMIT');
    } catch (err) {
      await client.query('ROLLBACK').catch((e: Error) => (broken = e));
      throw err;
    } finally {
      client.release(broken);
    }
    log.warn({ runId: run.id, was: run.status, status, reason }, 'run with no live job repaired');
    void notifier?.notifyRunStatus(run.id);
    return status;
  }

  async function check(): Promise<ReconcileReport> {
    const { rows: attempts } = await api.query<{ id: number; run_id: string; job_id: string }>(
      `SELECT a.id, a.run_id, a.job_id FROM freshet.attempts a
         JOIN freshet.runs r ON r.id = a.run_id
        WHERE r.prefix = $1 AND a.status = 'running'`,
      [prefix],
    );
    // Redis after Postgres: an attempt recorded before this read and ended since has written its
    // end before its job left 'active', so the guarded update below leaves it alone.
    const { live, active } = await liveJobIds();
    const runsWithLiveJobs = new Set([...live].map(runOfJobId));

    const lost = attempts.filter((a) => !active.has(a.job_id)).map((a) => a.id);
    let lostAttempts = 0;
    if (lost.length > 0) {
      const { rowCount } = await api.query(
        `UPDATE freshet.attempts SET status = 'lost', finished_at = now(),
           ms = (extract(epoch FROM (now() - started_at)) * 1000)::int,
           error = coalesce(error, 'lost: no worker runs its job any more (the worker died or the job stalled out)')
          WHERE id = ANY($1) AND status = 'running'`,
        [lost],
      );
      lostAttempts = rowCount ?? 0;
      if (lostAttempts > 0)
        log.warn({ attempts: lostAttempts }, 'attempts without a worker closed as lost');
    }

    // Read after closing lost attempts, so that closing them is not taken for progress.
    const { rows: runs } = await api.query<ActiveRunRow>(activeRunsSql, [prefix]);
    const next = new Map<string, string>();
    const ended: { runId: string; status: RunStatus }[] = [];
    for (const run of runs) {
      if (runsWithLiveJobs.has(run.id)) continue;
      if (run.status === 'blocked') {
        await closeStages(api, run.id, 'the run is blocked: no job of it is running');
        continue;
      }
      if (!workingStatuses.includes(run.status)) continue;
      if (suspects.get(run.id) === run.marker) {
        const status = await endRun(run);
        if (status) ended.push({ runId: run.id, status });
      } else {
        next.set(run.id, run.marker);
      }
    }
    suspects = next;
    return { lostAttempts, suspects: [...next.keys()], ended };
  }

  return startPeriodic(check, options.intervalMs, (err) =>
    log.warn({ err }, 'reconcile check failed; next tick retries'),
  );
}

/** Stages of `runId` still recorded as running are closed as failed, with `reason`. */
async function closeStages(
  db: Pick<pg.Pool, 'query'>,
  runId: string,
  reason: string,
): Promise<void> {
  await db.query(
    `UPDATE freshet.stages SET status = 'failed', finished_at = now(), error = $2
      WHERE run_id = $1 AND status = 'running'`,
    [runId, reason],
  );
}
