// The alert log's rules (freshet.alerts): which run status has an alert, the episode an alert is
// deduplicated in, and when a claim was left by a process that died.
import type { RunStatus } from '../run-store.js';
import type { AlertKind } from './types.js';

/**
 * SQL for the dedupe episode of a failed, blocked or succeeded run `r`: a success is alerted once;
 * a failure or block once per retry (an operator's retry that blocks again is a new episode).
 */
export const transitionEpisodeSql = `CASE WHEN r.status = 'succeeded' THEN '' ELSE 'retry-' ||
  (SELECT count(*) FROM freshet.audit au WHERE au.run_id = r.id AND au.action = 'retry') END`;

/** Statuses that have an alert, and the alert's kind. */
export const kindOfStatus: Partial<Record<RunStatus, AlertKind>> = {
  failed: 'failed',
  blocked: 'blocked',
  succeeded: 'succeeded',
  'awaiting-approval': 'awaiting-approval',
};

/** A claim older than this without `sent_at` was left by a process that died while sending. */
export const staleClaimSql = `interval '5 minutes'`;
