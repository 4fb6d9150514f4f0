import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { QueueEvents } from 'bullmq';
import { CHUNK_QUEUE, createWorkerRedis } from '@freshet/core';
import { startWorker, type WorkerApp } from '@freshet/worker';
import { startRefresh } from '@freshet/control';
import { waitUntil } from '../helpers/backends.js';
import { seedClips, writeClipMedia } from '../helpers/clip-media.js';
import { createTestEnv, type TestEnv } from '../helpers/env.js';

/**
 * Elasticsearch turns red mid-run (an index whose primary can never be allocated, made on
 * purpose): chunks must wait, the run must say why, and everything must resume when health
 * returns — nothing fails.
 */
describe('admission control', { timeout: 180_000 }, () => {
  let t: TestEnv;
  let worker: WorkerApp;
  let events: QueueEvents;
  let eventsRedis: ReturnType<typeof createWorkerRedis>;
  let runId: string;
  let reasonSeen = '';
  let attemptsWhileRed = 0;
  const red = () => `${t.config.ELASTICSEARCH_INDEX_PREFIX}unallocatable`;

  before(async () => {
    t = await createTestEnv({
      FRESHET_MEDIA_FILE: writeClipMedia(),
      WORKER_CONCURRENCY: '1',
      ADMISSION_RETRY_MS: '200',
      ADMISSION_CACHE_MS: '0',
    });
    await seedClips(t.dbs.catalog, 4000);
    eventsRedis = createWorkerRedis(t.config);
    events = new QueueEvents(CHUNK_QUEUE, {
      connection: eventsRedis,
      prefix: t.config.FRESHET_QUEUE_PREFIX,
    });
    await events.waitUntilReady();
    const firstIndexed = new Promise<void>((resolve) =>
      events.on('completed', ({ jobId }) => jobId.endsWith('.index') && resolve()),
    );
    worker = await startWorker(t.config, t.logger);
    runId = await startRefresh(
      { config: t.config, api: t.dbs.api, media: t.media, queues: t.queues },
      { media: 'clip', chunkSizeRows: 100 },
    );
    await firstIndexed;
    await t.es.indices.create({
      index: red(),
      settings: { number_of_replicas: 0, 'index.routing.allocation.require._name': 'no-such-node' },
      wait_for_active_shards: 0,
    });
    try {
      await waitUntil(async () => {
        reasonSeen = (await t.store.getRun(runId)).waiting_reason ?? '';
        return reasonSeen !== '';
      }, 'the run reports that it waits');
      const before = await countAttempts();
      // While red, no new chunk step starts: the ones running finish, the rest wait.
      await waitUntil(async () => (await runningAttempts()) === 0, 'running steps finished');
      attemptsWhileRed = (await countAttempts()) - before;
    } finally {
      await t.es.indices.delete({ index: red() });
    }
    await t.waitForRunEnd(runId);
  });

  const countAttempts = async () =>
    (
      await t.dbs.api.query<{ n: number }>(
        'SELECT count(*)::int AS n FROM freshet.attempts WHERE run_id = $1',
        [runId],
      )
    ).rows[0]?.n ?? 0;
  const runningAttempts = async () =>
    (
      await t.dbs.api.query<{ n: number }>(
        `SELECT count(*)::int AS n FROM freshet.attempts WHERE run_id = $1 AND status = 'running'`,
        [runId],
      )
    ).rows[0]?.n ?? 0;

  after(async () => {
    await t?.es.indices.delete({ index: red(), ignore_unavailable: true }).catch(() => undefined);
    await worker?.close();
    await events?.close();
    eventsRedis?.disconnect();
    await t?.close();
  });

  it('says why the work waits', () => {
    assert.match(reasonSeen, /Elasticsearch cluster health is red/);
  });

  it('starts at most the steps already admitted while red', () => {
    assert.ok(attemptsWhileRed <= 1, `${attemptsWhileRed} steps started while red`);
  });

  it('resumes when health returns, with nothing failed and exact counts', async () => {
    const run = await t.store.getRun(runId);
    assert.equal(run.status, 'succeeded', run.error ?? '');
    assert.equal(run.waiting_reason, null);
    const failed = await t.dbs.api.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM freshet.attempts WHERE run_id = $1 AND status <> 'done'`,
      [runId],
    );
    assert.equal(failed.rows[0]?.n, 0);
    const docs = await t.es.count({ index: `${t.config.ELASTICSEARCH_INDEX_PREFIX}clip` });
    assert.equal(docs.count, 4000);
  });
});
