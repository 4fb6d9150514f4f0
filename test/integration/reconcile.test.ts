import assert from 'node:assert/strict';
import { once } from 'node:events';
import { after, before, describe, it } from 'node:test';
import { Job, UnrecoverableError, Worker } from 'bullmq';
import {
  createWorkerRedis,
  jobIds,
  newRunId,
  STAGE_QUEUE,
  StageJob,
  startReconciler,
  type Reconciler,
} from '@freshet/core';
import { startRefresh } from '@freshet/control';
import { writeClipMedia } from '../helpers/clip-media.js';
import { createTestEnv, type TestEnv } from '../helpers/env.js';

/**
 * The reconciler against real Redis and PostgreSQL: runs whose record disagrees with BullMQ (a
 * job failed but its failure was never written; a run whose jobs were never enqueued; attempts
 * whose worker is gone) are repaired, and a healthy run is never touched.
 */
describe('reconciler', { timeout: 120_000 }, () => {
  let t: TestEnv;
  let reconciler: Reconciler;
  const deps = () => ({ config: t.config, api: t.dbs.api, media: t.media, queues: t.queues });

  before(async () => {
    t = await createTestEnv({ FRESHET_MEDIA_FILE: writeClipMedia() });
    // No timer: the test ticks it, so every observation is one it chose.
    reconciler = startReconciler({
      api: t.dbs.api,
      queues: t.queues,
      prefix: t.queues.prefix,
      logger: t.logger,
      intervalMs: 0,
    });
  });

  after(async () => {
    await reconciler.close();
    await t.close();
  });

  /** Records an attempt of `jobId` as a worker would when it starts the job. */
  async function beginAttempt(runId: string, jobId: string, step: string): Promise<number> {
    const begun = await t.store.beginAttempt({
      runId,
      jobId,
      step,
      chunk: null,
      attempt: 1,
      worker: 'gone:1',
    });
    assert.ok(begun.attemptId !== null);
    return begun.attemptId;
  }

  it('blocks a running run whose job failed without its failure being written', async () => {
    const runId = await startRefresh(deps(), { media: 'clip' });
    // A "worker" that records the attempt and then fails the job as BullMQ does, while the
    // write of that failure is lost: the run stays running at preflight, its attempt running.
    await t.store.enterStage(runId, 'preflight');
    const connection = createWorkerRedis(t.config);
    const worker = new Worker(
      STAGE_QUEUE,
      async (job) => {
        await beginAttempt(runId, job.id ?? '?', job.name);
        throw new UnrecoverableError('the database went away');
      },
      { connection, prefix: t.queues.prefix, autorun: false },
    );
    worker.on('error', () => undefined);
    const failed = once(worker, 'failed');
    void worker.run();
    await failed;
    await worker.close();
    connection.disconnect();
    assert.equal((await t.store.getRun(runId)).status, 'running');

    const first = await reconciler.tick();
    // Seen once: a suspect, not yet repaired (its attempt, whose job is not active, is closed).
    assert.deepEqual(first.suspects, [runId]);
    assert.deepEqual(first.ended, []);
    assert.equal(first.lostAttempts, 1);
    assert.equal((await t.store.getRun(runId)).status, 'running');

    const second = await reconciler.tick();
    assert.deepEqual(second.ended, [{ runId, status: 'blocked' }]);
    const run = await t.store.getRun(runId);
    assert.equal(run.status, 'blocked');
    assert.match(run.error ?? '', /preflight failed: the database went away/);

    const { rows: attempts } = await t.dbs.api.query<{ status: string }>(
      'SELECT status FROM freshet.attempts WHERE run_id = $1',
      [runId],
    );
    assert.deepEqual(
      attempts.map((a) => a.status),
      ['lost'],
    );
    const { rows: stages } = await t.dbs.api.query<{ stage: string; status: string }>(
      'SELECT stage, status FROM freshet.stages WHERE run_id = $1',
      [runId],
    );
    assert.deepEqual(stages, [{ stage: 'preflight', status: 'failed' }]);
    const { rows: logs } = await t.dbs.api.query<{ msg: string }>(
      `SELECT msg FROM freshet.logs WHERE run_id = $1`,
      [runId],
    );
    assert.ok(logs.some((l) => /blocked by the reconciler/.test(l.msg)));

    // The failed job is still there: retrying it is how the operator resumes the run.
    const job = await Job.fromId(t.queues.stage, jobIds.stage(runId, StageJob.preflight));
    assert.equal(await job?.getState(), 'failed');
    await t.store.setStatus(runId, 'cancelled');
  });

  it('fails a queued run none of whose jobs was ever enqueued, freeing its media', async () => {
    const runId = newRunId();
    await t.store.createRun({
      id: runId,
      prefix: t.queues.prefix,
      media: 'clip',
      profile: 'staging',
    });
    await reconciler.tick();
    const { ended } = await reconciler.tick();
    assert.deepEqual(ended, [{ runId, status: 'failed' }]);
    const run = await t.store.getRun(runId);
    assert.equal(run.status, 'failed');
    assert.match(run.error ?? '', /never enqueued/);
    // The one-refresh-per-media lock is free again.
    const next = await startRefresh(deps(), { media: 'clip', profile: 'staging' });
    await t.store.setStatus(next, 'cancelled');
  });

  it('leaves alone a run whose jobs wait, and one that moved between two ticks', async () => {
    // Waiting: its preflight job sits in the queue with no worker; ticks never touch it.
    const waiting = await startRefresh(deps(), { media: 'clip' });
    for (let i = 0; i < 3; i++) {
      const report = await reconciler.tick();
      assert.ok(!report.suspects.includes(waiting));
      assert.ok(!report.ended.some((e) => e.runId === waiting));
    }
    assert.equal((await t.store.getRun(waiting)).status, 'queued');
    await t.store.setStatus(waiting, 'cancelled');
    await t.queues.stage.obliterate({ force: true });

    // No live job, but progress recorded between the two ticks: a suspect again, not repaired.
    const moving = newRunId();
    await t.store.createRun({
      id: moving,
      prefix: t.queues.prefix,
      media: 'clip',
      profile: 'staging',
    });
    assert.deepEqual((await reconciler.tick()).suspects, [moving]);
    await t.store.enterStage(moving, 'preflight');
    const report = await reconciler.tick();
    assert.deepEqual(report.ended, []);
    assert.deepEqual(report.suspects, [moving]);
    assert.equal((await t.store.getRun(moving)).status, 'running');
    await t.store.setStatus(moving, 'cancelled');
  });

  it('closes as lost a running attempt whose job no worker runs, and only that one', async () => {
    const runId = await startRefresh(deps(), { media: 'clip' });
    const jobId = jobIds.stage(runId, StageJob.preflight);
    // Its job waits (no worker has it): the attempt recorded as running is a dead worker's.
    const attemptId = await beginAttempt(runId, jobId, 'preflight');
    const report = await reconciler.tick();
    assert.equal(report.lostAttempts, 1);
    const { rows } = await t.dbs.api.query<{ status: string; error: string }>(
      'SELECT status, error FROM freshet.attempts WHERE id = $1',
      [attemptId],
    );
    assert.equal(rows[0]?.status, 'lost');
    assert.match(rows[0]?.error ?? '', /no worker runs its job/);
    // The next attempt of that job closes a lost one too (here: none left running).
    const again = await beginAttempt(runId, jobId, 'preflight');
    const next = await t.store.beginAttempt({
      runId,
      jobId,
      step: 'preflight',
      chunk: null,
      attempt: 2,
      worker: 'w:2',
    });
    const { rows: all } = await t.dbs.api.query<{ id: number; status: string }>(
      'SELECT id, status FROM freshet.attempts WHERE run_id = $1 ORDER BY id',
      [runId],
    );
    assert.deepEqual(all, [
      { id: attemptId, status: 'lost' },
      { id: again, status: 'lost' },
      { id: next.attemptId, status: 'running' },
    ]);
    await t.store.setStatus(runId, 'cancelled');
  });
});
