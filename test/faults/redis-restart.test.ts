import assert from 'node:assert/strict';
import { setTimeout as delay } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import { getMedia, seedSynthetic } from '@freshet/core';
import { startRefresh } from '../../apps/producer/src/refresh.js';
import { waitUntil } from '../helpers/backends.js';
import { createTestEnv, type TestEnv } from '../helpers/env.js';
import {
  accounting,
  chunkDisagreements,
  exactnessProblems,
  startRedisServer,
  startWorkerPool,
  waitForRunStatus,
  type Accounting,
  type RedisServer,
  type WorkerPool,
} from '../helpers/faults.js';

/**
 * How long Redis stays down: the fault itself, not a wait for something. Longer than the job lock
 * (3 s), so the locks of running jobs expire while Redis is away.
 */
const DOWN_MS = 4000;

/**
 * A Redis of the test's own (AOF on, noeviction) is shut down (`redis-cli shutdown`, which writes
 * the AOF) twice during a refresh, mid-chunks and at the final stages, and started again on the
 * same port and dir. Workers and the producer must reconnect by themselves and the run complete
 * with exact counts: no chunk lost, none run twice to a different result.
 */
describe('Redis restarted mid-run', { timeout: 240_000 }, () => {
  let redis: RedisServer;
  let t: TestEnv;
  let pool: WorkerPool;
  let runId: string;
  let secondRun: string;
  let acc: Accounting;
  let second: Accounting;
  const restartedAt: string[] = [];
  const deps = () => ({ config: t.config, api: t.dbs.api, media: t.media, queues: t.queues });

  async function restart(when: string): Promise<void> {
    await redis.shutdown();
    await delay(DOWN_MS);
    await redis.start();
    restartedAt.push(when);
  }

  before(async () => {
    redis = await startRedisServer();
    t = await createTestEnv({
      REDIS_URL: redis.url,
      CHUNK_SIZE_ROWS: '100',
      WORKER_LOCK_DURATION_MS: '3000',
      WORKER_STALLED_INTERVAL_MS: '1000',
      WORKER_MAX_STALLED_COUNT: '3',
      LOG_LEVEL: 'info',
    });
    await seedSynthetic(t.dbs.catalog, getMedia(t.media, 'image'), { rows: 3000, seed: 5 });
    pool = startWorkerPool(t.env, 2);
    await pool.ready();
    runId = await startRefresh(deps(), { media: 'image' });

    const done = async () =>
      (
        await t.dbs.api.query<{ n: number }>(
          `SELECT count(*)::int AS n FROM freshet.attempts WHERE run_id = $1 AND chunk IS NOT NULL AND status = 'done'`,
          [runId],
        )
      ).rows[0]?.n ?? 0;
    await waitUntil(async () => (await done()) >= 20, '20 chunk steps done');
    await restart(`mid-chunks (${await done()} chunk steps done)`);
    await waitUntil(
      async () =>
        ['finalize', 'promote', 'report'].includes((await t.store.getRun(runId)).stage ?? ''),
      'the run reaches its final stages',
      120_000,
    );
    await restart(`at ${(await t.store.getRun(runId)).stage ?? '?'}`);
    const run = await waitForRunStatus(t.store, runId, undefined, 150_000);
    assert.equal(run.status, 'succeeded', run.error ?? '');
    acc = await accounting(t, runId);

    // The producer's connection came back too: a new refresh goes through it.
    secondRun = await startRefresh(deps(), { media: 'image' });
    const run2 = await waitForRunStatus(t.store, secondRun, undefined, 120_000);
    assert.equal(run2.status, 'succeeded', run2.error ?? '');
    second = await accounting(t, secondRun);
  });

  after(async () => {
    await pool?.close();
    await t?.close();
    await redis?.close();
  });

  it('restarted Redis twice during the run', () => {
    assert.equal(restartedAt.length, 2, restartedAt.join('; '));
  });

  it('the run completes with exact counts', () => {
    assert.deepEqual(exactnessProblems(acc), []);
    assert.ok(acc.tableRows > 2000);
  });

  it('no chunk lost, none run twice to a different result', async () => {
    assert.deepEqual(await chunkDisagreements(t, runId), []);
  });

  it('the same worker processes carried on (they reconnected; none crashed)', () => {
    assert.equal(pool.all.length, 2);
    assert.equal(pool.alive().length, 2);
    assert.doesNotMatch(pool.output(), /"level":60/, 'no fatal log line');
  });

  it('the producer reconnected: a second refresh through it completes exactly', () => {
    assert.deepEqual(exactnessProblems(second), []);
    assert.equal(second.tableRows, acc.tableRows);
  });
});
