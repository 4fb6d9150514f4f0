import type pg from 'pg';
import type { Config } from './config.js';
import type { Logger } from './logger.js';
import { startPeriodic } from './periodic.js';
import { ensureRunStore } from './schema.js';
import { transitionEpisodeSql, type Notifier, type RunningAttempt } from './alerts/index.js';
import type { RunRow } from './run-store.js';

/** Options of {@link startMonitor}. */
export interface MonitorOptions {
  readonly config: Pick<Config, 'STUCK_AFTER_MS' | 'MONITOR_INTERVAL_MS'>;
  /** The API database (run store). */
  readonly api: pg.Pool;
  readonly notifier: Notifier;
  readonly logger: Logger;
  /** Only runs of this queue prefix are watched. */
  readonly prefix: string;
  /** The clock; default the system's. Tests move it forward instead of sleeping. */
  readonly now?: () => Date;
  /** Time between ticks; default `MONITOR_INTERVAL_MS`. 0 starts no timer: call `tick()` yourself. */
  readonly intervalMs?: number;
}

/** What one tick found and alerted on. */
export interface MonitorReport {
  /** Runs found stuck (alerted once per stuck episode: a repeat tick sends nothing new). */
  readonly stuck: readonly string[];
  /** Failed, blocked or succeeded runs whose alert had not been sent yet, now sent. */
  readonly caughtUp: readonly string[];
}

/** A running monitor. */
export interface Monitor {
  /** Runs one check now (or joins the one in progress). Rejects if the database fails. */
  tick(): Promise<MonitorReport>;
  /** Stops the timer and waits for a tick in progress. */
  close(): Promise<void>;
}

/** Attempts listed in a stuck alert. */
const runningShown = 5;

/**
 * The last sign of progress of run `r`: its own updates, every stage and attempt start or end,
 * and the progress a long attempt reports while it runs.
 * The episode is the same instant as exact text (microseconds), the key of a stuck alert.
 */
const stuckRunsSql = `
SELECT r.*, p.last_progress,
       to_char(p.last_progress AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS episode
  FROM freshet.runs r
 CROSS JOIN LATERAL (
   SELECT GREATEST(r.created_at, r.updated_at, r.started_at,
     (SELECT max(GREATEST(s.started_at, s.finished_at)) FROM freshet.stages s WHERE s.run_id = r.id),
     (SELECT max(GREATEST(a.started_at, a.finished_at, a.progress_at)) FROM freshet.attempts a WHERE a.run_id = r.id)
   ) AS last_progress) p
 WHERE r.prefix = $1 AND r.status IN ('queued', 'running') AND p.last_progress < $2
 ORDER BY p.last_progress`;

const missedAlertsSql = `
SELECT r.id FROM freshet.runs r
 WHERE r.prefix = $1 AND r.status IN ('failed', 'blocked', 'succeeded', 'awaiting-approval')
   AND r.updated_at >= $2
   AND NOT EXISTS (
     SELECT 1 FROM freshet.alerts a
      WHERE a.run_id = r.id AND a.kind = r.status AND a.sent_at IS NOT NULL
        AND a.episode = ${transitionEpisodeSql})
 ORDER BY r.updated_at`;

/**
 * Watches the runs of one queue prefix every `MONITOR_INTERVAL_MS`:
 * - a queued or running run whose last progress (its own updates, any stage or attempt starting
 *   or ending) is older than `STUCK_AFTER_MS` gets a 'stuck' alert, once per stuck episode (it
 *   may alert again only after the run made progress). Paused, blocked and awaiting-approval runs
 *   are waiting for an operator, not stuck. A single step legitimately running longer than
 *   `STUCK_AFTER_MS` is reported too: the alert lists what is recorded as running.
 * - a run that failed, blocked, succeeded or was held for approval within the last `STUCK_AFTER_MS` whose alert was
 *   never delivered (a worker died before sending, the webhook was down) gets it now.
 * Alerts are deduplicated in Postgres, so several monitors (and the workers) may run at once.
 * Does nothing while the notifier is disabled (no `ALERT_WEBHOOK_URL`).
 */
export function startMonitor(options: MonitorOptions): Monitor {
  const { api, notifier, prefix, config } = options;
  const now = options.now ?? (() => new Date());
  const intervalMs = options.intervalMs ?? config.MONITOR_INTERVAL_MS;
  const log = options.logger.child({ component: 'monitor', prefix });
  let storeReady: Promise<void> | undefined;

  async function check(): Promise<MonitorReport> {
    if (!notifier.enabled) return { stuck: [], caughtUp: [] };
    storeReady ??= ensureRunStore(api);
    await storeReady.catch((err: unknown) => {
      storeReady = undefined;
      throw err;
    });
    const at = now();
    const threshold = new Date(at.getTime() - config.STUCK_AFTER_MS);

    const { rows: stuckRows } = await api.query<RunRow & { last_progress: Date; episode: string }>(
      stuckRunsSql,
      [prefix, threshold],
    );
    for (const row of stuckRows) {
      const { last_progress: lastProgressAt, episode, ...run } = row;
      const { rows: attempts } = await api.query<{
        step: string;
        chunk: number | null;
        attempt: number;
        worker: string;
        started_at: Date;
        total: number;
      }>(
        `SELECT step, chunk, attempt, worker, started_at, count(*) OVER ()::int AS total
           FROM freshet.attempts WHERE run_id = $1 AND status = 'running'
          ORDER BY started_at LIMIT $2`,
        [run.id, runningShown],
      );
      const running: RunningAttempt[] = attempts.map((a) => ({
        step: a.step,
        chunk: a.chunk,
        attempt: a.attempt,
        worker: a.worker,
        startedAt: a.started_at,
      }));
      const outcome = await notifier.notify({
        kind: 'stuck',
        run,
        episode,
        lastProgressAt,
        running,
        runningCount: attempts[0]?.total ?? 0,
        at,
      });
      // Once per episode in the logs too, not on every tick.
      if (outcome !== 'duplicate') {
        log.warn(
          { runId: run.id, status: run.status, stage: run.stage, lastProgressAt, alert: outcome },
          'run stuck',
        );
      }
    }

    const { rows: missed } = await api.query<{ id: string }>(missedAlertsSql, [prefix, threshold]);
    for (const { id } of missed) await notifier.notifyRunStatus(id);

    return { stuck: stuckRows.map((r) => r.id), caughtUp: missed.map((r) => r.id) };
  }

  if (!notifier.enabled) log.info('alerts disabled (ALERT_WEBHOOK_URL unset): monitor idle');
  return startPeriodic(check, intervalMs, (err) => log.warn({ err }, 'monitor check failed'));
}
