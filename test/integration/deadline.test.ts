import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { QueueEvents } from 'bullmq';
import { CHUNK_QUEUE, createWorkerRedis } from '@freshet/core';
import { startWorker, type WorkerApp } from '@freshet/worker';
import { startRefresh } from '@freshet/control';
import { createSlowView, seedClips, writeClipMedia } from '../helpers/clip-media.js';
import { createTestEnv, type TestEnv } from '../helpers/env.js';
import { waitUntil, watchBackends, type BackendWatch } from '../helpers/backends.js';

const DEADLINE_MS = 1500;

/**
 * A copy whose query sleeps 60 s runs into a 1.5 s deadline: the query must be gone from
 * pg_stat_activity within 2 s of the deadline, the attempt fails with a deadline error, and the
 * retry starts only after the old query is gone.
 */
describe('a step past its deadline', { timeout: 120_000 }, () => {
  let t: TestEnv;
  let worker: WorkerApp;
  let events: QueueEvents;
  let eventsRedis: ReturnType<typeof createWorkerRedis>;
  let watch: BackendWatch;
  let runId: string;
  let attempts: {
    attempt: number;
    status: string;
    error: string | null;
    started: Date;
    finished: Date;
  }[];

  before(async () => {
    t = await createTestEnv({
      FRESHET_MEDIA_FILE: writeClipMedia(),
      CHUNK_ATTEMPTS: '2',
      CHUNK_BACKOFF_MS: '10',
      CHUNK_DEADLINE_MS: String(DEADLINE_MS),
    });
    await seedClips(t.dbs.catalog, 50);
    await createSlowView(t.dbs.catalog);
    eventsRedis = createWorkerRedis(t.config);
    events = new QueueEvents(CHUNK_QUEUE, {
      connection: eventsRedis,
      prefix: t.config.FRESHET_QUEUE_PREFIX,
    });
    await events.waitUntilReady();
    watch = watchBackends(t.config.CATALOG_DATABASE_URL, 'COPY (SELECT');
    worker = await startWorker(t.config, t.logger);
    const exhausted = new Promise<void>((resolve) =>
      events.on('retries-exhausted', () => resolve()),
    );
    runId = await startRefresh(
      { config: t.config, api: t.dbs.api, media: t.media, queues: t.queues },
      { media: 'slowclip' },
    );
    await exhausted;
    // The last attempt's backend was confirmed gone before the job failed; let the watcher see it.
    await waitUntil(
      () => watch.backends().every((b) => b.goneBy.getTime() < 8e15),
      'the watcher saw every sleeping backend gone',
      10_000,
    );
    await watch.stop();
    const { rows } = await t.dbs.api.query<{
      attempt: number;
      status: string;
      error: string | null;
      started: Date;
      finished: Date;
    }>(
      `SELECT attempt, status, error, started_at AS started, finished_at AS finished
         FROM freshet.attempts WHERE run_id = $1 AND step = 'index' AND chunk IS NOT NULL ORDER BY attempt`,
      [runId],
    );
    attempts = rows;
  });

  after(async () => {
    await watch?.stop();
    await worker?.close();
    await events?.close();
    eventsRedis?.disconnect();
    await t?.close();
  });

  it('fails each attempt with a deadline error, and blocks the run after the last', async () => {
    assert.equal(attempts.length, 2);
    for (const a of attempts) {
      assert.equal(a.status, 'failed');
      assert.match(a.error ?? '', /^DeadlineError: index passed its deadline of 1500 ms/);
    }
    assert.equal((await t.store.getRun(runId)).status, 'blocked');
  });

  it('removes each sleeping query from pg_stat_activity within 2 s of its deadline', () => {
    const sleepers = watch.backends();
    assert.equal(
      sleepers.length,
      2,
      `one sleeping backend per attempt: ${JSON.stringify(sleepers)}`,
    );
    for (const [i, b] of sleepers.entries()) {
      const started = (attempts[i] as { started: Date }).started.getTime();
      const deadline = started + DEADLINE_MS;
      assert.ok(
        b.lastSeen.getTime() <= deadline + 2000,
        `backend ${b.pid} last seen ${b.lastSeen.getTime() - deadline} ms after its deadline`,
      );
      assert.ok(
        b.goneBy.getTime() <= deadline + 2000,
        `backend ${b.pid} gone ${b.goneBy.getTime() - deadline} ms after its deadline`,
      );
    }
  });

  it('starts the retry only after the previous attempt is confirmed gone', () => {
    const [first] = watch.backends();
    const retry = attempts[1] as { started: Date };
    assert.ok(first && retry.started.getTime() >= first.lastSeen.getTime());
    assert.ok(retry.started.getTime() >= (attempts[0] as { finished: Date }).finished.getTime());
  });
});
