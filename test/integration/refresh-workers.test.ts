import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { getMedia, seedSynthetic } from '@freshet/core';
import { startRefresh } from '@freshet/control';
import { createTestEnv, type TestEnv } from '../helpers/env.js';
import { spawnCli, type CliProcess } from '../helpers/processes.js';

describe('a refresh shared by two worker processes', { timeout: 240_000 }, () => {
  let t: TestEnv;
  let workers: CliProcess[] = [];
  let runId: string;
  let chunks: number;

  before(async () => {
    t = await createTestEnv({ CHUNK_SIZE_ROWS: '100', LOG_LEVEL: 'info' });
    await seedSynthetic(t.dbs.catalog, getMedia(t.media, 'image'), { rows: 5000, seed: 7 });
    workers = [spawnCli(['worker'], t.env), spawnCli(['worker'], t.env)];
    await Promise.all(workers.map((w) => w.waitFor(/worker started/)));
    runId = await startRefresh(
      { config: t.config, api: t.dbs.api, media: t.media, queues: t.queues },
      { media: 'image' },
    );
    await t.waitForRunEnd(runId, 180_000);
    chunks = (await t.store.getRun(runId)).chunk_count ?? 0;
  });

  after(async () => {
    await Promise.all(workers.map((w) => w.stop()));
    await t?.close();
  });

  it('succeeds with about 50 chunks', async () => {
    const run = await t.store.getRun(runId);
    assert.equal(run.status, 'succeeded', run.error ?? '');
    assert.ok(chunks >= 40 && chunks <= 60, `chunk count ${chunks}`);
  });

  it('processes every chunk exactly once', async () => {
    const { rows } = await t.dbs.api.query<{
      step: string;
      chunk: number;
      n: number;
      done: number;
    }>(
      `SELECT step, chunk, count(*)::int AS n, count(*) FILTER (WHERE status = 'done')::int AS done
         FROM freshet.attempts WHERE run_id = $1 AND chunk IS NOT NULL GROUP BY step, chunk`,
      [runId],
    );
    assert.equal(rows.length, chunks, 'one row per chunk (its one pass)');
    const twice = rows.filter((r) => r.n !== 1 || r.done !== 1);
    assert.deepEqual(twice, []);
  });

  it('spreads the work over both processes', async () => {
    const { rows } = await t.dbs.api.query<{ worker: string; n: number }>(
      `SELECT worker, count(*)::int AS n FROM freshet.attempts WHERE run_id = $1 AND chunk IS NOT NULL GROUP BY worker`,
      [runId],
    );
    assert.equal(rows.length, 2, JSON.stringify(rows));
  });

  it('indexes exactly the promoted rows', async () => {
    const table = await t.dbs.api.query<{ n: number; d: number }>(
      'SELECT count(*)::int AS n, count(DISTINCT identifier)::int AS d FROM image',
    );
    const docs = await t.es.count({ index: `${t.config.ELASTICSEARCH_INDEX_PREFIX}image` });
    assert.equal(table.rows[0]?.n, table.rows[0]?.d);
    assert.equal(docs.count, table.rows[0]?.n);
  });
});
