// What an alert says, as data: its kinds, the events it is built from, its machine-readable fields,
// and the notifier that sends it.
import type { SourceComparison } from '../refresh/compare.js';
import type { SourceChange } from '../refresh/report.js';
import type { RunRow, RunStatus } from '../run-store.js';

/** What an alert is about. */
export type AlertKind = 'failed' | 'blocked' | 'stuck' | 'succeeded' | 'awaiting-approval';

/**
 * Why a run waits in `awaiting-approval`, with the numbers: the shrink guard's drops and a
 * shadow build's comparison reasons, and the rows of the live and the new build (in all and
 * every source; `shadow` is the new build).
 */
export interface ApprovalHold {
  readonly reasons: readonly string[];
  readonly totals: SourceComparison;
  readonly sources: Readonly<Record<string, SourceComparison>>;
}

/** A job attempt the run store records as still running (shown in a stuck alert). */
export interface RunningAttempt {
  readonly step: string;
  readonly chunk: number | null;
  readonly attempt: number;
  readonly worker: string;
  readonly startedAt: Date;
}

/** Something an operator should hear about a run. */
export interface RunEvent {
  readonly kind: AlertKind;
  readonly run: RunRow;
  /** Extra words for the operator; the run's own `error` is shown anyway. */
  readonly detail?: string;
  /** succeeded: rows per source before and after the refresh (every source). */
  readonly sources?: Readonly<Record<string, SourceChange>>;
  /** succeeded: rows the copy skipped, by reason. */
  readonly skipped?: Readonly<Record<string, number>>;
  /** succeeded: rows the clean rejected, by reason. */
  readonly rejected?: Readonly<Record<string, number>>;
  /** awaiting-approval: why it is held, with the live and new rows per source. */
  readonly approval?: ApprovalHold;
  /** stuck: when the run last made progress. */
  readonly lastProgressAt?: Date;
  /** stuck: attempts recorded as running (a few), and how many there are in all. */
  readonly running?: readonly RunningAttempt[];
  readonly runningCount?: number;
  /**
   * Deduplication: one alert per (run, kind, episode). Default `''` (once per run and kind);
   * a stuck alert uses its last progress time, a blocked one the number of retries so far.
   */
  readonly episode?: string;
  /** When the event was observed; default now. */
  readonly at?: Date;
  /** A link to the run (the dashboard's run view), if there is one. */
  readonly url?: string;
}

/** Totals over every source of a succeeded run. */
export interface AlertTotals {
  readonly before: number;
  readonly after: number;
  readonly change: number;
  readonly sources: number;
}

/** The machine-readable part of an alert: `null` where a field does not apply to its kind. */
export interface AlertFields {
  /** Version of this shape; bumped on an incompatible change. */
  readonly version: 1;
  readonly kind: AlertKind;
  readonly runId: string;
  readonly prefix: string;
  readonly media: string;
  readonly profile: string;
  readonly status: RunStatus;
  readonly stage: string | null;
  readonly error: string | null;
  readonly detail: string | null;
  /** Why the run's work waits for headroom (admission control), and since when; else null. */
  readonly waitingReason: string | null;
  readonly waitingSince: string | null;
  readonly requestedBy: string | null;
  /** ISO-8601 times. */
  readonly createdAt: string;
  readonly startedAt: string | null;
  readonly finishedAt: string | null;
  readonly durationMs: number | null;
  readonly lastProgressAt: string | null;
  /** stuck: milliseconds since the last progress. */
  readonly stuckForMs: number | null;
  readonly running: readonly (Omit<RunningAttempt, 'startedAt'> & { startedAt: string })[] | null;
  readonly runningCount: number | null;
  /** succeeded: every source, with rows before, after and the change. */
  readonly sources: Readonly<Record<string, SourceChange>> | null;
  readonly totals: AlertTotals | null;
  readonly skipped: Readonly<Record<string, number>> | null;
  readonly rejected: Readonly<Record<string, number>> | null;
  /** awaiting-approval: why it is held, with the live and new rows (every source). */
  readonly approval: ApprovalHold | null;
  readonly url: string | null;
  /** When the event was observed (ISO-8601). */
  readonly at: string;
}

/**
 * What became of one alert: delivered, already sent (or being sent) elsewhere, given up on after
 * its attempts, or not sent because no webhook is configured.
 */
export type AlertOutcome = 'sent' | 'duplicate' | 'failed' | 'disabled';

/** Sends alerts about runs to the configured webhook. Never throws. */
export interface Notifier {
  /** False when `ALERT_WEBHOOK_URL` is unset: every call is then a no-op. */
  readonly enabled: boolean;
  /**
   * Sends one alert, unless the same (run, kind, episode) was already sent. Resolves when it was
   * delivered, skipped, or given up on (logged as a warning); never rejects.
   */
  notify(event: RunEvent): Promise<AlertOutcome>;
  /**
   * Loads a run and sends the alert for its current status: failed, blocked, succeeded (with
   * its per-source counts) or awaiting-approval (why, with the numbers); any other status sends nothing (resolves undefined). Needs `api`.
   * Never rejects.
   */
  notifyRunStatus(runId: string, detail?: string): Promise<AlertOutcome | undefined>;
  /** Waits for alerts being sent (each is bounded by its attempts and timeouts). */
  close(): Promise<void>;
}
