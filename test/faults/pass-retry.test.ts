import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startRefresh } from '@freshet/control';
import { createTestEnv, type TestEnv } from '../helpers/env.js';
import {
  accounting,
  exactnessProblems,
  faultDefinition,
  openCheckpoints,
  seedFaultTable,
  startWorkerPool,
  waitForRunStatus,
  writeFaultMedia,
  type Accounting,
  type Checkpoints,
  type WorkerPool,
} from '../helpers/faults.js';

/**
 * A chunk's pass sends its documents before its transaction commits. Here the pass of chunk 2 is
 * stopped after every document went out, just before it commits; meanwhile the catalog changes
 * under it (a row of the range is deleted, another retitled), and its API backend is terminated,
 * so the attempt rolls back with its documents already in the index. The retry must leave table
 * and index equal to the catalog as it is now: the deleted row in neither, the retitled one once,
 * with its new title.
 */
describe('a chunk retried after it sent its documents', { timeout: 180_000 }, () => {
  let t: TestEnv;
  let pool: WorkerPool;
  let cp: Checkpoints;
  let runId: string;
  let acc: Accounting;
  let deleted: number;
  let retitled: number;

  before(async () => {
    t = await createTestEnv({
      FRESHET_MEDIA_FILE: writeFaultMedia({ clip: faultDefinition('clip') }),
      LOG_LEVEL: 'info',
    });
    await seedFaultTable(t.dbs.catalog, 'clip', 1000);
    cp = await openCheckpoints(t.config.API_DATABASE_URL);
    // The statement that stores the pass's counts runs after its last bulk request was answered.
    const held = await cp.arm(
      'freshet.chunks',
      'UPDATE',
      `NEW.chunk = 2 AND NEW.result ? 'pass' AND NOT OLD.result ? 'pass'`,
    );
    pool = startWorkerPool(t.env, 1);
    await pool.ready();
    runId = await startRefresh(
      { config: t.config, api: t.dbs.api, media: t.media, queues: t.queues },
      { media: 'clip' },
    );
    const pid = await held.reached();
    const { rows: range } = await t.dbs.api.query<{ s: string; e: string }>(
      'SELECT range_start AS s, range_end AS e FROM freshet.chunks WHERE run_id = $1 AND chunk = 2',
      [runId],
    );
    const bounds = [Number(range[0]?.s), Number(range[0]?.e)];
    const { rows: keys } = await t.dbs.catalog.query<{ id: number }>(
      `SELECT id::int AS id FROM clip WHERE id >= $1 AND id < $2 AND license <> '' AND url NOT LIKE 'javascript:%'
        ORDER BY id LIMIT 2`,
      bounds,
    );
    deleted = Number(keys[0]?.id);
    retitled = Number(keys[1]?.id);
    await t.dbs.catalog.query('DELETE FROM clip WHERE id = $1', [deleted]);
    await t.dbs.catalog.query(
      `UPDATE clip SET title = 'retitled after the first pass' WHERE id = $1`,
      [retitled],
    );
    await held.abort(pid);
    const run = await waitForRunStatus(t.store, runId, undefined, 120_000);
    assert.equal(run.status, 'succeeded', run.error ?? '');
    acc = await accounting(t, runId);
  });

  after(async () => {
    await pool?.close();
    await cp?.close();
    await t?.close();
  });

  it('the first attempt failed after sending, the second replaced the range', async () => {
    const { rows } = await t.dbs.api.query<{ status: string }>(
      `SELECT status FROM freshet.attempts WHERE run_id = $1 AND chunk = 2 ORDER BY id`,
      [runId],
    );
    assert.deepEqual(
      rows.map((r) => r.status),
      ['failed', 'done'],
    );
  });

  it('table and index hold the catalog as it is now, each row once', async () => {
    assert.deepEqual(exactnessProblems(acc), []);
    const index = acc.names.index;
    const gone = await t.es.count({ index, query: { ids: { values: [String(deleted)] } } });
    assert.equal(gone.count, 0, 'the deleted row left the index');
    const { rows } = await t.dbs.api.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM "${acc.names.table}" WHERE id = $1`,
      [deleted],
    );
    assert.equal(rows[0]?.n, 0, 'the deleted row is not in the table');
    const doc = await t.es.get<{ title: string }>({ index, id: String(retitled) });
    assert.equal(doc._source?.title, 'retitled after the first pass');
  });
});
