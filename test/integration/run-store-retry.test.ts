import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import { createPool, newRunId, RunStore, type Pool } from '@freshet/core';
import { createTestEnv, type TestEnv } from '../helpers/env.js';

/**
 * The lost write behind a flaky fault test: an attempt's end was written on a pooled connection
 * whose backend had just been terminated, the write failed, and the attempt stayed `running`.
 * Here the same moment is made 50 times on the real PostgreSQL: every idle connection of the
 * store's pool is terminated right before each write.
 */
describe('run-store writes over dropped connections', { timeout: 120_000 }, () => {
  let t: TestEnv;
  let admin: pg.Client;
  const rounds = 50;

  before(async () => {
    t = await createTestEnv();
    admin = new pg.Client({ connectionString: t.config.API_DATABASE_URL });
    await admin.connect();
  });

  after(async () => {
    await admin.end();
    await t.close();
  });

  /** Fills the pool with idle connections, then terminates their backends at the server. */
  async function dropIdleConnections(pool: Pool, name: string): Promise<number> {
    const clients = await Promise.all(
      [0, 1, 2].map(async () => {
        const client = await pool.connect();
        client.on('error', () => undefined);
        // A connection killed in the previous round may be handed out first: replace it.
        const alive = await client.query('SELECT 1').then(
          () => true,
          () => false,
        );
        return { client, alive };
      }),
    );
    for (const { client, alive } of clients) client.release(!alive);
    const { rows } = await admin.query<{ n: number }>(
      `SELECT count(pg_terminate_backend(pid))::int AS n FROM pg_stat_activity
        WHERE application_name = $1 AND datname = current_database()`,
      [name],
    );
    return rows[0]?.n ?? 0;
  }

  /** `rounds` attempts begun and ended, each write after its pool lost every connection. */
  async function writeThroughDrops(retryMs: number): Promise<{ failures: number; left: number }> {
    const name = `freshet-retry-${retryMs}-${t.id}`;
    const pool = createPool(t.config.API_DATABASE_URL, name, 3);
    const store = new RunStore(pool, { retryMs });
    const runId = newRunId();
    await store.createRun({
      id: runId,
      prefix: t.queues.prefix,
      media: 'image',
      profile: 'staging',
    });
    let failures = 0;
    try {
      for (let i = 0; i < rounds; i++) {
        try {
          assert.ok((await dropIdleConnections(pool, name)) > 0, 'the fault was made');
          const { attemptId } = await store.beginAttempt({
            runId,
            jobId: `${runId}.c${i}.copy`,
            step: 'copy',
            chunk: i,
            attempt: 1,
            worker: 'w',
          });
          assert.ok(attemptId !== null);
          assert.ok((await dropIdleConnections(pool, name)) > 0, 'the fault was made');
          await store.finishAttempt(attemptId, 'failed', null, 'Error: terminated');
        } catch (err) {
          if (err instanceof assert.AssertionError) throw err;
          failures++;
        }
      }
      const { rows } = await t.dbs.api.query<{ n: number }>(
        `SELECT count(*)::int AS n FROM freshet.attempts WHERE run_id = $1 AND status = 'running'`,
        [runId],
      );
      return { failures, left: rows[0]?.n ?? 0 };
    } finally {
      await t.store.setStatus(runId, 'cancelled');
      await pool.end();
    }
  }

  it('without retries, writes are lost (the fault is real)', async () => {
    const { failures } = await writeThroughDrops(0);
    assert.ok(failures > 0, 'some write failed on a dropped connection');
  });

  it('with retries, every write lands and no attempt is left running', async () => {
    const { failures, left } = await writeThroughDrops(10_000);
    assert.equal(failures, 0);
    assert.equal(left, 0);
  });
});
