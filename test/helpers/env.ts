import { randomBytes } from 'node:crypto';
import type { EventEmitter } from 'node:events';
import { Job, QueueEvents } from 'bullmq';
import {
  createDatabases,
  createEsClient,
  createLogger,
  createProducerRedis,
  createWorkerRedis,
  createQueues,
  ensureRunStore,
  loadConfig,
  loadMediaCatalog,
  RunStore,
  STAGE_QUEUE,
  jobIds,
  type Config,
  type Databases,
  type EsClient,
  type Logger,
  type MediaCatalog,
  type Queues,
  type StageName,
} from '@freshet/core';
import pg from 'pg';

const defaultAdminUrl =
  process.env.FRESHET_TEST_ADMIN_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';

function dbUrl(adminUrl: string, name: string): string {
  const u = new URL(adminUrl);
  u.pathname = `/${name}`;
  return u.toString();
}

export interface TestEnvOptions {
  /**
   * A superuser URL of the server to create the test's catalog and API databases on (default:
   * FRESHET_TEST_ADMIN_URL, else the shared server on 5432), e.g. a test's own server from
   * `startPgServer()`.
   */
  readonly adminUrl?: string;
}

/**
 * An isolated world for one test file: its own catalog and API databases, queue prefix and
 * index prefix, on the real Redis, PostgreSQL and Elasticsearch. `close()` removes all of it.
 */
export interface TestEnv {
  readonly id: string;
  readonly env: NodeJS.ProcessEnv;
  readonly config: Config;
  readonly dbs: Databases;
  readonly es: EsClient;
  readonly queues: Queues;
  readonly store: RunStore;
  readonly media: MediaCatalog;
  readonly logger: Logger;
  /** Waits for a run's final report job to complete (event-driven, no polling). */
  waitForRunEnd(runId: string, timeoutMs?: number): Promise<void>;
  /** Waits for one stage job of a run to complete (event-driven, no polling). */
  waitForStage(runId: string, stage: StageName, timeoutMs?: number): Promise<void>;
  /**
   * Resolves once the event stream's own connection is ready again after a Redis restart. A
   * test that restarts Redis awaits it before it ends: ioredis never ends a connection still
   * waiting to reconnect (its disconnect() emits no 'end'), and BullMQ's close waits for that.
   */
  reconnected(): Promise<void>;
  close(): Promise<void>;
}

/**
 * Creates the test's world. `overrides` are environment variables over the defaults (they win
 * over the database URLs too); `options.adminUrl` puts the databases on another server.
 */
export async function createTestEnv(
  overrides: Record<string, string> = {},
  options: TestEnvOptions = {},
): Promise<TestEnv> {
  const adminUrl = options.adminUrl ?? defaultAdminUrl;
  const id = randomBytes(3).toString('hex');
  const catalogDb = `freshet_t${id}_catalog`;
  const apiDb = `freshet_t${id}_api`;
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${catalogDb}`);
  await admin.query(`CREATE DATABASE ${apiDb}`);
  await admin.end();
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    CATALOG_DATABASE_URL: dbUrl(adminUrl, catalogDb),
    API_DATABASE_URL: dbUrl(adminUrl, apiDb),
    FRESHET_QUEUE_PREFIX: `t${id}`,
    ELASTICSEARCH_INDEX_PREFIX: `t${id}-`,
    LOG_LEVEL: process.env.LOG_LEVEL ?? 'warn',
    CHUNK_BACKOFF_MS: '50',
    // Tests plan many small chunks on small tables.
    MIN_CHUNK_SIZE_ROWS: '1',
    ...overrides,
  };
  const config = loadConfig(env);
  const dbs = createDatabases(config, 'freshet-test');
  await ensureRunStore(dbs.api);
  const es = createEsClient(config);
  const redis = createProducerRedis(config);
  const queues = createQueues(config, redis);
  const eventsRedis = createWorkerRedis(config);
  const events = new QueueEvents(STAGE_QUEUE, {
    connection: eventsRedis,
    prefix: config.FRESHET_QUEUE_PREFIX,
  });
  events.on('error', () => undefined);
  await events.waitUntilReady();
  const logger = createLogger(config);
  const waitForStage = async (runId: string, stage: StageName, timeoutMs = 120_000) => {
    const job = await Job.fromId(queues.stage, jobIds.stage(runId, stage));
    if (!job) throw new Error(`run ${runId} has no ${stage} job`);
    await job.waitUntilFinished(events, timeoutMs);
  };
  return {
    id,
    env,
    config,
    dbs,
    es,
    queues,
    store: new RunStore(dbs.api),
    media: loadMediaCatalog(config.FRESHET_MEDIA_FILE),
    logger,
    waitForRunEnd: (runId, timeoutMs) => waitForStage(runId, 'report', timeoutMs),
    waitForStage,
    async reconnected() {
      const clients = [events.backend.client, events.backend.blockingClient];
      for (const pending of clients) {
        const client = await pending;
        // The ioredis instances BullMQ wraps (its client type hides that they emit events);
        // not events.once, which rejects on the 'error' of a connection attempt still failing.
        if (client && client.status !== 'ready') {
          await new Promise((resolve) =>
            (client as unknown as EventEmitter).once('ready', resolve),
          );
        }
      }
    },
    async close() {
      await events.close();
      eventsRedis.disconnect();
      for (const q of queues.all()) await q.obliterate({ force: true }).catch(() => undefined);
      await queues.close();
      redis.disconnect();
      await es.indices
        .delete({ index: `t${id}-*`, ignore_unavailable: true, allow_no_indices: true })
        .catch(() => undefined);
      await es.close();
      await dbs.close();
      const a = new pg.Client({ connectionString: adminUrl });
      await a.connect();
      await a.query(`DROP DATABASE IF EXISTS ${catalogDb} WITH (FORCE)`);
      await a.query(`DROP DATABASE IF EXISTS ${apiDb} WITH (FORCE)`);
      await a.end();
    },
  };
}
