import { readFileSync } from 'node:fs';
import { Queue } from 'bullmq';
import { SingleBar } from 'cli-progress';
import { Redis } from 'ioredis';
import pg from 'pg';
import {
  CHUNK_QUEUE,
  isTransientError,
  NotFoundError,
  maskSecrets,
  RunStore,
  type Config,
  type Pool,
  type Queues,
  type RunRow,
} from '@freshet/core';

/**
 * States in which following a run stops: ended, blocked waiting for an operator's retry, or held
 * waiting for an operator's approval.
 */
const terminal = new Set(['succeeded', 'failed', 'cancelled', 'blocked', 'awaiting-approval']);

/** Bounds of every call the wait makes, in ms: none of them can hang the loop. */
const limits = {
  /** Opening a connection to PostgreSQL. */
  connectMs: 3_000,
  /** One run-store query (statement_timeout at the server, query_timeout at the client). */
  queryMs: 5_000,
  /** One Redis command. */
  commandMs: 3_000,
};

/** The connections a wait reads through: the run store and Redis (for the worker count). */
export interface WaitDeps {
  readonly api: Pool;
  readonly queues: Pick<Queues, 'chunk' | 'prefix' | 'redis'>;
  /** The API database and Redis addresses, named (redacted) in reconnect notices. */
  readonly apiUrl?: string;
  readonly redisUrl?: string;
}

/** {@link WaitDeps} opened for waiting only, with a bound on every call; `close()` ends them. */
export interface RunWatch extends WaitDeps {
  close(): Promise<void>;
}

/**
 * Opens the connections `freshet refresh --wait` and `retry --wait` follow a run through: a
 * one-connection pool on the API database with connect, statement and query timeouts, and a
 * Redis connection that rejects commands at once while it is disconnected (no offline queue)
 * and times out a sent command; both reconnect by themselves when the service is back.
 */
export function openRunWatch(config: Config): RunWatch {
  const api = new pg.Pool({
    connectionString: config.API_DATABASE_URL,
    max: 1,
    application_name: 'freshet-wait',
    connectionTimeoutMillis: limits.connectMs,
    statement_timeout: limits.queryMs,
    query_timeout: limits.queryMs + 1_000,
    keepAlive: true,
  });
  // An idle connection dropped by a restart must not crash the process; the next query reconnects.
  api.on('error', () => undefined);
  const redis = new Redis(config.REDIS_URL, {
    ...(config.REDIS_TLS_CA_FILE ? { tls: { ca: readFileSync(config.REDIS_TLS_CA_FILE) } } : {}),
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    commandTimeout: limits.commandMs,
    connectTimeout: limits.connectMs,
  });
  redis.on('error', () => undefined);
  const chunk = new Queue(CHUNK_QUEUE, { connection: redis, prefix: config.FRESHET_QUEUE_PREFIX });
  chunk.on('error', () => undefined);
  return {
    api,
    queues: { chunk, prefix: config.FRESHET_QUEUE_PREFIX, redis },
    apiUrl: config.API_DATABASE_URL,
    redisUrl: config.REDIS_URL,
    async close() {
      // Bounded too: a service that is away at exit must not keep the command from ending.
      await bounded(chunk.close(), limits.commandMs, 'closing the queue').catch(() => undefined);
      redis.disconnect();
      await bounded(api.end(), limits.connectMs, 'closing the pool').catch(() => undefined);
    },
  };
}

export interface WaitOptions {
  readonly intervalMs?: number;
  /** Where the bar and notices go (stderr by default). */
  readonly stream?: NodeJS.WritableStream;
}

/** A call of the wait that took longer than its bound. */
class WaitTimeoutError extends Error {
  override readonly name = 'WaitTimeoutError';
}

/** `promise`, or a {@link WaitTimeoutError} after `ms`: the loop never waits longer on a call. */
function bounded<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new WaitTimeoutError(`${what} took over ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/**
 * Whether `err` says the service is away or slow (worth reconnecting), not that the read is
 * wrong: a transient error, one of this loop's own bounds (a call that took too long, our
 * statement timeout), or a host name that does not resolve yet (a service still starting).
 */
export function isConnectionError(err: unknown): boolean {
  if (isTransientError(err)) return true;
  for (let e: unknown = err, depth = 0; e && depth < 5; depth++) {
    if (e instanceof WaitTimeoutError) return true;
    const { code, cause } = e as { code?: unknown; cause?: unknown };
    if (code === '57014' || code === 'ENOTFOUND') return true;
    e = cause;
  }
  return false;
}

/** The first line of an error, without the password of `url` (should a driver ever echo it). */
function reasonOf(err: unknown, url: string | undefined): string {
  const e = err as { message?: unknown; errors?: unknown };
  let text =
    typeof e.message === 'string' && e.message !== ''
      ? e.message
      : Array.isArray(e.errors)
        ? e.errors.map((x) => (x as Error).message).join('; ')
        : String(err);
  text = text.split('\n')[0] ?? '';
  const password = url ? passwordOf(url) : '';
  if (password) {
    for (const form of new Set([password, decoded(password)])) text = text.split(form).join('***');
  }
  return text;
}

function passwordOf(url: string): string {
  try {
    return new URL(url).password;
  } catch {
    return '';
  }
}

function decoded(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}

/**
 * One service the wait reads from. Says once when it becomes unreachable (and that the wait
 * reconnects), and once when it answers again.
 */
class Link {
  private downSince: number | null = null;

  constructor(
    private readonly service: string,
    private readonly url: string | undefined,
    private readonly say: (line: string) => void,
  ) {}

  get down(): boolean {
    return this.downSince !== null;
  }

  private where(): string {
    return this.url ? `${this.service} at ${maskSecrets(this.url)}` : this.service;
  }

  lost(err: unknown): void {
    if (this.downSince !== null) return;
    this.downSince = Date.now();
    this.say(`${this.where()} is unreachable (${reasonOf(err, this.url)}); reconnecting...`);
  }

  ok(): void {
    if (this.downSince === null) return;
    const seconds = ((Date.now() - this.downSince) / 1000).toFixed(1);
    this.downSince = null;
    this.say(`${this.where()} is reachable again (after ${seconds} s); following the run`);
  }
}

interface Sample {
  readonly at: number;
  readonly chunks: number;
  readonly rows: number;
}

/** Observed rates over the last `windowMs`: rows/s for the bar and chunks/s for the ETA. */
class Rates {
  private readonly samples: Sample[] = [];

  constructor(private readonly windowMs = 30_000) {}

  add(sample: Sample): void {
    this.samples.push(sample);
    while (this.samples.length > 2 && sample.at - (this.samples[0]?.at ?? 0) > this.windowMs) {
      this.samples.shift();
    }
  }

  private per(key: 'chunks' | 'rows'): number {
    const first = this.samples[0];
    const last = this.samples.at(-1);
    if (!first || !last || last.at <= first.at) return 0;
    return Math.max(0, ((last[key] - first[key]) * 1000) / (last.at - first.at));
  }

  rowsPerSecond(): number {
    return Math.round(this.per('rows'));
  }

  /** Time left for the chunks not yet indexed at the observed rate; `—` when it cannot be told. */
  eta(remainingChunks: number): string {
    const rate = this.per('chunks');
    if (remainingChunks <= 0 || rate <= 0) return '—';
    return formatSeconds(Math.ceil(remainingChunks / rate));
  }
}

/** 42s, 3m07s, 2h05m. */
export function formatSeconds(total: number): string {
  if (total < 60) return `${total}s`;
  const pad = (n: number) => String(n).padStart(2, '0');
  if (total < 3600) return `${Math.floor(total / 60)}m${pad(total % 60)}s`;
  return `${Math.floor(total / 3600)}h${pad(Math.floor((total % 3600) / 60))}m`;
}

/**
 * The Redis side of a wait: counts the chunk queue's workers every 2 s (warning once when there
 * are none) and, while Redis is away, looks every turn so its return is told at once.
 */
class WorkerCheck {
  private lastError: Error | undefined;
  private everReady: boolean;
  private lastCheck = 0;
  private warnedNoWorker = false;
  private readonly opened = Date.now();
  private readonly redis: WaitDeps['queues']['redis'];
  private readonly onError = (err: Error) => {
    this.lastError = err;
  };
  private readonly onReady = () => {
    this.everReady = true;
  };

  constructor(
    private readonly queues: WaitDeps['queues'],
    private readonly link: Link,
    private readonly say: (line: string) => void,
  ) {
    this.redis = queues.redis;
    this.everReady = this.redis.status === 'ready';
    this.redis.on('error', this.onError);
    this.redis.on('ready', this.onReady);
  }

  async run(): Promise<void> {
    // A connection still opening for the first time is not an outage (yet).
    const opening =
      !this.everReady && !this.lastError && Date.now() - this.opened < limits.connectMs;
    if (opening || (!this.link.down && Date.now() - this.lastCheck <= 2000)) return;
    this.lastCheck = Date.now();
    let workers: number;
    try {
      if (this.redis.status !== 'ready') {
        throw (
          this.lastError ??
          new Error(this.everReady ? 'connection lost' : `not connected yet (${this.redis.status})`)
        );
      }
      workers = await bounded(
        this.queues.chunk.getWorkersCount(),
        limits.commandMs + 1_000,
        'counting workers',
      );
    } catch (err) {
      if (!isConnectionError(err) && this.redis.status === 'ready') throw err;
      this.link.lost(err);
      return;
    }
    this.link.ok();
    this.lastError = undefined;
    if (workers === 0 && !this.warnedNoWorker) {
      this.say(
        `no worker is connected to queue ${this.queues.prefix}:${this.queues.chunk.name}; the run waits until one starts (run \`freshet worker\`)`,
      );
      this.warnedNoWorker = true;
    } else if (workers > 0) {
      this.warnedNoWorker = false;
    }
  }

  close(): void {
    this.redis.off('error', this.onError);
    this.redis.off('ready', this.onReady);
  }
}

/**
 * Follows a run until it ends or is blocked, drawing a progress bar (stage, chunks done/total,
 * rows/s over the last 30 s, and an ETA from the chunks' observed rate: `—` while nothing moves),
 * and says plainly when no worker is connected. It follows the run, not the connections: while
 * PostgreSQL or Redis is unreachable it says so once, keeps trying every `intervalMs` (default
 * 500) and says when the service is back. Every call is bounded in time ({@link openRunWatch}
 * opens connections that also bound them in the drivers). Resolves with the final run row;
 * rejects only on an error that is not a connection's (e.g. an unknown run id).
 */
export async function waitForRun(
  deps: WaitDeps,
  runId: string,
  options: WaitOptions = {},
): Promise<RunRow> {
  const store = new RunStore(deps.api);
  const stream = options.stream ?? process.stderr;
  const interval = options.intervalMs ?? 500;
  const bar = new SingleBar({
    stream,
    format: '{stage} |{bar}| {value}/{total} chunks | {rate} rows/s | ETA {etaText} | {status}',
    hideCursor: false,
    clearOnComplete: false,
    noTTYOutput: true,
    notTTYSchedule: 5000,
  });
  const say = (line: string) => stream.write(`\n${line}\n`);
  const postgres = new Link('PostgreSQL', deps.apiUrl, say);
  const workers = new WorkerCheck(deps.queues, new Link('Redis', deps.redisUrl, say), say);
  // A read may wait for the pool's connection (connect timeout) and then run (query timeout).
  const readMs = limits.connectMs + limits.queryMs + 2_000;
  const rates = new Rates();
  let started = false;
  let last: RunRow | undefined;
  try {
    for (;;) {
      try {
        const run = await bounded(store.getRun(runId), readMs, 'reading the run');
        const progress = await bounded(store.chunkProgress(runId), readMs, 'reading progress');
        postgres.ok();
        last = run;
        rates.add({
          at: Date.now(),
          chunks: progress.indexed,
          rows: Number(progress.rows_indexed),
        });
        const total = Math.max(progress.total, 1);
        const payload = {
          stage: (run.stage ?? 'queued').padEnd(9),
          rate: rates.rowsPerSecond(),
          etaText: rates.eta(progress.total - progress.indexed),
          status: run.status + (run.error ? `: ${run.error}` : ''),
        };
        if (!started) {
          bar.start(total, progress.indexed, payload);
          started = true;
        }
        bar.setTotal(total);
        bar.update(progress.indexed, payload);
        if (terminal.has(run.status)) return run;
      } catch (err) {
        if (err instanceof NotFoundError || !isConnectionError(err)) throw err;
        postgres.lost(err);
        if (started && last) {
          bar.update({ status: `${last.status} (PostgreSQL unreachable; reconnecting)` });
        }
      }
      await workers.run();
      await new Promise((resolve) => setTimeout(resolve, interval));
    }
  } finally {
    workers.close();
    // The bar redraws on its own timer: left running, it would keep the process alive forever.
    if (started) bar.stop();
  }
}
