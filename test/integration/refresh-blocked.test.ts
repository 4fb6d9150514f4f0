import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { QueueEvents } from 'bullmq';
import { CHUNK_QUEUE, ConflictError, createWorkerRedis } from '@freshet/core';
import { startWorker, type WorkerApp } from '@freshet/worker';
import { retryRun, startRefresh } from '@freshet/control';
import { breakCatalogRow, seedClips, writeClipMedia } from '../helpers/clip-media.js';
import { createTestEnv, type TestEnv } from '../helpers/env.js';

/**
 * A media type defined by the test alone (no code change): integer keys, its own mapping. The
 * catalog fails to read one row, so the copy of its chunk fails every attempt: the run must
 * block, the live alias must keep serving the old index, and retrying that one job once the
 * catalog is repaired must finish the run.
 */
describe('a chunk that fails all its attempts', { timeout: 240_000 }, () => {
  let t: TestEnv;
  let worker: WorkerApp;
  let events: QueueEvents;
  let eventsRedis: ReturnType<typeof createWorkerRedis>;
  let firstRun: string;
  let secondRun: string;
  let exhaustedJob: string;
  let repair: () => Promise<void>;
  const alias = () => `${t.config.ELASTICSEARCH_INDEX_PREFIX}clip`;
  const deps = () => ({ config: t.config, api: t.dbs.api, media: t.media, queues: t.queues });

  before(async () => {
    t = await createTestEnv({
      FRESHET_MEDIA_FILE: writeClipMedia(),
      CHUNK_ATTEMPTS: '2',
      CHUNK_BACKOFF_MS: '10',
    });
    // Sparse integer keys, 20 chunks of roughly 100 rows.
    await seedClips(t.dbs.catalog, 2000);
    eventsRedis = createWorkerRedis(t.config);
    events = new QueueEvents(CHUNK_QUEUE, {
      connection: eventsRedis,
      prefix: t.config.FRESHET_QUEUE_PREFIX,
    });
    await events.waitUntilReady();
    worker = await startWorker(t.config, t.logger);
    firstRun = await startRefresh(deps(), { media: 'clip' });
    await t.waitForRunEnd(firstRun);

    repair = await breakCatalogRow(t.dbs.catalog, 7 * 1234);
    const exhausted = new Promise<string>((resolve) =>
      events.on('retries-exhausted', ({ jobId }) => resolve(jobId)),
    );
    secondRun = await startRefresh(deps(), { media: 'clip' });
    exhaustedJob = await exhausted;
  });

  after(async () => {
    await worker?.close();
    await events?.close();
    eventsRedis?.disconnect();
    await t?.close();
  });

  it('a media type defined only in a definitions file refreshes', async () => {
    const run = await t.store.getRun(firstRun);
    assert.equal(run.status, 'succeeded', run.error ?? '');
    assert.equal((await t.es.count({ index: alias() })).count, 2000);
    const upper = await t.dbs.api.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM clip WHERE license <> 'by'`,
    );
    assert.equal(upper.rows[0]?.n, 0);
  });

  it('blocks the run at the failing chunk instead of counting it done', async () => {
    const run = await t.store.getRun(secondRun);
    assert.equal(run.status, 'blocked');
    assert.match(run.error ?? '', /chunk \d+ failed all attempts: could not read catalog row 8638/);
    assert.match(exhaustedJob, /^\d{8}-\d{6}-[0-9a-f]{4}\.c\d+\.index$/);
    const { rows } = await t.dbs.api.query<{ index_status: string }>(
      `SELECT index_status FROM freshet.chunks WHERE run_id = $1 AND index_status = 'failed'`,
      [secondRun],
    );
    assert.equal(rows.length, 1);
  });

  it('keeps the live alias on the previous index', async () => {
    const holders = Object.keys(await t.es.indices.getAlias({ name: alias() }));
    assert.deepEqual(holders, [`${alias()}-${firstRun}`]);
    assert.equal((await t.es.count({ index: alias() })).count, 2000);
  });

  it('refuses a second refresh of the same media while the run is blocked', async () => {
    await assert.rejects(startRefresh(deps(), { media: 'clip' }), (err: Error) => {
      assert.ok(err instanceof ConflictError);
      assert.match(err.message, new RegExp(`already blocked \\(run ${secondRun}\\)`));
      return true;
    });
  });

  it('retrying the one failed job finishes the run without redoing other chunks', async () => {
    // The operator repairs the catalog, then retries.
    await repair();
    const retried = await retryRun({ api: t.dbs.api, queues: t.queues }, secondRun);
    assert.deepEqual(retried, [exhaustedJob]);
    await t.waitForRunEnd(secondRun);
    const run = await t.store.getRun(secondRun);
    assert.equal(run.status, 'succeeded', run.error ?? '');
    assert.deepEqual(Object.keys(await t.es.indices.getAlias({ name: alias() })), [
      `${alias()}-${secondRun}`,
    ]);
    assert.equal((await t.es.count({ index: alias() })).count, 2000);

    const { rows } = await t.dbs.api.query<{ job_id: string; n: number; failed: number }>(
      `SELECT job_id, count(*)::int AS n, count(*) FILTER (WHERE status = 'failed')::int AS failed
         FROM freshet.attempts WHERE run_id = $1 AND chunk IS NOT NULL GROUP BY job_id`,
      [secondRun],
    );
    const again = rows.filter((r) => r.n !== 1);
    assert.deepEqual(again, [{ job_id: exhaustedJob, n: 3, failed: 2 }]);
  });
});
