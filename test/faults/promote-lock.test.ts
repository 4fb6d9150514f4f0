import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { jobIds, type RunRow } from '@freshet/core';
import { startWorker, type WorkerApp } from '@freshet/worker';
import pg from 'pg';
import { cancelRun, startRefresh } from '@freshet/control';
import { waitUntil } from '../helpers/backends.js';
import { createTestEnv, type TestEnv } from '../helpers/env.js';
import {
  accounting,
  exactnessProblems,
  faultDefinition,
  seedFaultTable,
  waitForRunStatus,
  writeFaultMedia,
  type Accounting,
} from '../helpers/faults.js';
import {
  holdTable,
  startProbes,
  type ProbeRecord,
  type Probes,
  type TableHold,
} from '../helpers/live-reader.js';

/** Probes answered while the reader holds the table and the promotion waits for it. */
const PROBES_WHILE_HELD = 25;

interface SeenReason {
  readonly reason: string;
  readonly readerHeld: boolean;
}

/**
 * A long reader holds the live table (ACCESS SHARE, transaction left open) while a refresh
 * reaches promotion. The table swap needs ACCESS EXCLUSIVE: it must wait its turn without making
 * the API wait behind it. An API-like load (a query of the live table every 150 ms, each with a
 * 1 s statement timeout) runs throughout; not one query may fail. The run says what it waits for
 * and who holds the lock, and completes exactly once the reader is gone.
 */
describe('promotion beside a long reader of the live table', { timeout: 180_000 }, () => {
  let t: TestEnv;
  let worker: WorkerApp;
  let admin: pg.Client;
  let probes: Probes | undefined;
  let reader: TableHold | undefined;
  let readerPid = -1;
  let first: Accounting;
  let second: Accounting;
  let run: RunRow;
  let runId: string;
  let probed: ProbeRecord;
  let probedWhileHeld: ProbeRecord;
  const reasons: SeenReason[] = [];

  before(async () => {
    t = await createTestEnv({
      FRESHET_MEDIA_FILE: writeFaultMedia({ clip: faultDefinition('clip') }),
    });
    admin = new pg.Client({
      connectionString: t.config.API_DATABASE_URL,
      application_name: 'freshet-test-admin',
    });
    await admin.connect();
    worker = await startWorker(t.config, t.logger);
    const deps = { config: t.config, api: t.dbs.api, media: t.media, queues: t.queues };
    const url = t.config.API_DATABASE_URL;

    await seedFaultTable(t.dbs.catalog, 'clip', 400);
    const firstId = await startRefresh(deps, { media: 'clip' });
    const firstRun = await waitForRunStatus(t.store, firstId);
    assert.equal(firstRun.status, 'succeeded', firstRun.error ?? '');
    first = await accounting(t, firstId);
    // The second build is larger, so a probe's answer tells which build it read.
    await seedFaultTable(t.dbs.catalog, 'clip', 150, { from: 1000 });

    probes = startProbes(url, 'clip');
    reader = await holdTable(url, 'clip');
    readerPid = reader.pid;
    let readerHeld = true;
    runId = await startRefresh(deps, { media: 'clip' });
    // Records every waiting reason the run shows (a measurement; the test waits on events below).
    let watching = true;
    const watch = (async () => {
      while (watching) {
        const { waiting_reason: reason } = await t.store.getRun(runId);
        if (reason !== null && reasons.at(-1)?.reason !== reason) {
          reasons.push({ reason, readerHeld });
        }
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    })();
    try {
      // The run shows that promotion waits for the lock (or, as before the fix, its swap sits in
      // the lock queue of the live table, where every query of the table lines up behind it).
      await waitUntil(
        async () => {
          if (reasons.some((r) => r.reason.includes('lock'))) return true;
          const { rows } = await admin.query(
            `SELECT 1 FROM pg_stat_activity WHERE application_name = $1 AND wait_event_type = 'Lock'`,
            [`freshet ${jobIds.stage(runId, 'promote')}`],
          );
          return rows.length > 0;
        },
        'the promotion waits for its lock on the live table',
        90_000,
      );
      const atWait = probes.record();
      await waitUntil(
        () => probes!.record().done >= atWait.done + PROBES_WHILE_HELD,
        `${PROBES_WHILE_HELD} more probes were made while the reader holds the table`,
      );
      const now = probes.record();
      probedWhileHeld = {
        done: now.done - atWait.done,
        answers: now.answers.slice(atWait.answers.length),
        failures: now.failures.slice(atWait.failures.length),
        slowestMs: now.slowestMs,
      };
      readerHeld = false;
      await reader.release();
      reader = undefined;
      run = await waitForRunStatus(t.store, runId);
      second = await accounting(t, runId);
      // A few probes after the swap, so the load is seen reading the new build.
      const atEnd = probes.record().done;
      await waitUntil(() => probes!.record().done >= atEnd + 5, '5 probes after the promotion');
    } finally {
      watching = false;
      await watch;
      probed = await probes.stop();
      probes = undefined;
    }
  });

  after(async () => {
    await probes?.stop();
    await reader?.release().catch(() => undefined);
    await admin?.end();
    await worker?.close();
    await t?.close();
  });

  it('the run said it waited for the lock on the live table, naming the reader', (ctx) => {
    const whileHeld = reasons.filter((r) => r.readerHeld).map((r) => r.reason);
    ctx.diagnostic(`waiting reason: ${whileHeld.at(-1) ?? 'none'}`);
    assert.ok(
      whileHeld.some(
        (r) => r.includes('promotion waits for a lock on clip') && r.includes(`pid ${readerPid}`),
      ),
      JSON.stringify(reasons),
    );
  });

  it('the refresh succeeded once the reader was gone, exactly, and the live table is the new build', async () => {
    assert.equal(run.status, 'succeeded', run.error ?? '');
    assert.equal(run.waiting_reason, null);
    assert.deepEqual(exactnessProblems(first), []);
    assert.deepEqual(exactnessProblems(second), []);
    assert.notEqual(second.tableRows, first.tableRows);
    const { rows } = await admin.query<{ c: string | null }>(
      `SELECT obj_description('clip'::regclass, 'pg_class') AS c`,
    );
    assert.equal(rows[0]?.c, `freshet run ${runId}`);
  });

  it('not one query of the live table failed, before, during or after the wait', (ctx) => {
    ctx.diagnostic(
      `probes: ${probed.done} (${probedWhileHeld.done} while held), failed ${probed.failures.length}, slowest ${Math.round(probed.slowestMs)} ms`,
    );
    assert.deepEqual(probed.failures, []);
    assert.ok(probed.done > 20, `${probed.done} probes`);
    assert.deepEqual(probedWhileHeld.failures, []);
    // While the reader held the table, the live table was the first build; afterwards the new one.
    assert.deepEqual([...new Set(probedWhileHeld.answers)], [first.tableRows]);
    assert.equal(probed.answers.at(-1), second.tableRows);
  });

  it('the promotion retried with backoff and recorded how long it waited', async (ctx) => {
    const { rows } = await admin.query<{ fields: { tries: number; waitedMs: number } }>(
      `SELECT fields FROM freshet.logs WHERE run_id = $1 AND msg = 'promotion took its locks'`,
      [runId],
    );
    assert.equal(rows.length, 1, JSON.stringify(rows));
    const { tries, waitedMs } = rows[0]!.fields;
    ctx.diagnostic(`promotion: ${tries} tries, waited ${waitedMs} ms`);
    assert.ok(tries >= 2, `${tries} tries`);
  });

  it('no backend of the run is left behind', async () => {
    const { rows } = await admin.query(
      'SELECT pid, application_name FROM pg_stat_activity WHERE application_name LIKE $1',
      [`freshet ${runId}.%`],
    );
    assert.deepEqual(rows, []);
  });

  describe('cancelled while it waits for the lock', () => {
    let cancelledId: string;
    let hold: TableHold | undefined;
    let attempt: { status: string; error: string | null } | undefined;

    before(async () => {
      hold = await holdTable(t.config.API_DATABASE_URL, 'clip');
      cancelledId = await startRefresh(
        { config: t.config, api: t.dbs.api, media: t.media, queues: t.queues },
        { media: 'clip' },
      );
      await waitUntil(
        async () =>
          (await t.store.getRun(cancelledId)).waiting_reason?.includes(
            'promotion waits for a lock on clip',
          ) === true,
        'the run waits for the lock',
        90_000,
      );
      await cancelRun({ api: t.dbs.api, queues: t.queues }, cancelledId, 'operator');
      // The aborted attempt is recorded once its retry loop has stopped and its backends are gone.
      await waitUntil(async () => {
        const { rows } = await admin.query<{ status: string; error: string | null }>(
          `SELECT status, error FROM freshet.attempts WHERE run_id = $1 AND step = 'promote'`,
          [cancelledId],
        );
        attempt = rows[0];
        return rows.length === 1 && attempt?.status !== 'running';
      }, 'the promote attempt ended');
    });

    after(async () => {
      await hold?.release();
    });

    it('the promotion stopped on the cancel, the run no longer says it waits, the live table is untouched', async () => {
      assert.equal(attempt?.status, 'failed');
      assert.match(attempt?.error ?? '', /RunCancelledError/);
      const now = await t.store.getRun(cancelledId);
      assert.equal(now.status, 'cancelled');
      assert.equal(now.waiting_reason, null);
      const { rows } = await admin.query<{ c: string | null }>(
        `SELECT obj_description('clip'::regclass, 'pg_class') AS c`,
      );
      assert.equal(rows[0]?.c, `freshet run ${runId}`);
    });

    it('the reader was left alone and no backend of the run is left behind', async () => {
      const reader = await admin.query<{ state: string }>(
        'SELECT state FROM pg_stat_activity WHERE pid = $1',
        [hold?.pid],
      );
      assert.deepEqual(reader.rows, [{ state: 'idle in transaction' }]);
      const { rows } = await admin.query(
        'SELECT pid, application_name FROM pg_stat_activity WHERE application_name LIKE $1',
        [`freshet ${cancelledId}.%`],
      );
      assert.deepEqual(rows, []);
    });
  });
});
