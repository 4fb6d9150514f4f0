import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import {
  createEsClient,
  getMedia,
  refreshNames,
  seedSynthetic,
  type EsClient,
} from '@freshet/core';
import { startRefresh } from '@freshet/control';
import { waitUntil } from '../helpers/backends.js';
import { createTestEnv, type TestEnv } from '../helpers/env.js';
import {
  accounting,
  chunkDisagreements,
  exactnessProblems,
  startEsNode,
  startWorkerPool,
  waitForRunStatus,
  type Accounting,
  type EsNode,
  type WorkerPool,
} from '../helpers/faults.js';

/** Write requests the node rejected (429, es_rejected_execution_exception) since it started. */
async function writeRejections(es: EsClient): Promise<number> {
  const stats = await es.nodes.stats({ metric: 'thread_pool' });
  return Object.values(stats.nodes).reduce(
    (n, node) => n + (node.thread_pool?.write?.rejected ?? 0),
    0,
  );
}

/**
 * A second Elasticsearch node of the test's own (the shared one is never stopped), started with a
 * write thread pool of one thread and a queue of one, so concurrent bulks are really rejected with
 * 429. During one refresh: the new indices are write-blocked for a while (every bulk item fails
 * with 403 cluster_block_exception), then the node is stopped mid-index and started again. The
 * run must back off and retry through all of it, and end exact: nothing dropped silently.
 */
describe('Elasticsearch rejecting bulks and unavailable mid-index', { timeout: 300_000 }, () => {
  let node: EsNode;
  let t: TestEnv;
  let pool: WorkerPool;
  let runId: string;
  let acc: Accounting;
  let rejected429 = 0;
  let noticed = '';

  const failedAttempts = async (pattern: string) =>
    (
      await t.dbs.api.query<{ n: number }>(
        `SELECT count(*)::int AS n FROM freshet.attempts
          WHERE run_id = $1 AND status = 'failed' AND error ~* $2`,
        [runId, pattern],
      )
    ).rows[0]?.n ?? 0;

  before(async () => {
    node = await startEsNode(['thread_pool.write.size: 1', 'thread_pool.write.queue_size: 1']);
    t = await createTestEnv({
      ELASTICSEARCH_URL: node.url,
      CHUNK_SIZE_ROWS: '100',
      CHUNK_ATTEMPTS: '12',
      CHUNK_BACKOFF_MS: '200',
      INDEX_BULK_FLUSH_BYTES: '20000',
      INDEX_BULK_CONCURRENCY: '4',
      WORKER_CONCURRENCY: '4',
      ELASTICSEARCH_REQUEST_TIMEOUT_MS: '10000',
      ADMISSION_RETRY_MS: '500',
      ADMISSION_CACHE_MS: '0',
      LOG_LEVEL: 'info',
    });
    await seedSynthetic(t.dbs.catalog, getMedia(t.media, 'image'), { rows: 3000, seed: 9 });
    pool = startWorkerPool(t.env, 2);
    await pool.ready();
    runId = await startRefresh(
      { config: t.config, api: t.dbs.api, media: t.media, queues: t.queues },
      { media: 'image' },
    );

    // 1. A write block on the new indices: every bulk item fails (403) until it is lifted.
    const names = refreshNames(
      getMedia(t.media, 'image'),
      'production',
      runId,
      t.config.ELASTICSEARCH_INDEX_PREFIX,
    );
    const indices = names.indices.join(',');
    await waitUntil(
      async () => (await t.es.indices.exists({ index: indices })) === true,
      'preflight created the indices',
    );
    await t.es.indices.putSettings({ index: indices, settings: { 'index.blocks.write': true } });
    await waitUntil(
      async () => (await failedAttempts('cluster_block_exception')) >= 2,
      'index steps fail on the write block',
      60_000,
    );
    await t.es.indices.putSettings({ index: indices, settings: { 'index.blocks.write': null } });

    // 2. The node goes away mid-index, and comes back (a restart takes 20-30 s).
    await waitUntil(
      async () => (await t.store.chunkProgress(runId)).indexed >= 8,
      '8 chunks indexed',
      60_000,
    );
    rejected429 += await writeRejections(t.es);
    await node.stop();
    await waitUntil(
      async () => {
        const run = await t.store.getRun(runId);
        if (run.waiting_reason?.includes('Elasticsearch')) noticed = run.waiting_reason;
        else if ((await failedAttempts('connect|ECONNREFUSED|No Living')) > 0)
          noticed = 'an attempt failed to connect';
        return noticed !== '';
      },
      'the workers notice Elasticsearch is gone',
      60_000,
    );
    await node.start();

    const run = await waitForRunStatus(t.store, runId, undefined, 180_000);
    assert.equal(run.status, 'succeeded', run.error ?? '');
    rejected429 += await writeRejections(t.es);
    acc = await accounting(t, runId);
  });

  after(async () => {
    await pool?.close();
    await t?.close();
    await node?.remove();
  });

  it('bulk items refused by a write block (403) fail the step, which is retried after the block', async () => {
    assert.ok((await failedAttempts('cluster_block_exception')) >= 2);
  });

  it('the node really rejected writes with 429 (tiny write queue), and nothing was lost', (c) => {
    c.diagnostic(`${rejected429} write requests rejected with 429 by the node`);
    assert.ok(rejected429 > 0, 'es_rejected_execution_exception happened');
    assert.deepEqual(exactnessProblems(acc), []);
  });

  it('the outage was noticed (work waited or failed and was retried), and the run completed', (c) => {
    c.diagnostic(`noticed: ${noticed}`);
    assert.notEqual(noticed, '');
    assert.ok(acc.tableRows > 2000);
  });

  it('no chunk lost, none run twice to a different result', async () => {
    assert.deepEqual(await chunkDisagreements(t, runId), []);
  });

  it('the documents survived the restart: every key of the table is in the index', async () => {
    const es: EsClient = createEsClient(t.config);
    try {
      const { rows } = await t.dbs.api.query<{ id: string }>(
        'SELECT identifier::text AS id FROM image ORDER BY identifier LIMIT 500',
      );
      const got = await es.mget({ index: acc.names.index, ids: rows.map((r) => r.id) });
      assert.equal(got.docs.filter((d) => 'found' in d && d.found).length, rows.length);
    } finally {
      await es.close();
    }
  });
});
