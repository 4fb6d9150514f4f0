import { randomBytes } from 'node:crypto';
import {
  createDatabases,
  createEsClient,
  createProducerRedis,
  createQueues,
  ensureRunStore,
  getMedia,
  loadConfig,
  loadMediaCatalog,
  RunStore,
  type Config,
  type Databases,
  type EsClient,
  type MediaCatalog,
  type MediaDefinition,
  type Queues,
} from '@freshet/core';
import type { Redis } from 'ioredis';
import pg from 'pg';

/** The maintenance database used to create and drop the scratch databases. */
export const adminUrl =
  process.env.FRESHET_BENCH_ADMIN_URL ?? dbUrlOf(loadConfig().API_DATABASE_URL, 'postgres');

function dbUrlOf(base: string, name: string): string {
  const u = new URL(base);
  u.pathname = `/${name}`;
  return u.toString();
}

/**
 * A scratch world for one part of the benchmark: its own catalog and API databases, queue prefix
 * and index prefix on the real Redis, PostgreSQL and Elasticsearch. `close()` removes all of it.
 */
export interface World {
  readonly id: string;
  readonly catalogDb: string;
  readonly apiDb: string;
  /** Environment for spawned `freshet` processes. */
  readonly env: NodeJS.ProcessEnv;
  readonly config: Config;
  readonly dbs: Databases;
  readonly es: EsClient;
  readonly queues: Queues;
  readonly store: RunStore;
  readonly media: MediaCatalog;
  readonly def: MediaDefinition;
  close(): Promise<void>;
}

async function admin<T>(fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: adminUrl });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

/** Deletes every Redis key matching `pattern` (a scratch prefix: nothing else matches it). */
export async function deleteKeys(redis: Redis, pattern: string): Promise<number> {
  let cursor = '0';
  let n = 0;
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
    cursor = next;
    if (keys.length > 0) n += await redis.unlink(...keys);
  } while (cursor !== '0');
  return n;
}

/** Creates a fresh world named `freshet_bench_<label><id>_*` with `overrides` in its config. */
export async function createWorld(
  label: string,
  overrides: Record<string, string> = {},
): Promise<World> {
  const id = `${label}${randomBytes(3).toString('hex')}`;
  const catalogDb = `freshet_bench_${id}_catalog`;
  const apiDb = `freshet_bench_${id}_api`;
  await admin(async (c) => {
    await c.query(`CREATE DATABASE ${catalogDb}`);
    await c.query(`CREATE DATABASE ${apiDb}`);
  });
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    CATALOG_DATABASE_URL: dbUrlOf(adminUrl, catalogDb),
    API_DATABASE_URL: dbUrlOf(adminUrl, apiDb),
    FRESHET_QUEUE_PREFIX: `bench${id}`,
    ELASTICSEARCH_INDEX_PREFIX: `bench${id}-`,
    // The production default; workers log 'worker started' at info.
    LOG_LEVEL: 'info',
    // The orchestration probe plans one-row chunks on purpose.
    MIN_CHUNK_SIZE_ROWS: '1',
    ...overrides,
  };
  const config = loadConfig(env);
  const dbs = createDatabases(config, 'freshet-bench');
  await ensureRunStore(dbs.api);
  const es = createEsClient(config);
  const redis = createProducerRedis(config);
  const queues = createQueues(config, redis);
  const media = loadMediaCatalog(config.FRESHET_MEDIA_FILE);
  let closed = false;
  return {
    id,
    catalogDb,
    apiDb,
    env,
    config,
    dbs,
    es,
    queues,
    store: new RunStore(dbs.api),
    media,
    def: getMedia(media, 'image'),
    async close() {
      if (closed) return;
      closed = true;
      for (const q of queues.all()) await q.obliterate({ force: true }).catch(() => undefined);
      await deleteKeys(redis, `${config.FRESHET_QUEUE_PREFIX}:*`);
      await queues.close();
      redis.disconnect();
      await es.indices
        .delete({
          index: `${config.ELASTICSEARCH_INDEX_PREFIX}*`,
          ignore_unavailable: true,
          allow_no_indices: true,
          expand_wildcards: 'all',
        })
        .catch(() => undefined);
      await es.close();
      await dbs.close();
      await admin(async (c) => {
        await c.query(`DROP DATABASE IF EXISTS ${catalogDb} WITH (FORCE)`);
        await c.query(`DROP DATABASE IF EXISTS ${apiDb} WITH (FORCE)`);
      });
    },
  };
}
