import assert from 'node:assert/strict';
import { randomInt } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { getMedia, seedSynthetic } from '@freshet/core';
import { startRefresh } from '@freshet/control';
import { waitUntil } from '../helpers/backends.js';
import { createTestEnv, type TestEnv } from '../helpers/env.js';
import {
  accounting,
  chunkDisagreements,
  exactnessProblems,
  startWorkerPool,
  waitForRunStatus,
  type Accounting,
  type WorkerPool,
} from '../helpers/faults.js';

/** A reproducible random sequence: FRESHET_FAULT_SEED replays a failing run. */
const seed = Number(process.env.FRESHET_FAULT_SEED ?? randomInt(1, 2 ** 31));
function rng(s: number) {
  let x = s;
  return (n: number) => {
    x = (x * 1103515245 + 12345) % 2 ** 31;
    return x % n;
  };
}

interface Kill {
  step: string;
  jobId: string;
  pid: number;
  attemptId: number;
}

/**
 * Three worker processes share a refresh of ~40 chunks; at three random moments the worker running
 * a chunk step (one kill each during a copy, a clean and an index) is killed with SIGKILL, and a
 * supervisor-like loop starts a replacement. BullMQ's stall detection hands the killed job to
 * another worker; the run must complete with exact counts.
 */
describe('kill -9 of workers in the middle of chunks', { timeout: 240_000 }, () => {
  let t: TestEnv;
  let pool: WorkerPool;
  let runId: string;
  let acc: Accounting;
  const kills: Kill[] = [];
  const next = rng(seed);

  const doneSteps = async () =>
    Number(
      (
        await t.dbs.api.query<{ n: number }>(
          `SELECT count(*)::int AS n FROM freshet.attempts WHERE run_id = $1 AND chunk IS NOT NULL AND status = 'done'`,
          [runId],
        )
      ).rows[0]?.n ?? 0,
    );

  before(async () => {
    t = await createTestEnv({
      CHUNK_SIZE_ROWS: '50',
      WORKER_LOCK_DURATION_MS: '2000',
      WORKER_STALLED_INTERVAL_MS: '1000',
      // A job whose replacement worker is killed too is run a third time.
      WORKER_MAX_STALLED_COUNT: '3',
      INDEX_BULK_FLUSH_BYTES: '20000',
      LOG_LEVEL: 'info',
    });
    await seedSynthetic(t.dbs.catalog, getMedia(t.media, 'image'), { rows: 4000, seed: 11 });
    pool = startWorkerPool(t.env, 3, { respawn: true });
    await pool.ready();
    runId = await startRefresh(
      { config: t.config, api: t.dbs.api, media: t.media, queues: t.queues },
      { media: 'image' },
    );

    // Three kills, each of a worker in the middle of a chunk's pass (reading, writing or indexing).
    const steps = ['index', 'index', 'index'];
    for (const step of steps) {
      // A random moment: after a random number of further chunk steps are done...
      const target = (await doneSteps()) + 3 + next(10);
      await waitUntil(async () => (await doneSteps()) >= target, `${target} chunk steps done`);
      // ...kill the worker that is running a `step` of some chunk right now.
      let victim: { id: number; job_id: string; worker: string } | undefined;
      await waitUntil(
        async () => {
          const alive = new Set(pool.alive().map((w) => w.child.pid));
          const { rows } = await t.dbs.api.query<{ id: number; job_id: string; worker: string }>(
            `SELECT id, job_id, worker FROM freshet.attempts
              WHERE run_id = $1 AND step = $2 AND chunk IS NOT NULL AND status = 'running'
              ORDER BY started_at DESC`,
            [runId, step],
          );
          victim = rows.find((r) => alive.has(Number(r.worker.split(':').pop())));
          return victim !== undefined;
        },
        `a ${step} is running`,
        60_000,
      );
      const v = victim as { id: number; job_id: string; worker: string };
      const pid = Number(v.worker.split(':').pop());
      await pool.kill(pid);
      kills.push({ step, jobId: v.job_id, pid, attemptId: v.id });
    }
    const run = await waitForRunStatus(t.store, runId, undefined, 180_000);
    assert.equal(run.status, 'succeeded', `${run.error ?? ''} (FRESHET_FAULT_SEED=${seed})`);
    acc = await accounting(t, runId);
  });

  after(async () => {
    await pool?.close();
    await t?.close();
  });

  it('killed three workers, each in the middle of a chunk pass', async () => {
    assert.deepEqual(
      kills.map((k) => k.step),
      ['index', 'index', 'index'],
    );
    assert.ok(pool.all.length >= 6, 'each killed worker was replaced');
    const { rows } = await t.dbs.api.query<{ id: number; status: string }>(
      'SELECT id, status FROM freshet.attempts WHERE id = ANY($1)',
      [kills.map((k) => k.attemptId)],
    );
    // An attempt killed mid-step never records its end itself (one may finish in the instant
    // before): the job's next attempt (or the reconciler) closes it as lost; none stays running.
    assert.ok(
      rows.filter((r) => r.status === 'lost').length >= 2,
      `killed attempts: ${JSON.stringify(rows)} (FRESHET_FAULT_SEED=${seed})`,
    );
    assert.deepEqual(
      rows.filter((r) => r.status === 'running'),
      [],
    );
  });

  it('each killed job was taken over and completed by another worker', async () => {
    const { rows: victims } = await t.dbs.api.query<{ id: number; status: string }>(
      'SELECT id, status FROM freshet.attempts WHERE id = ANY($1)',
      [kills.map((k) => k.attemptId)],
    );
    let takenOver = 0;
    for (const k of kills) {
      // An attempt that finished in the instant before its worker was killed left nothing to take over.
      if (victims.find((v) => v.id === k.attemptId)?.status === 'done') continue;
      takenOver++;
      const { rows } = await t.dbs.api.query<{ worker: string }>(
        `SELECT worker FROM freshet.attempts WHERE run_id = $1 AND job_id = $2 AND status = 'done'`,
        [runId, k.jobId],
      );
      assert.ok(rows.length >= 1, `${k.jobId} completed`);
      assert.ok(
        rows.some((r) => !r.worker.endsWith(`:${k.pid}`)),
        `${k.jobId} was completed by another worker than ${k.pid}`,
      );
    }
    assert.ok(
      takenOver >= 2,
      `${takenOver} of the killed jobs were taken over (FRESHET_FAULT_SEED=${seed})`,
    );
  });

  it('completes with exact counts: table rows == documents == upstream - skipped - rejected', () => {
    assert.deepEqual(exactnessProblems(acc), [], `FRESHET_FAULT_SEED=${seed}`);
    assert.ok(acc.tableRows > 2500, JSON.stringify({ ...acc, names: undefined }));
  });

  it('no chunk lost, none run twice to a different result', async () => {
    assert.deepEqual(await chunkDisagreements(t, runId), []);
    const run = await t.store.getRun(runId);
    const chunks = run.chunk_count ?? 0;
    assert.ok(chunks >= 70 && chunks <= 90, `${chunks} chunks`);
  });
});
