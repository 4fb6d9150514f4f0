import assert from 'node:assert/strict';
import { setTimeout as delay } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import { QueueEvents } from 'bullmq';
import { CHUNK_QUEUE, createWorkerRedis, getMedia, seedSynthetic } from '@freshet/core';
import { startWorker, type WorkerApp } from '@freshet/worker';
import { pauseRun, resumeRun, startRefresh } from '@freshet/control';
import { waitUntil } from '../helpers/backends.js';
import { createTestEnv, type TestEnv } from '../helpers/env.js';

/**
 * To show that nothing starts while paused, the test has to watch for a while: this window is
 * an observation period for a negative assertion, not a wait for something that could be awaited.
 */
const OBSERVE_MS = 1500;

describe('pausing a refresh mid-reindex', { timeout: 180_000 }, () => {
  let t: TestEnv;
  let worker: WorkerApp;
  let events: QueueEvents;
  let eventsRedis: ReturnType<typeof createWorkerRedis>;
  let runId: string;
  let indexed = 0;
  const waiters: { n: number; resolve: () => void }[] = [];
  const indexedAtLeast = (n: number) =>
    new Promise<void>((resolve) => (indexed >= n ? resolve() : waiters.push({ n, resolve })));
  const startedSince = async (since: Date) =>
    (
      await t.dbs.api.query<{ n: number }>(
        `SELECT count(*)::int AS n FROM freshet.attempts WHERE run_id = $1 AND started_at > $2`,
        [runId, since],
      )
    ).rows[0]?.n;
  const serverNow = async () =>
    (await t.dbs.api.query<{ now: Date }>('SELECT now() AS now')).rows[0]?.now as Date;
  const running = async () =>
    (
      await t.dbs.api.query<{ n: number }>(
        `SELECT count(*)::int AS n FROM freshet.attempts WHERE run_id = $1 AND status = 'running'`,
        [runId],
      )
    ).rows[0]?.n === 0;

  before(async () => {
    t = await createTestEnv({ CHUNK_SIZE_ROWS: '100', WORKER_CONCURRENCY: '1' });
    await seedSynthetic(t.dbs.catalog, getMedia(t.media, 'image'), { rows: 3000, seed: 3 });
    eventsRedis = createWorkerRedis(t.config);
    events = new QueueEvents(CHUNK_QUEUE, {
      connection: eventsRedis,
      prefix: t.config.FRESHET_QUEUE_PREFIX,
    });
    events.on('completed', ({ jobId }) => {
      if (!jobId.endsWith('.index')) return;
      indexed++;
      for (const w of [...waiters]) {
        if (indexed < w.n) continue;
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve();
      }
    });
    await events.waitUntilReady();
    worker = await startWorker(t.config, t.logger);
    runId = await startRefresh(
      { config: t.config, api: t.dbs.api, media: t.media, queues: t.queues },
      { media: 'image' },
    );
  });

  after(async () => {
    await worker?.close();
    await events?.close();
    eventsRedis?.disconnect();
    await t?.close();
  });

  it('a paused chunk queue (as Bull Board pauses it) starts no new chunk within 1 s', async () => {
    await indexedAtLeast(5);
    const pausedAt = await serverNow();
    await t.queues.chunk.pause();
    await waitUntil(running, 'the chunk running at pause time finished');
    await delay(OBSERVE_MS);
    assert.equal(await startedSince(new Date(pausedAt.getTime() + 1000)), 0);
    assert.ok(indexed < 30, 'the run was paused mid-reindex');
    await t.queues.chunk.resume();
  });

  it('a paused run starts no new chunk within 1 s; its queued jobs are parked', async () => {
    await indexedAtLeast(indexed + 3);
    const pausedAt = await serverNow();
    await pauseRun({ api: t.dbs.api, queues: t.queues }, runId, 'operator');
    await waitUntil(running, 'the chunk running at pause time finished');
    await delay(OBSERVE_MS);
    assert.equal(await startedSince(new Date(pausedAt.getTime() + 1000)), 0);
    assert.equal((await t.store.getRun(runId)).status, 'paused');
    assert.ok((await t.queues.chunk.getDelayedCount()) > 0, 'jobs picked while paused are parked');
  });

  it('resume continues where it stopped and completes with exact counts', async () => {
    await resumeRun({ api: t.dbs.api, queues: t.queues }, runId, 'operator');
    await t.waitForRunEnd(runId);
    const run = await t.store.getRun(runId);
    assert.equal(run.status, 'succeeded', run.error ?? '');
    const { rows } = await t.dbs.api.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM (SELECT chunk, step FROM freshet.attempts WHERE run_id = $1 AND chunk IS NOT NULL
         GROUP BY chunk, step HAVING count(*) <> 1) x`,
      [runId],
    );
    assert.equal(rows[0]?.n, 0, 'no chunk step ran twice');
    const table = await t.dbs.api.query<{ n: number }>('SELECT count(*)::int AS n FROM image');
    const docs = await t.es.count({ index: `${t.config.ELASTICSEARCH_INDEX_PREFIX}image` });
    assert.equal(docs.count, table.rows[0]?.n);
    const expected = await t.dbs.catalog.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM image u WHERE NOT removed_from_source
         AND NOT EXISTS (SELECT 1 FROM deleted_image d WHERE d.identifier = u.identifier)`,
    );
    const counts = run.counts as {
      rejected: Record<string, number>;
      skipped: Record<string, number>;
    };
    const rejected = Object.values(counts.rejected).reduce((a, b) => a + b, 0);
    assert.equal(
      (table.rows[0]?.n ?? 0) + rejected,
      expected.rows[0]?.n,
      'every upstream row is indexed or rejected with a reason',
    );
    const upstream = await t.dbs.catalog.query<{ n: number }>(
      'SELECT count(*)::int AS n FROM image',
    );
    assert.equal(
      (expected.rows[0]?.n ?? 0) + (counts.skipped.removed ?? 0) + (counts.skipped.deleted ?? 0),
      upstream.rows[0]?.n,
    );
  });
});
