import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import { jobTag } from '@freshet/core';
import { startRefresh } from '@freshet/control';
import { waitUntil } from '../helpers/backends.js';
import { createTestEnv, type TestEnv } from '../helpers/env.js';
import {
  accounting,
  chunkDisagreements,
  createHoldView,
  exactnessProblems,
  faultDefinition,
  holdSource,
  openCheckpoints,
  seedFaultTable,
  startWorkerPool,
  waitForRunStatus,
  writeFaultMedia,
  type Accounting,
  type Checkpoints,
  type WorkerPool,
} from '../helpers/faults.js';

interface Termination {
  readonly what: string;
  readonly jobId: string;
  readonly pid: number;
}

/**
 * PostgreSQL backends of running chunk steps are terminated (pg_terminate_backend, found by their
 * `freshet <jobId>` application_name): the catalog side of a copy in the middle of its COPY, the
 * API side of another copy after it deleted its range, a clean and an index in the middle of a
 * statement. Idle pooled connections of the workers are dropped too. Each step must be retried
 * and the run end exact: the table holds no duplicate rows.
 */
describe('PostgreSQL backends terminated under running chunks', { timeout: 180_000 }, () => {
  let t: TestEnv;
  let pool: WorkerPool;
  let cp: Checkpoints;
  let runId: string;
  let acc: Accounting;
  const terminated: Termination[] = [];
  let dropped = 0;

  const admin = async (url: string, sql: string, params: unknown[]) => {
    const c = new pg.Client({ connectionString: url, application_name: 'freshet-test-admin' });
    await c.connect();
    try {
      return (await c.query<{ pid: number }>(sql, params)).rows;
    } finally {
      await c.end();
    }
  };
  const terminate = async (url: string, jobId: string, what: string, extra = '') => {
    let pid: number | undefined;
    await waitUntil(
      async () => {
        const rows = await admin(
          url,
          `SELECT pid FROM pg_stat_activity WHERE application_name = $1 AND state <> 'idle' ${extra}`,
          [jobTag(jobId)],
        );
        pid = rows[0]?.pid;
        return pid !== undefined;
      },
      `a backend of ${jobId} (${what})`,
      30_000,
    );
    await admin(url, 'SELECT pg_terminate_backend($1)', [pid]);
    terminated.push({ what, jobId, pid: pid as number });
  };

  /** Idle pooled connections of every worker process, dropped under them. */
  const dropIdle = async () => {
    for (const url of [t.config.CATALOG_DATABASE_URL, t.config.API_DATABASE_URL]) {
      const rows = await admin(
        url,
        `SELECT pg_terminate_backend(pid) AS pid FROM pg_stat_activity
          WHERE datname = current_database() AND state = 'idle'
            AND application_name IN ('freshet', 'freshet-worker')`,
        [],
      );
      dropped += rows.length;
    }
  };

  before(async () => {
    t = await createTestEnv({
      FRESHET_MEDIA_FILE: writeFaultMedia({ holdclip: faultDefinition('holdclip') }),
      WORKER_CONCURRENCY: '3',
      // Dropping every idle connection can also hit a retry: leave room for that.
      CHUNK_ATTEMPTS: '5',
      LOG_LEVEL: 'info',
    });
    await seedFaultTable(t.dbs.catalog, 'clip', 1000);
    await createHoldView(t.dbs.catalog, 'holdclip', 'clip');
    const catalogUrl = t.config.CATALOG_DATABASE_URL;
    const apiUrl = t.config.API_DATABASE_URL;
    const c1 = await holdSource(catalogUrl, 'c1.index');
    const c2 = await holdSource(catalogUrl, 'c2.index');
    cp = await openCheckpoints(apiUrl);
    pool = startWorkerPool(t.env, 2);
    await pool.ready();
    runId = await startRefresh(
      { config: t.config, api: t.dbs.api, media: t.media, queues: t.queues },
      { media: 'holdclip' },
    );
    const job = (step: string) => `${runId}.${step}`;
    const pass3 = await cp.arm('freshet.attempts', 'INSERT', `NEW.job_id = '${job('c3.index')}'`);
    const index8 = await cp.arm('freshet.attempts', 'INSERT', `NEW.job_id = '${job('c8.index')}'`);

    // The catalog side of chunk 1's copy, while its COPY ... TO STDOUT runs.
    await c1.reached();
    await terminate(catalogUrl, job('c1.index'), 'catalog backend mid-COPY TO');
    await c1.release();

    // The API side of chunk 2's copy: it has deleted its range and waits in COPY ... FROM STDIN.
    await c2.reached();
    await terminate(apiUrl, job('c2.index'), 'API backend mid-COPY FROM', `AND query LIKE 'COPY%'`);
    await c2.release();
    await dropIdle();

    // A clean and an index, each in the middle of a statement (held by a table lock).
    for (const [held, step] of [
      [pass3, 'c3.index'],
      [index8, 'c8.index'],
    ] as const) {
      await held.reached();
      const lock = new pg.Client({ connectionString: apiUrl, application_name: 'freshet-test' });
      await lock.connect();
      await lock.query('BEGIN');
      await lock.query('LOCK TABLE temp_import_holdclip IN ACCESS EXCLUSIVE MODE');
      await held.release();
      await terminate(
        apiUrl,
        job(step),
        `API backend mid-statement (${step.split('.')[1]})`,
        `AND wait_event_type = 'Lock'`,
      );
      await lock.query('COMMIT');
      await lock.end();
      await dropIdle();
    }

    const run = await waitForRunStatus(t.store, runId, undefined, 120_000);
    assert.equal(run.status, 'succeeded', run.error ?? '');
    acc = await accounting(t, runId);
  });

  after(async () => {
    await pool?.close();
    await cp?.close();
    await t?.close();
  });

  it('terminated the backends of four running chunk steps and dropped idle connections', () => {
    assert.deepEqual(
      terminated.map((x) => x.jobId.slice(runId.length + 1)),
      ['c1.index', 'c2.index', 'c3.index', 'c8.index'],
    );
    assert.ok(dropped > 0, 'idle worker connections were dropped');
  });

  it('each of those steps failed its attempt with the termination and was retried to done', async () => {
    for (const x of terminated) {
      const { rows } = await t.dbs.api.query<{ status: string; error: string | null }>(
        'SELECT status, error FROM freshet.attempts WHERE run_id = $1 AND job_id = $2 ORDER BY id',
        [runId, x.jobId],
      );
      assert.equal(rows[0]?.status, 'failed', `${x.jobId}: ${JSON.stringify(rows)}`);
      assert.match(rows[0]?.error ?? '', /terminat|Connection/i, x.jobId);
      assert.equal(rows.at(-1)?.status, 'done', `${x.jobId}: ${JSON.stringify(rows)}`);
    }
  });

  it('the run completes exactly: no duplicate rows, documents == rows == expected', async () => {
    assert.deepEqual(exactnessProblems(acc), []);
    assert.deepEqual(await chunkDisagreements(t, runId), []);
  });

  it('no backend of the run is left behind', async () => {
    for (const url of [t.config.CATALOG_DATABASE_URL, t.config.API_DATABASE_URL]) {
      const rows = await admin(
        url,
        'SELECT pid FROM pg_stat_activity WHERE application_name LIKE $1',
        [`freshet ${runId}.%`],
      );
      assert.deepEqual(rows, []);
    }
  });
});
