import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { cancelRun, startRefresh } from '@freshet/control';
import { waitUntil, watchBackends, type BackendWatch } from '../helpers/backends.js';
import { createSlowView, seedClips, writeClipMedia } from '../helpers/clip-media.js';
import { createTestEnv, type TestEnv } from '../helpers/env.js';
import { spawnCli, type CliProcess } from '../helpers/processes.js';

/**
 * Two worker processes each run one chunk whose copy query sleeps 60 s. Cancel from the API
 * (the same function the REST route calls) must stop the work in both processes, at the source.
 */
describe('cancel of a run', { timeout: 120_000 }, () => {
  let t: TestEnv;
  let workers: CliProcess[] = [];
  let watch: BackendWatch;
  let runId: string;
  let cancelledAt: number;

  before(async () => {
    t = await createTestEnv({
      FRESHET_MEDIA_FILE: writeClipMedia(),
      WORKER_CONCURRENCY: '1',
      LOG_LEVEL: 'info',
    });
    await seedClips(t.dbs.catalog, 200);
    await createSlowView(t.dbs.catalog);
    workers = [spawnCli(['worker'], t.env), spawnCli(['worker'], t.env)];
    await Promise.all(workers.map((w) => w.waitFor(/worker started/)));
    watch = watchBackends(t.config.CATALOG_DATABASE_URL, 'COPY (SELECT');
    runId = await startRefresh(
      { config: t.config, api: t.dbs.api, media: t.media, queues: t.queues },
      { media: 'slowclip', chunkSizeRows: 100 },
    );
    await waitUntil(
      () => watch.backends().filter((b) => b.goneBy.getTime() > 8e15).length === 2,
      'both chunks are copying',
    );
    cancelledAt = Date.now();
    await cancelRun({ api: t.dbs.api, queues: t.queues }, runId, 'operator');
    await Promise.all(
      workers.map((w) =>
        w.waitFor(/run cancelled: running jobs aborted.*"jobs":1|"jobs":1.*run cancelled/),
      ),
    );
    await waitUntil(
      () => watch.backends().every((b) => b.goneBy.getTime() < 8e15),
      'the sleeping copies are gone',
      10_000,
    );
    await watch.stop();
    // Each aborted attempt is recorded once its backends are confirmed gone.
    await waitUntil(
      async () => {
        const { rows } = await t.dbs.api.query<{ n: number }>(
          `SELECT count(*)::int AS n FROM freshet.attempts WHERE run_id = $1 AND status = 'running'`,
          [runId],
        );
        return rows[0]?.n === 0;
      },
      'the aborted attempts are recorded',
      10_000,
    );
  });

  after(async () => {
    await watch?.stop();
    await Promise.all(workers.map((w) => w.stop()));
    await t?.close();
  });

  it('aborts the running job in each worker process', async () => {
    const { rows } = await t.dbs.api.query<{ worker: string; status: string; error: string }>(
      `SELECT worker, status, error FROM freshet.attempts WHERE run_id = $1 AND step = 'index' AND chunk IS NOT NULL ORDER BY worker`,
      [runId],
    );
    assert.equal(rows.length, 2);
    assert.notEqual(rows[0]?.worker, rows[1]?.worker, 'the two chunks ran in different processes');
    for (const r of rows) {
      assert.equal(r.status, 'failed');
      assert.match(r.error, /^RunCancelledError/);
    }
  });

  it('cancels their queries at the server within 5 s (pub/sub to another process, then cancel and confirm)', () => {
    const sleepers = watch.backends();
    assert.equal(sleepers.length, 2);
    for (const b of sleepers)
      assert.ok(
        b.goneBy.getTime() - cancelledAt <= 5000,
        `gone ${b.goneBy.getTime() - cancelledAt} ms after cancel`,
      );
  });

  it('leaves the run cancelled, with the cancel in the audit log', async () => {
    const run = await t.store.getRun(runId);
    assert.equal(run.status, 'cancelled');
    const { rows } = await t.dbs.api.query<{ actor: string; action: string }>(
      'SELECT actor, action FROM freshet.audit WHERE run_id = $1 ORDER BY id',
      [runId],
    );
    assert.deepEqual(rows.at(-1), { actor: 'operator', action: 'cancel' });
  });
});
