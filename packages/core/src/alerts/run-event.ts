// A run, loaded from the run store, as the event an alert is built from.
import type pg from 'pg';
import { comparisonOf, shrinkOf } from '../refresh/stored-reports.js';
import type { SourceChange } from '../refresh/report.js';
import type { RunRow } from '../run-store.js';
import { kindOfStatus, transitionEpisodeSql } from './store.js';
import type { ApprovalHold, RunEvent } from './types.js';

/**
 * Why a held run waits, from its counts: the shrink guard's drops (`counts.shrink`) and a shadow
 * build's comparison (`counts.comparison`), with the rows per source of either.
 */
export function approvalHoldOf(counts: Record<string, unknown> | null): ApprovalHold | undefined {
  const shrink = shrinkOf(counts);
  const comparison = comparisonOf(counts);
  const numbers = shrink ?? comparison;
  if (!numbers) return undefined;
  const reasons = [
    ...(comparison?.reasons ?? []),
    ...(shrink?.outcome === 'held' ? shrink.drops : []),
  ];
  return { reasons, totals: numbers.totals, sources: numbers.sources };
}

const withApproval = (approval: ApprovalHold | undefined) => (approval ? { approval } : {});

/**
 * The alert event for a run's current status (failed, blocked, succeeded with per-source
 * counts, skipped and rejected rows, or awaiting-approval with why it is held and the rows per
 * source), or undefined for any other status.
 */
export async function loadRunEvent(api: pg.Pool, runId: string): Promise<RunEvent | undefined> {
  const { rows } = await api.query<RunRow & { episode: string }>(
    `SELECT r.*, ${transitionEpisodeSql} AS episode FROM freshet.runs r WHERE r.id = $1`,
    [runId],
  );
  const row = rows[0];
  if (!row) return undefined;
  const kind = kindOfStatus[row.status];
  if (!kind) return undefined;
  const { episode, ...run } = row;
  const counts = (run.counts ?? {}) as {
    sources?: Record<string, SourceChange>;
    skipped?: Record<string, number>;
    rejected?: Record<string, number>;
  };
  return {
    kind,
    run,
    episode,
    ...(kind === 'succeeded' && counts.sources ? { sources: counts.sources } : {}),
    ...(kind === 'succeeded' && counts.skipped ? { skipped: counts.skipped } : {}),
    ...(kind === 'succeeded' && counts.rejected ? { rejected: counts.rejected } : {}),
    ...(kind === 'awaiting-approval' ? withApproval(approvalHoldOf(run.counts)) : {}),
  };
}
