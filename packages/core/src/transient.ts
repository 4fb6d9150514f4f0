import { errors as esErrors } from '@elastic/elasticsearch';

/**
 * SQLSTATEs of a PostgreSQL server that is away or going away, not of a statement that is wrong:
 * class 08 (connection exception), the shutdown family of 57P0x and "too many connections".
 */
const transientSqlStates = new Set(['57P01', '57P02', '57P03', '53300']);

/** Node socket errors of a server that cannot be reached right now. */
const transientSocketCodes = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'EPIPE',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EAI_AGAIN',
]);

// What node-postgres and ioredis say when the socket went away under them (they carry no code).
const transientMessages = [
  /connection terminated/i,
  /timeout exceeded when trying to connect/i,
  /query read timeout/i,
  /not queryable/i,
  /server closed the connection unexpectedly/i,
  /the database system is (starting up|shutting down|in recovery mode)/i,
  /stream isn't writeable/i,
  /connection is closed/i,
  /command timed out/i,
  /max retries per request|reached the max retries/i,
];

/**
 * Whether `err` says a service is unreachable or restarting (PostgreSQL, Redis, Elasticsearch), so the
 * same idempotent work may succeed once it is back. A wrong statement, a constraint violation,
 * a cancelled query or an Elasticsearch refusal (4xx) is not transient.
 */
export function isTransientError(err: unknown): boolean {
  for (let e: unknown = err, depth = 0; e && depth < 5; depth++) {
    if (e instanceof esErrors.ConnectionError || e instanceof esErrors.NoLivingConnectionsError) {
      return true;
    }
    if (e instanceof esErrors.ResponseError) {
      return [502, 503, 504].includes(e.statusCode ?? 0);
    }
    const { code, message } = e as { code?: unknown; message?: unknown };
    if (typeof code === 'string') {
      if (code.startsWith('08') && code.length === 5) return true;
      if (transientSqlStates.has(code) || transientSocketCodes.has(code)) return true;
    }
    if (typeof message === 'string' && transientMessages.some((m) => m.test(message))) return true;
    const inner = e as { errors?: unknown[]; cause?: unknown };
    // An AggregateError (a connect to several addresses) is transient when any part is.
    if (Array.isArray(inner.errors) && inner.errors.some((x) => isTransientError(x))) return true;
    e = inner.cause;
  }
  return false;
}

/** Options of {@link retryTransient}. */
export interface RetryOptions {
  /** Give up after this long (ms) and throw the last error. */
  readonly budgetMs: number;
  /** First wait (ms); doubled each time up to `maxDelayMs`. Default 100. */
  readonly initialDelayMs?: number;
  /** Default 5000. */
  readonly maxDelayMs?: number;
  /** Stops waiting at once: the signal's reason is thrown. */
  readonly signal?: AbortSignal;
  /** Called before each wait, with the error and the wait in ms (to log or show it). */
  readonly onRetry?: (err: unknown, delayMs: number) => void;
}

/** Rejects with the signal's reason when it aborts, else resolves after `ms`. */
export function abortableDelay(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(signal.reason as Error);
      return;
    }
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal?.reason as Error);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/**
 * Runs `fn`, and again after a transient error ({@link isTransientError}) with exponential
 * backoff, until it succeeds, fails otherwise, or `budgetMs` has passed. Only for idempotent work.
 */
export async function retryTransient<T>(fn: () => Promise<T>, options: RetryOptions): Promise<T> {
  const started = Date.now();
  let delay = options.initialDelayMs ?? 100;
  const maxDelay = options.maxDelayMs ?? 5000;
  for (;;) {
    try {
      return await fn();
    } catch (err) {
      if (options.signal?.aborted) throw options.signal.reason as Error;
      const left = options.budgetMs - (Date.now() - started);
      if (!isTransientError(err) || left <= 0) throw err;
      const wait = Math.min(delay, left);
      options.onRetry?.(err, wait);
      await abortableDelay(wait, options.signal);
      delay = Math.min(delay * 2, maxDelay);
    }
  }
}
