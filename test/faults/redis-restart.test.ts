import assert from 'node:assert/strict';
import { once } from 'node:events';
import { setTimeout as delay } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import { getMedia, seedSynthetic } from '@freshet/core';
import { startRefresh } from '@freshet/control';
import { waitUntil } from '../helpers/backends.js';
import { createTestEnv, type TestEnv } from '../helpers/env.js';
import {
  accounting,
  chunkDisagreements,
  exactnessProblems,
  leakedSecrets,
  startRedisServer,
  startWorkerPool,
  waitForRunStatus,
  type Accounting,
  type RedisServer,
  type WorkerPool,
} from '../helpers/faults.js';
import { spawnCli, type CliProcess } from '../helpers/processes.js';

/**
 * How long Redis stays down: the fault itself, not a wait for something. Longer than the job lock
 * (3 s), so the locks of running jobs expire while Redis is away.
 */
const DOWN_MS = 4000;

/** Redis's password: the reconnect notices of `refresh --wait` must never print it. */
const REDIS_PASSWORD = 'redis-pw-never-printed-3c9';

/** Waits at most `ms` for a CLI process to exit (then kills it); its exit code, or null if killed. */
async function exitWithin(cli: CliProcess, ms: number): Promise<number | null> {
  if (cli.child.exitCode !== null || cli.child.signalCode !== null) return cli.child.exitCode;
  try {
    await once(cli.child, 'exit', { signal: AbortSignal.timeout(ms) });
    return cli.child.exitCode;
  } catch {
    await cli.stop('SIGKILL');
    return null;
  }
}

/**
 * A Redis of the test's own (AOF on, noeviction) is shut down (`redis-cli shutdown`, which writes
 * the AOF) twice during a refresh, mid-chunks and at the final stages, and started again on the
 * same port and dir. Workers and the producer must reconnect by themselves and the run complete
 * with exact counts: no chunk lost, none run twice to a different result. The run is started by
 * `freshet refresh --wait`, which must follow it across both restarts, saying each time that it
 * is reconnecting, and exit 0 with the run succeeded.
 */
describe('Redis restarted mid-run', { timeout: 240_000 }, () => {
  let redis: RedisServer;
  let t: TestEnv;
  let pool: WorkerPool;
  let runId: string;
  let secondRun: string;
  let acc: Accounting;
  let second: Accounting;
  let wait: CliProcess;
  let waitExit: number | null;
  const restartedAt: string[] = [];
  const deps = () => ({ config: t.config, api: t.dbs.api, media: t.media, queues: t.queues });

  async function restart(when: string): Promise<void> {
    await redis.shutdown();
    await delay(DOWN_MS);
    await redis.start();
    restartedAt.push(when);
  }

  before(async () => {
    redis = await startRedisServer({ password: REDIS_PASSWORD });
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
    wait = spawnCli(['refresh', 'image', '--wait'], t.env);
    await wait.waitFor(/run \S+ started/);
    runId = /run (\S+) started/.exec(wait.output())?.[1] ?? '';

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
    // The run has ended: the waiting process has no reason to take long to say so and exit.
    waitExit = await exitWithin(wait, 60_000);

    // The producer's connection came back too: a new refresh goes through it.
    secondRun = await startRefresh(deps(), { media: 'image' });
    const run2 = await waitForRunStatus(t.store, secondRun, undefined, 120_000);
    assert.equal(run2.status, 'succeeded', run2.error ?? '');
    second = await accounting(t, secondRun);
  });

  after(async () => {
    if (wait) await exitWithin(wait, 0);
    await pool?.close();
    await t?.close();
    await redis?.close();
  });

  it('restarted Redis twice during the run', () => {
    assert.equal(restartedAt.length, 2, restartedAt.join('; '));
  });

  it('refresh --wait followed the run across both restarts, saying it was reconnecting', () => {
    const out = wait.output();
    const lost = out.match(
      /Redis at redis:\/\/:\*\*\*@127\.0\.0\.1:\d+\/? is unreachable \(.+\); reconnecting\.\.\./g,
    );
    const back = out.match(/Redis at \S+ is reachable again/g);
    assert.equal(lost?.length, restartedAt.length, out);
    assert.equal(back?.length, restartedAt.length, out);
    assert.deepEqual(leakedSecrets(out, [REDIS_PASSWORD]), []);
  });

  it('refresh --wait exited 0 with the run succeeded', () => {
    assert.equal(
      waitExit,
      0,
      `exit ${waitExit} (null: killed, it did not exit):\n${wait.output()}`,
    );
    assert.match(wait.output(), new RegExp(`run ${runId} succeeded`));
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
