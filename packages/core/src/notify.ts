import { formatDurationWords } from './duration.js';
import { setTimeout as delay } from 'node:timers/promises';
import type pg from 'pg';
import type { Config } from './config.js';
import type { Logger } from './logger.js';
import type { SourceComparison } from './refresh/compare.js';
import type { SourceChange } from './refresh/report.js';
import { comparisonOf, shrinkOf } from './refresh/stored-reports.js';
import type { RunRow, RunStatus } from './run-store.js';
import { ensureRunStore } from './schema.js';
import { maskSecrets } from './redact.js';

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

/** Slack text objects and the few block types Freshet uses. */
export interface SlackText {
  readonly type: 'mrkdwn' | 'plain_text';
  readonly text: string;
}
export type SlackBlock =
  | { readonly type: 'header'; readonly text: SlackText & { readonly type: 'plain_text' } }
  | { readonly type: 'section'; readonly text: SlackText; readonly fields?: readonly SlackText[] }
  | { readonly type: 'context'; readonly elements: readonly SlackText[] };

/**
 * A Slack-compatible webhook body: `text` (the notification and fallback), `blocks` (mrkdwn
 * sections) and `freshet`, the same facts as structured fields for other receivers.
 */
export interface AlertPayload {
  readonly text: string;
  readonly blocks: readonly SlackBlock[];
  readonly freshet: AlertFields;
}

/** Options of {@link buildAlertPayload}. */
export interface PayloadOptions {
  /** Sources listed by name in the text and blocks of a success (all are in `freshet.sources`); default 10. */
  readonly topSources?: number;
}

const headline: Record<AlertKind, string> = {
  failed: 'failed',
  blocked: 'is blocked',
  stuck: 'is stuck',
  succeeded: 'succeeded',
  'awaiting-approval': 'awaits approval',
};
const icon: Record<AlertKind, string> = {
  failed: ':x:',
  blocked: ':warning:',
  stuck: ':hourglass:',
  succeeded: ':white_check_mark:',
  'awaiting-approval': ':raised_hand:',
};

/** Slack's limit for a section's text is 3000 characters. */
const sectionLimit = 2900;
const errorLimit = 4000;

/** Slack mrkdwn needs &, < and > escaped; backticks would end an inline code span. */
function esc(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}
function code(text: string): string {
  return `\`${esc(text).replace(/`/g, "'")}\``;
}
function cut(text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, max - 1)}…`;
}

const num = (n: number) => n.toLocaleString('en-US');
const signed = (n: number) => (n > 0 ? `+${num(n)}` : n < 0 ? `-${num(-n)}` : '±0');

const iso = (d: Date | null | undefined) => (d ? d.toISOString() : null);
const sumValues = (o: Readonly<Record<string, number>> | undefined) =>
  o ? Object.values(o).reduce((a, b) => a + b, 0) : 0;

/** Sources ordered by the size of their change (largest first), then by name. */
function bySizeOfChange(sources: Readonly<Record<string, SourceChange>>): [string, SourceChange][] {
  return Object.entries(sources).sort(
    ([a, x], [b, y]) => Math.abs(y.change) - Math.abs(x.change) || a.localeCompare(b),
  );
}

/**
 * Builds the webhook body for a run event. Pure: the same event gives the same payload.
 * A success lists the `topSources` largest changes in its text and all sources in
 * `freshet.sources`; passwords in URLs quoted by errors are masked.
 */
export function buildAlertPayload(event: RunEvent, options: PayloadOptions = {}): AlertPayload {
  const { run, kind } = event;
  const top = options.topSources ?? 10;
  const at = event.at ?? new Date();
  const error = run.error ? cut(maskSecrets(run.error), errorLimit) : null;
  const detail = event.detail ? cut(maskSecrets(event.detail), errorLimit) : null;
  const end = run.finished_at ?? (kind === 'stuck' ? at : null);
  const durationMs = run.started_at && end ? end.getTime() - run.started_at.getTime() : null;
  const stuckForMs =
    kind === 'stuck' && event.lastProgressAt ? at.getTime() - event.lastProgressAt.getTime() : null;
  const sources = kind === 'succeeded' && event.sources ? event.sources : null;
  const totals: AlertTotals | null = sources
    ? {
        before: Object.values(sources).reduce((a, s) => a + s.before, 0),
        after: Object.values(sources).reduce((a, s) => a + s.after, 0),
        change: Object.values(sources).reduce((a, s) => a + s.change, 0),
        sources: Object.keys(sources).length,
      }
    : null;
  const running = kind === 'stuck' && event.running ? event.running : null;
  const approval = kind === 'awaiting-approval' ? (event.approval ?? null) : null;

  const title = `Freshet: ${run.media} (${run.profile}) refresh ${headline[kind]}`;
  const runLine =
    `*Run* ${code(run.id)} · *media* ${code(run.media)} · *profile* ${code(run.profile)}` +
    ` · *status* ${code(run.status)}` +
    (run.stage ? ` · *stage* ${code(run.stage)}` : '');
  const lines: string[] = [];
  const textParts: string[] = [`${title} (run ${run.id}${run.stage ? `, at ${run.stage}` : ''})`];

  if (kind === 'stuck') {
    const since = event.lastProgressAt
      ? `No progress for ${formatDurationWords(stuckForMs ?? 0)} (last at ${event.lastProgressAt.toISOString()}).`
      : 'No progress recorded.';
    lines.push(since);
    textParts.push(since);
    if (run.waiting_reason) {
      const waiting = `Waiting for headroom${run.waiting_since ? ` since ${run.waiting_since.toISOString()}` : ''}: ${maskSecrets(run.waiting_reason)}`;
      lines.push(esc(waiting));
      textParts.push(`${waiting}.`);
    }
    const count = event.runningCount ?? running?.length ?? 0;
    if (running && running.length > 0) {
      const shown = running.map(
        (a) =>
          `• ${code(a.chunk === null ? a.step : `${a.step} chunk ${a.chunk}`)} attempt ${a.attempt} on ${code(a.worker)} since ${a.startedAt.toISOString()}`,
      );
      if (count > running.length) shown.push(`…and ${num(count - running.length)} more`);
      lines.push(`Recorded as running:\n${shown.join('\n')}`);
      textParts.push(`${num(count)} attempt(s) recorded as running.`);
    } else {
      lines.push(
        'No attempt is recorded as running: no worker has taken its next job (are workers up? is the queue paused?).',
      );
      textParts.push('No attempt is running.');
    }
  }
  if (kind === 'succeeded') {
    if (totals && sources) {
      const summary = `${num(totals.before)} → ${num(totals.after)} rows (${signed(totals.change)}) across ${num(totals.sources)} sources`;
      lines.push(`*Rows* ${summary}`);
      textParts.push(`${summary}.`);
      const ordered = bySizeOfChange(sources);
      const shown = ordered
        .slice(0, top)
        .map(
          ([name, s]) => `• ${code(name)} ${num(s.before)} → ${num(s.after)} (${signed(s.change)})`,
        );
      if (ordered.length > top) shown.push(`…and ${num(ordered.length - top)} more sources`);
      if (shown.length > 0) lines.push(`*Largest changes*\n${shown.join('\n')}`);
      if (ordered.length > 0) {
        textParts.push(
          `Largest changes: ${ordered
            .slice(0, top)
            .map(([name, s]) => `${name} ${signed(s.change)}`)
            .join(', ')}${ordered.length > top ? `, and ${ordered.length - top} more` : ''}.`,
        );
      }
    } else {
      lines.push('No per-source counts were recorded.');
    }
    const skipped = sumValues(event.skipped);
    const rejected = sumValues(event.rejected);
    if (event.skipped || event.rejected) {
      lines.push(`Skipped ${num(skipped)} rows, rejected ${num(rejected)}.`);
    }
  }
  if (approval) {
    const held = approval.reasons.map((r) => `• ${esc(r)}`);
    lines.push(
      `*Held for approval* (the live table and aliases are unchanged)\n${held.join('\n')}`,
    );
    textParts.push(`Held for approval: ${approval.reasons.join('; ')}.`);
    const t = approval.totals;
    lines.push(`*Rows* ${num(t.live)} live → ${num(t.shadow)} new (${signed(t.shadow - t.live)})`);
    const drops = Object.entries(approval.sources)
      .filter(([, c]) => c.shadow < c.live)
      .sort(([a, x], [b, y]) => y.live - y.shadow - (x.live - x.shadow) || a.localeCompare(b));
    const shown = drops
      .slice(0, top)
      .map(
        ([name, c]) =>
          `• ${code(name)} ${num(c.live)} → ${num(c.shadow)} (${signed(c.shadow - c.live)})`,
      );
    if (drops.length > top) shown.push(`…and ${num(drops.length - top)} more sources`);
    if (shown.length > 0) lines.push(`*Largest drops*\n${shown.join('\n')}`);
    const fix = `Approve (promote) or discard: freshet approve ${run.id} / freshet discard ${run.id}, or the run view.`;
    lines.push(esc(fix));
    textParts.push(fix);
  }
  if (durationMs !== null && kind !== 'stuck')
    lines.push(`Took ${formatDurationWords(durationMs)}.`);
  // A held run's error repeats the hold's reasons, shown above.
  if (error && !approval) {
    lines.push(`*Error*\n\`\`\`${esc(cut(error, sectionLimit - 100))}\`\`\``);
    textParts.push(`Error: ${cut(error, 500)}`);
  }
  if (detail) {
    lines.push(esc(detail));
    textParts.push(detail);
  }

  const blocks: SlackBlock[] = [
    { type: 'header', text: { type: 'plain_text', text: cut(`${title}`, 150) } },
    {
      type: 'section',
      text: { type: 'mrkdwn', text: cut(`${icon[kind]} ${runLine}`, sectionLimit) },
    },
    ...lines.map((text): SlackBlock => ({
      type: 'section',
      text: { type: 'mrkdwn', text: cut(text, sectionLimit) },
    })),
    {
      type: 'context',
      elements: [
        {
          type: 'mrkdwn',
          text: `queue prefix ${code(run.prefix)} · ${at.toISOString()}${event.url ? ` · <${event.url}|open run>` : ''}`,
        },
      ],
    },
  ];

  return {
    // Slack reads `text` as mrkdwn too.
    text: cut(esc(textParts.join(' ')), 3000),
    blocks,
    freshet: {
      version: 1,
      kind,
      runId: run.id,
      prefix: run.prefix,
      media: run.media,
      profile: run.profile,
      status: run.status,
      stage: run.stage,
      error,
      detail,
      waitingReason: run.waiting_reason ? maskSecrets(run.waiting_reason) : null,
      waitingSince: iso(run.waiting_since),
      requestedBy: run.requested_by,
      createdAt: run.created_at.toISOString(),
      startedAt: iso(run.started_at),
      finishedAt: iso(run.finished_at),
      durationMs,
      lastProgressAt: kind === 'stuck' ? iso(event.lastProgressAt) : null,
      stuckForMs,
      running: running
        ? running.map((a) => ({ ...a, startedAt: a.startedAt.toISOString() }))
        : null,
      runningCount: kind === 'stuck' ? (event.runningCount ?? running?.length ?? 0) : null,
      sources,
      totals,
      skipped: kind === 'succeeded' ? (event.skipped ?? null) : null,
      rejected: kind === 'succeeded' ? (event.rejected ?? null) : null,
      approval,
      url: event.url ?? null,
      at: at.toISOString(),
    },
  };
}

/**
 * SQL for the dedupe episode of a failed, blocked or succeeded run `r`: a success is alerted once;
 * a failure or block once per retry (an operator's retry that blocks again is a new episode).
 */
export const transitionEpisodeSql = `CASE WHEN r.status = 'succeeded' THEN '' ELSE 'retry-' ||
  (SELECT count(*) FROM freshet.audit au WHERE au.run_id = r.id AND au.action = 'retry') END`;

/** Statuses that have an alert, and the alert's kind. */
const kindOfStatus: Partial<Record<RunStatus, AlertKind>> = {
  failed: 'failed',
  blocked: 'blocked',
  succeeded: 'succeeded',
  'awaiting-approval': 'awaiting-approval',
};

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

/** A claim older than this without `sent_at` was left by a process that died while sending. */
const staleClaimSql = `interval '5 minutes'`;

/** Links to the dashboard's run view, when DASHBOARD_PUBLIC_URL is set. */
export function dashboardRunUrl(
  config: Pick<Config, 'DASHBOARD_PUBLIC_URL'>,
): ((runId: string) => string | undefined) | undefined {
  const base = config.DASHBOARD_PUBLIC_URL?.replace(/\/+$/, '');
  return base ? (runId) => `${base}/runs/${runId}` : undefined;
}

/** Delivery settings of a {@link Notifier}. */
export interface NotifierOptions {
  /** The API database pool: dedupes alerts in `freshet.alerts`. Without it nothing is deduped. */
  readonly api?: pg.Pool;
  readonly fetch?: typeof fetch;
  /** Builds the link to a run shown in alerts (the dashboard's run view). */
  readonly runUrl?: (runId: string) => string | undefined;
  /** Tries per alert, the first included; default 4. */
  readonly attempts?: number;
  /** Backoff before the first retry, doubled after each; default 1000 ms. */
  readonly backoffMs?: number;
  /** Per-request timeout; default 5000 ms. */
  readonly timeoutMs?: number;
  /** Longest wait a receiver's `Retry-After` may impose; default 30000 ms. */
  readonly maxRetryAfterMs?: number;
  readonly payload?: PayloadOptions;
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

/** Delivery outcome of one alert. */
type Delivery = { ok: true } | { ok: false; reason: string; status?: number };

/**
 * Creates the notifier: POSTs {@link buildAlertPayload} JSON to `ALERT_WEBHOOK_URL`, with a
 * timeout per request and retries with exponential backoff on network errors, 5xx and 429
 * (honouring `Retry-After`). Each alert is claimed in `freshet.alerts` before sending, so several
 * processes never send the same one twice; a claim whose delivery fails is released so a later
 * call (the monitor's next tick) can try again. The webhook URL is a secret: it is never logged.
 */
export function createNotifier(
  config: Pick<Config, 'ALERT_WEBHOOK_URL'>,
  logger: Logger,
  options: NotifierOptions = {},
): Notifier {
  const webhook = config.ALERT_WEBHOOK_URL;
  const log = logger.child({ component: 'notifier' });
  const fetchImpl = options.fetch ?? fetch;
  const attempts = Math.max(1, options.attempts ?? 4);
  const backoffMs = options.backoffMs ?? 1000;
  const timeoutMs = options.timeoutMs ?? 5000;
  const maxRetryAfterMs = options.maxRetryAfterMs ?? 30_000;
  const api = options.api;
  const inFlight = new Set<Promise<unknown>>();
  let storeReady: Promise<void> | undefined;

  /** Error texts may quote the URL or its path and query (where Slack keeps the secret). */
  const scrub = (text: string): string => {
    if (!webhook) return text;
    let out = text.split(webhook).join('<webhook>');
    const { pathname, search } = new URL(webhook);
    for (const secret of [pathname + search, search, pathname]) {
      if (secret.length > 1) out = out.split(secret).join('<webhook path>');
    }
    return out;
  };

  async function deliver(body: string, fields: Record<string, unknown>): Promise<Delivery> {
    let last: Delivery = { ok: false, reason: 'not sent' };
    for (let attempt = 1; attempt <= attempts; attempt++) {
      let waitMs = backoffMs * 2 ** (attempt - 1);
      let retry = true;
      try {
        const res = await fetchImpl(webhook as string, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body,
          signal: AbortSignal.timeout(timeoutMs),
        });
        const answer = await res.text().catch(() => '');
        if (res.ok) return { ok: true };
        retry = res.status >= 500 || res.status === 429;
        const retryAfter = Number(res.headers.get('retry-after'));
        if (res.status === 429 && Number.isFinite(retryAfter) && retryAfter > 0) {
          waitMs = Math.min(retryAfter * 1000, maxRetryAfterMs);
        }
        last = { ok: false, status: res.status, reason: cut(scrub(answer), 200) };
      } catch (err) {
        const e = err as Error & { cause?: { code?: string; message?: string } };
        const cause = e.cause?.code ?? e.cause?.message;
        last = { ok: false, reason: scrub(`${e.name}: ${e.message}${cause ? ` (${cause})` : ''}`) };
      }
      if (!retry || attempt === attempts) break;
      log.debug(
        { ...fields, attempt, status: last.status, waitMs },
        'alert not delivered, retrying',
      );
      await delay(waitMs);
    }
    return last;
  }

  /** Takes the (run, kind, episode) claim; false if it was already sent or is being sent. */
  /** Claims the alert; returns the claim's time (its identity), or undefined if another has it. */
  async function claim(
    event: RunEvent,
    episode: string,
    payload: AlertPayload,
  ): Promise<string | undefined> {
    if (!api) return '';
    storeReady ??= ensureRunStore(api);
    await storeReady;
    // As text: a Date would drop the microseconds the claim is compared on.
    const { rows } = await api.query<{ claim: string }>(
      `INSERT INTO freshet.alerts (run_id, kind, episode, payload) VALUES ($1, $2, $3, $4)
       ON CONFLICT (run_id, kind, episode) DO UPDATE SET claimed_at = clock_timestamp(), payload = $4
        WHERE freshet.alerts.sent_at IS NULL AND freshet.alerts.claimed_at < now() - ${staleClaimSql}
       RETURNING claimed_at::text AS claim`,
      [event.run.id, event.kind, episode, JSON.stringify(payload)],
    );
    return rows[0]?.claim;
  }

  async function send(event: RunEvent): Promise<AlertOutcome> {
    const episode = event.episode ?? '';
    const fields = { runId: event.run.id, kind: event.kind, episode };
    let claimed = false;
    let claimedAt: string | undefined;
    try {
      const url = event.url ?? options.runUrl?.(event.run.id);
      const payload = buildAlertPayload(url ? { ...event, url } : event, options.payload);
      try {
        claimedAt = await claim(event, episode, payload);
        claimed = claimedAt !== undefined;
        if (!claimed) {
          log.debug(fields, 'alert already sent');
          return 'duplicate';
        }
      } catch (err) {
        // Better a duplicate than a missed alert: send without the claim.
        log.warn({ ...fields, err }, 'could not record the alert; sending it anyway');
      }
      const outcome = await deliver(JSON.stringify(payload), fields);
      if (outcome.ok) {
        if (claimed && api) {
          await api.query(
            'UPDATE freshet.alerts SET sent_at = now() WHERE run_id = $1 AND kind = $2 AND episode = $3',
            [event.run.id, event.kind, episode],
          );
        }
        log.info(fields, 'alert sent');
        return 'sent';
      }
      if (claimed && api) {
        // Only our own claim: another process may have taken a stale one over since.
        await api.query(
          `DELETE FROM freshet.alerts
            WHERE run_id = $1 AND kind = $2 AND episode = $3 AND sent_at IS NULL AND claimed_at = $4::timestamptz`,
          [event.run.id, event.kind, episode, claimedAt],
        );
      }
      log.warn(
        { ...fields, status: outcome.status, reason: outcome.reason, attempts },
        'alert not delivered',
      );
      return 'failed';
    } catch (err) {
      log.warn({ ...fields, error: scrub((err as Error).message) }, 'alert failed');
      return 'failed';
    }
  }

  function track<T>(p: Promise<T>): Promise<T> {
    inFlight.add(p);
    return p.finally(() => inFlight.delete(p));
  }

  const notifier: Notifier = {
    enabled: webhook !== undefined,
    notify(event) {
      if (!webhook) return Promise.resolve('disabled' as const);
      return track(send(event));
    },
    notifyRunStatus(runId, detail) {
      if (!webhook) return Promise.resolve('disabled' as const);
      if (!api) {
        log.warn({ runId }, 'notifyRunStatus needs the API database pool; alert not sent');
        return Promise.resolve('failed' as const);
      }
      return track(
        (async (): Promise<AlertOutcome | undefined> => {
          try {
            const event = await loadRunEvent(api, runId);
            return event ? await send(detail ? { ...event, detail } : event) : undefined;
          } catch (err) {
            log.warn(
              { runId, error: scrub((err as Error).message) },
              'could not load run for alert',
            );
            return 'failed';
          }
        })(),
      );
    },
    async close() {
      await Promise.allSettled([...inFlight]);
    },
  };
  return notifier;
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
