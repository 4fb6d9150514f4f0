import { readFileSync } from 'node:fs';
import { Redis, type RedisOptions } from 'ioredis';
import type { Config } from './config.js';
import { maskSecrets } from './redact.js';

function tlsOptions(config: Config): RedisOptions {
  return config.REDIS_TLS_CA_FILE ? { tls: { ca: readFileSync(config.REDIS_TLS_CA_FILE) } } : {};
}

/**
 * A connection for producers and the dashboard: commands fail fast when Redis is away,
 * so a request gets an error rather than hanging.
 */
export function createProducerRedis(config: Config): Redis {
  const redis = new Redis(config.REDIS_URL, {
    ...tlsOptions(config),
    maxRetriesPerRequest: 1,
    enableOfflineQueue: true,
    connectTimeout: 5_000,
    lazyConnect: false,
  });
  redis.on('error', () => undefined);
  return redis;
}

/**
 * Resolves once `redis` is ready, or after `ms` if it is not (true: ready). Never rejects: a
 * process that must start without Redis (the dashboard) waits a moment for its first connection
 * instead of refusing its first requests while it is still connecting.
 */
export function redisReadyWithin(redis: Redis, ms: number): Promise<boolean> {
  if (redis.status === 'ready') return Promise.resolve(true);
  return new Promise((resolve) => {
    const done = (ready: boolean) => {
      clearTimeout(timer);
      redis.off('ready', onReady);
      resolve(ready);
    };
    const onReady = () => done(true);
    const timer = setTimeout(() => done(false), ms);
    redis.on('ready', onReady);
  });
}

/** A connection for workers: BullMQ requires `maxRetriesPerRequest: null`; it waits for Redis. */
export function createWorkerRedis(config: Config): Redis {
  const redis = new Redis(config.REDIS_URL, {
    ...tlsOptions(config),
    maxRetriesPerRequest: null,
    enableReadyCheck: false,
  });
  redis.on('error', () => undefined);
  return redis;
}

/** Checks Redis answers a PING within a few seconds; the error names REDIS_URL. */
export async function checkRedis(config: Config): Promise<void> {
  const redis = new Redis(config.REDIS_URL, {
    ...tlsOptions(config),
    lazyConnect: true,
    maxRetriesPerRequest: 0,
    enableOfflineQueue: false,
    connectTimeout: 3_000,
    retryStrategy: () => null,
  });
  let lastError: Error | undefined;
  redis.on('error', (err: Error) => {
    lastError = err;
  });
  try {
    await redis.connect();
    await redis.ping();
  } catch (err) {
    throw new Error(
      maskSecrets(
        `cannot reach Redis at ${config.REDIS_URL} (REDIS_URL): ${(lastError ?? (err as Error)).message}`,
      ),
      { cause: err },
    );
  } finally {
    redis.disconnect();
  }
}

/** Redis cannot be reached: the message names the (masked) URL and the connection's error. */
export class RedisUnavailableError extends Error {
  override readonly name = 'RedisUnavailableError';
  constructor(url: string, reason: string, options?: ErrorOptions) {
    super(maskSecrets(`Redis at ${url} is unreachable: ${reason}`), options);
  }
}

/** ioredis errors that mean the connection, not the command, failed. */
const connectionErrorNames = new Set(['MaxRetriesPerRequestError', 'ConnectionClosedError']);
const connectionErrorCodes = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EPIPE',
]);
const connectionErrorMessages = [
  /^Connection is closed/,
  /^Stream isn't writeable/,
  /^Command timed out/,
  /^Reached the max retries per request limit/,
];

/** True if `err` says the Redis connection failed (as opposed to a command Redis refused). */
export function isRedisConnectionError(err: unknown): boolean {
  if (err instanceof RedisUnavailableError) return true;
  if (!(err instanceof Error)) return false;
  const code = (err as { code?: unknown }).code;
  return (
    connectionErrorNames.has(err.name) ||
    (typeof code === 'string' && connectionErrorCodes.has(code)) ||
    connectionErrorMessages.some((re) => re.test(err.message))
  );
}

/** Whether a connection can take commands now, and why not. */
export interface RedisWatch {
  /** Undefined while the connection is ready; else the error a request should answer. */
  unavailable(): RedisUnavailableError | undefined;
  /** `err` as a {@link RedisUnavailableError} if it is a connection error, else `err`. */
  explain(err: unknown): unknown;
}

/**
 * Watches a connection's state and last error, so a request can be refused at once while Redis
 * is away instead of waiting for its commands to time out one by one.
 */
export function watchRedis(redis: Redis, url: string): RedisWatch {
  let lastError: Error | undefined;
  redis.on('error', (err: Error) => {
    lastError = err;
  });
  redis.on('ready', () => {
    lastError = undefined;
  });
  const reason = () => lastError?.message ?? `the connection is ${redis.status}`;
  return {
    unavailable: () =>
      redis.status === 'ready' ? undefined : new RedisUnavailableError(url, reason()),
    explain(err) {
      if (err instanceof RedisUnavailableError || !isRedisConnectionError(err)) return err;
      return new RedisUnavailableError(url, lastError?.message ?? (err as Error).message, {
        cause: err,
      });
    },
  };
}
