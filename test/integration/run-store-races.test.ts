import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { ConflictError, newRunId as nextRunId, type RunStatus } from '@freshet/core';
import { waitUntil } from '../helpers/backends.js';
import { createTestEnv, type TestEnv } from '../helpers/env.js';

/**
 * The snapshot trap in the run gate: one statement sees one snapshot, so a run paused or
 * cancelled by a transaction that commits while the gate waits for the row used to look queued,
 * and an attempt was recorded for it. Made 20 times for each of pause and cancel, on the real
 * PostgreSQL, with the gate's statement really waiting on the other transaction's row lock.
 */
/**
 * A run id no other run of this file has: ids are unique per second only by 16 random bits, and
 * this file creates dozens of runs a second (two of them once drew the same id).
 */
const usedRunIds = new Set<string>();
function newRunId(): string {
  let id = nextRunId();
  while (usedRunIds.has(id)) id = nextRunId();
  usedRunIds.add(id);
  return id;
}

describe('run gate under a concurrent pause or cancel', { timeout: 120_000 }, () => {
  let t: TestEnv;
  const rounds = 20;

  before(async () => {
    t = await createTestEnv();
  });

  after(async () => {
    await t.close();
  });

  /** Backends of this database waiting for a lock (behind `pid`, or queued behind a waiter). */
  async function lockWaiters(pid: number): Promise<number> {
    const { rows } = await t.dbs.api.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM pg_stat_activity
        WHERE datname = current_database() AND pid <> $1 AND cardinality(pg_blocking_pids(pid)) > 0`,
      [pid],
    );
    return rows[0]?.n ?? 0;
  }

  for (const next of ['paused', 'cancelled'] as const satisfies readonly RunStatus[]) {
    it(`a run ${next} while its job starts records no attempt and reports ${next}`, async () => {
      for (let i = 0; i < rounds; i++) {
        const runId = newRunId();
        await t.store.createRun({
          id: runId,
          prefix: t.queues.prefix,
          media: `${next}-${i}`,
          profile: 'production',
        });
        const other = await t.dbs.api.connect();
        try {
          await other.query('BEGIN');
          await other.query('UPDATE freshet.runs SET status = $2 WHERE id = $1', [runId, next]);
          const { rows } = await other.query<{ pid: number }>('SELECT pg_backend_pid() AS pid');
          const pid = (rows[0] as { pid: number }).pid;
          const begun = t.store.beginAttempt({
            runId,
            jobId: `${runId}.preflight`,
            step: 'preflight',
            chunk: null,
            attempt: 1,
            worker: 'w',
          });
          const gated = t.store.gate(runId);
          await waitUntil(async () => (await lockWaiters(pid)) === 2, 'both wait for the row');
          await other.query('COMMIT');
          assert.deepEqual(await begun, { status: next, waitingReason: null, attemptId: null });
          assert.deepEqual(await gated, { status: next, waitingReason: null });
        } finally {
          other.release();
        }
        const { rows: attempts } = await t.dbs.api.query(
          'SELECT 1 FROM freshet.attempts WHERE run_id = $1',
          [runId],
        );
        assert.equal(attempts.length, 0, `round ${i}: no attempt for a ${next} run`);
        assert.equal((await t.store.getRun(runId)).status, next);
        await t.store.setStatus(runId, 'cancelled');
      }
    });
  }

  it('a queued run whose job starts becomes running, with its attempt', async () => {
    const runId = newRunId();
    await t.store.createRun({ id: runId, prefix: t.queues.prefix, media: 'q', profile: 'staging' });
    const begun = await t.store.beginAttempt({
      runId,
      jobId: `${runId}.preflight`,
      step: 'preflight',
      chunk: null,
      attempt: 1,
      worker: 'w',
    });
    assert.equal(begun.status, 'running');
    assert.ok(begun.attemptId !== null);
    assert.equal((await t.store.getRun(runId)).status, 'running');
    await t.store.setStatus(runId, 'cancelled');
  });

  it('a second run with the same id is refused as such, not as the media lock', async () => {
    const runId = newRunId();
    const run = { id: runId, prefix: t.queues.prefix, media: 'dup', profile: 'staging' as const };
    await t.store.createRun(run);
    await t.store.setStatus(runId, 'cancelled');
    await assert.rejects(
      () => t.store.createRun(run),
      (err: unknown) =>
        err instanceof ConflictError && err.message === `a run with id ${runId} already exists`,
    );
  });
});
