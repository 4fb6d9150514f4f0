// Delivery of alerts to the webhook: claimed once in freshet.alerts, retried with backoff.
import { setTimeout as delay } from 'node:timers/promises';
import type pg from 'pg';
import type { Config } from '../config.js';
import type { Logger } from '../logger.js';
import { ensureRunStore } from '../schema.js';
import { buildAlertPayload, cut, type AlertPayload, type PayloadOptions } from './slack.js';
import { staleClaimSql } from './store.js';
import { loadRunEvent } from './run-event.js';
import type { AlertOutcome, Notifier, RunEvent } from './types.js';

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
