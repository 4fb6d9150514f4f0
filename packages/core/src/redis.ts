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
