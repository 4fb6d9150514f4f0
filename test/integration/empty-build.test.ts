import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startWorker, type WorkerApp } from '@freshet/worker';
import { startRefresh } from '@freshet/control';
import { seedClips, writeClipMedia } from '../helpers/clip-media.js';
import { createTestEnv, type TestEnv } from '../helpers/env.js';
import { waitForRunStatus } from '../helpers/faults.js';

/**
 * The upstream table is emptied between two refreshes (by accident, or a wrong catalog URL): the
 * second build is empty and must not replace the live table and index, which keep their rows.
 */
describe('an empty build over a live table with rows', { timeout: 240_000 }, () => {
  let t: TestEnv;
  let worker: WorkerApp;
  let first: string;
  let second: string;
  const deps = () => ({ config: t.config, api: t.dbs.api, media: t.media, queues: t.queues });
  const alias = () => `${t.config.ELASTICSEARCH_INDEX_PREFIX}clip`;

  before(async () => {
    t = await createTestEnv({ FRESHET_MEDIA_FILE: writeClipMedia() });
    await seedClips(t.dbs.catalog, 300);
    worker = await startWorker(t.config, t.logger);
    first = await startRefresh(deps(), { media: 'clip' });
    await waitForRunStatus(t.store, first);
    await t.dbs.catalog.query('DELETE FROM clip');
    second = await startRefresh(deps(), { media: 'clip' });
    await waitForRunStatus(t.store, second);
  });

  after(async () => {
    await worker?.close();
    await t?.close();
  });

  it('fails the run before promotion, saying why', async () => {
    assert.equal((await t.store.getRun(first)).status, 'succeeded');
    const run = await t.store.getRun(second);
    assert.equal(run.status, 'failed');
    assert.match(run.error ?? '', /new build is empty but the live clip has 300 rows/);
    assert.match(run.error ?? '', /FRESHET_ALLOW_DROP/);
  });

  it('leaves the live table and alias serving the previous build', async () => {
    const { rows } = await t.dbs.api.query<{ n: number }>('SELECT count(*)::int AS n FROM clip');
    assert.equal(rows[0]?.n, 300);
    assert.equal((await t.es.count({ index: alias() })).count, 300);
  });
});
