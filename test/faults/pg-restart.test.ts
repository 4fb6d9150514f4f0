import assert from 'node:assert/strict';
import { once } from 'node:events';
import { setTimeout as delay } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import { getMedia, jobTag, refreshNames } from '@freshet/core';
import { waitUntil } from '../helpers/backends.js';
import { createTestEnv, type TestEnv } from '../helpers/env.js';
import {
  accounting,
  chunkDisagreements,
  createHoldView,
  endStatuses,
  exactnessProblems,
  faultDefinition,
  holdSource,
  leakedSecrets,
  openCheckpoints,
  seedFaultTable,
  startWorkerPool,
  waitForRunStatus,
  writeFaultMedia,
  type Accounting,
  type Checkpoints,
  type WorkerPool,
} from '../helpers/faults.js';
import { startPgServer, type PgServer } from '../helpers/pg-server.js';
import { spawnCli, type CliProcess } from '../helpers/processes.js';

/**
 * How long PostgreSQL stays down: the fault itself, not a wait for something. Longer than the
 * job lock (3 s), so the locks of the jobs that were running expire while it is away.
 */
const DOWN_MS = 5000;

/** How long a run may take to end once the server is back (it takes 5-15 s here). */
const RUN_END_MS = 120_000;

/** How long a `--wait` process may take to exit once its run has ended (it polls every 0.5 s). */
const EXIT_AFTER_END_MS = 30_000;

/**
 * A password in the database URLs. The test's server uses trust auth, so it is never asked for;
 * it is there to show the reconnect notices never print it.
 */
const SECRET = 'pw-never-printed-7d1';

const settings = {
  // Short job locks and stall checks: a job whose worker lost its database is taken over soon.
  WORKER_LOCK_DURATION_MS: '3000',
  WORKER_STALLED_INTERVAL_MS: '1000',
  WORKER_MAX_STALLED_COUNT: '3',
  // A restart fails whatever was running; leave room for a few failed attempts per step.
  CHUNK_ATTEMPTS: '5',
  // Runs whose jobs are gone are found within seconds, not the default 20 s (when supported).
  RECONCILE_INTERVAL_MS: '2000',
  LOG_LEVEL: 'info',
};

interface Exit {
  readonly code: number | null;
  readonly signal: string | null;
  /** Set when the process had not exited within `boundMs` (it was then killed). */
  readonly timedOut: boolean;
  readonly boundMs: number;
  readonly output: string;
}

/** Waits at most `ms` for a CLI process to exit; kills it (SIGKILL) past that. Never throws. */
async function exitWithin(cli: CliProcess, ms: number): Promise<Exit> {
  const { child } = cli;
  const result = (timedOut: boolean): Exit => ({
    code: child.exitCode,
    signal: child.signalCode,
    timedOut,
    boundMs: ms,
    output: cli.output(),
  });
  if (child.exitCode !== null || child.signalCode !== null) return result(false);
  const timer = AbortSignal.timeout(ms);
  try {
    await once(child, 'exit', { signal: timer });
    return result(false);
  } catch {
    const out = result(true);
    await cli.stop('SIGKILL');
    return out;
  }
}

/** The run id a `freshet refresh` process printed (`run <id> started`). */
async function startedRunId(cli: CliProcess): Promise<string> {
  await cli.waitFor(/run \S+ started/, 60_000);
  const m = /run (\S+) started/.exec(cli.output());
  if (!m?.[1]) throw new Error(`no run id in:\n${cli.output()}`);
  return m[1];
}

/** Attempts and stages of a run still recorded as running. */
async function leftRunning(t: TestEnv, runId: string) {
  const attempts = await t.dbs.api.query(
    `SELECT id, job_id, step, chunk, attempt, worker, status, started_at, finished_at, error
       FROM freshet.attempts WHERE run_id = $1 AND status = 'running' ORDER BY id`,
    [runId],
  );
  const stages = await t.dbs.api.query(
    `SELECT stage, status, started_at, finished_at, error
       FROM freshet.stages WHERE run_id = $1 AND status = 'running' ORDER BY stage`,
    [runId],
  );
  return { attempts: attempts.rows, stages: stages.rows };
}

/** What a failed assertion should show: the run row and every attempt of the run. */
async function runRows(t: TestEnv, runId: string): Promise<string> {
  const run = await t.dbs.api.query(
    'SELECT id, status, stage, error, started_at, finished_at, updated_at FROM freshet.runs WHERE id = $1',
    [runId],
  );
  const attempts = await t.dbs.api.query(
    `SELECT id, job_id, attempt, worker, status, started_at, finished_at, error
       FROM freshet.attempts WHERE run_id = $1 ORDER BY id`,
    [runId],
  );
  const stages = await t.dbs.api.query(
    'SELECT stage, status, error FROM freshet.stages WHERE run_id = $1 ORDER BY started_at',
    [runId],
  );
  return JSON.stringify({ run: run.rows, stages: stages.rows, attempts: attempts.rows }, null, 1);
}

/** How a followed run ended, and how the `--wait` process following it did. */
interface Followed {
  readonly runId: string;
  readonly status: string;
  readonly stage: string | null;
  readonly error: string | null;
  readonly exit: Exit;
  /** The run, stage and attempt rows when it was looked at, for failure messages. */
  readonly rows: string;
  /** Set when the run succeeded. */
  readonly acc?: Accounting;
}

/**
 * Waits (bounded) for the run to end, then for the process following it to exit (bounded; killed
 * past that). Never throws on a run that does not end: the tests assert on what it recorded.
 */
async function follow(t: TestEnv, runId: string, cli: CliProcess): Promise<Followed> {
  try {
    await waitForRunStatus(t.store, runId, endStatuses, RUN_END_MS);
  } catch {
    // Still active: recorded below; the tests say so with the rows.
  }
  const exit = await exitWithin(cli, EXIT_AFTER_END_MS);
  const run = await t.store.getRun(runId);
  return {
    runId,
    status: run.status,
    stage: run.stage,
    error: run.error,
    exit,
    rows: await runRows(t, runId),
    ...(run.status === 'succeeded' ? { acc: await accounting(t, runId) } : {}),
  };
}

/** A new `freshet refresh <media> --wait`, followed to its end. */
async function refreshAgain(t: TestEnv, media: string): Promise<Followed> {
  const cli = spawnCli(['refresh', media, '--wait'], t.env);
  return follow(t, await startedRunId(cli), cli);
}

function tail(text: string, chars = 3000): string {
  return text.length > chars ? `...${text.slice(-chars)}` : text;
}

/** The reconnect notices of the --wait process, and no password anywhere in its output. */
function assertReconnectNotices(exit: Exit): void {
  assert.match(
    exit.output,
    /PostgreSQL at postgres:\/\/postgres:\*\*\*@127\.0\.0\.1:\d+\/\S+ is unreachable \(.+\); reconnecting\.\.\./,
    tail(exit.output),
  );
  assert.match(exit.output, /PostgreSQL at \S+ is reachable again/, tail(exit.output));
  assert.deepEqual(leakedSecrets(exit.output, [SECRET]), []);
}

/** Asserts a --wait process ended on its own with the run's outcome and exit code. */
function assertWaitOutcome(f: Followed): void {
  const { exit, runId, status, error } = f;
  assert.equal(
    exit.timedOut,
    false,
    `freshet --wait did not exit within ${exit.boundMs} ms of the test seeing run ${runId} ${status} (killed); its output:\n${tail(exit.output)}`,
  );
  if (status === 'succeeded') {
    assert.equal(exit.code, 0, tail(exit.output));
    assert.match(exit.output, new RegExp(`run ${runId} succeeded`));
  } else {
    assert.equal(exit.code, 1, tail(exit.output));
    assert.match(exit.output, new RegExp(`run ${runId} ended ${status}`));
    if (error) assert.ok(exit.output.includes(error), tail(exit.output));
  }
}

async function withPg<T>(url: string, fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const c = new pg.Client({ connectionString: url, application_name: 'freshet-test-admin' });
  c.on('error', () => undefined);
  await c.connect();
  try {
    return await fn(c);
  } finally {
    await c.end().catch(() => undefined);
  }
}

/**
 * The test's own PostgreSQL server (holding the catalog and the API database) is stopped
 * (`fast`: every session terminated) in the middle of a chunk's COPY, kept down 5 s and started
 * again on the same port and data dir, while worker processes run the refresh and a
 * `freshet refresh --wait` process follows it. The waiting process must say it is reconnecting
 * and end with the run's outcome; the run must complete exactly and leave nothing "running".
 */
describe('PostgreSQL server restarted mid-copy', { timeout: 300_000 }, () => {
  let server: PgServer;
  let t: TestEnv;
  let pool: WorkerPool;
  let first: Followed;
  let second: Followed | undefined;

  before(async () => {
    server = await startPgServer();
    const admin = new URL(server.adminUrl);
    admin.password = SECRET;
    t = await createTestEnv(
      {
        ...settings,
        FRESHET_MEDIA_FILE: writeFaultMedia({ holdclip: faultDefinition('holdclip') }),
      },
      { adminUrl: admin.toString() },
    );
    await seedFaultTable(t.dbs.catalog, 'clip', 1000);
    await createHoldView(t.dbs.catalog, 'holdclip', 'clip');
    // Chunk 1's copy waits inside its COPY until the test lets it (or the server goes away).
    const hold = await holdSource(t.config.CATALOG_DATABASE_URL, 'c1.index');
    pool = startWorkerPool(t.env, 2);
    await pool.ready();

    const wait = spawnCli(['refresh', 'holdclip', '--wait'], t.env);
    const runId = await startedRunId(wait);
    await hold.reached();
    // The waiting process is in its loop (it drew the bar), not starting the run.
    await wait.waitFor(/\d+\/\d+ chunks/);

    await server.stop('fast');
    await hold.release();
    await delay(DOWN_MS);
    await server.start();

    first = await follow(t, runId, wait);
    // A second refresh of the same media is accepted (once the first is no longer active).
    if (['succeeded', 'failed', 'cancelled'].includes(first.status)) {
      second = await refreshAgain(t, 'holdclip');
    }
  });

  after(async () => {
    await pool?.close();
    await t?.close();
    await server?.close();
  });

  it('the --wait process said PostgreSQL was unreachable and it was reconnecting, then that it was back', () => {
    assertReconnectNotices(first.exit);
  });

  it('the run succeeded and the --wait process exited 0 saying so', () => {
    assert.equal(first.status, 'succeeded', first.rows);
    assertWaitOutcome(first);
  });

  it('the run completed exactly: documents == rows == expected, no chunk run twice differently', async () => {
    assert.ok(first.acc, `run ${first.runId} did not succeed: ${first.rows}`);
    assert.deepEqual(exactnessProblems(first.acc), []);
    assert.ok(first.acc.tableRows > 800, `${first.acc.tableRows} rows`);
    assert.deepEqual(await chunkDisagreements(t, first.runId), []);
  });

  it('no attempt and no stage of the run is left running', async () => {
    assert.deepEqual(await leftRunning(t, first.runId), { attempts: [], stages: [] }, first.rows);
  });

  it('a second refresh of the same media is accepted and succeeds exactly', () => {
    assert.ok(second, `no second refresh: run ${first.runId} is still ${first.status}`);
    assert.equal(second.status, 'succeeded', second.rows);
    assertWaitOutcome(second);
    assert.ok(second.acc);
    assert.deepEqual(exactnessProblems(second.acc), []);
  });
});

/**
 * Finalize's verification query waits on a lock (an ACCESS EXCLUSIVE lock on the run's temp
 * table, taken while a checkpoint holds finalize at its start) when the server is stopped, kept
 * down 5 s and started again. The run must not stay "running" at finalize: it completes (the
 * transient failure retried) or ends blocked with its reason (then `freshet retry --wait`
 * finishes it); the --wait process ends with that outcome; nothing is left "running".
 */
describe('PostgreSQL server restarted during finalize', { timeout: 300_000 }, () => {
  let server: PgServer;
  let t: TestEnv;
  let pool: WorkerPool;
  let cp: Checkpoints;
  let first: Followed;
  let retried: Followed | undefined;
  let second: Followed | undefined;
  let finalizeWaited = false;

  before(async () => {
    server = await startPgServer();
    const admin = new URL(server.adminUrl);
    admin.password = SECRET;
    t = await createTestEnv(
      { ...settings, FRESHET_MEDIA_FILE: writeFaultMedia({ clip: faultDefinition('clip') }) },
      { adminUrl: admin.toString() },
    );
    await seedFaultTable(t.dbs.catalog, 'clip', 600);
    const apiUrl = t.config.API_DATABASE_URL;
    cp = await openCheckpoints(apiUrl);
    const finalize = await cp.arm('freshet.attempts', 'INSERT', `NEW.step = 'finalize'`);
    pool = startWorkerPool(t.env, 2);
    await pool.ready();

    const wait = spawnCli(['refresh', 'clip', '--wait'], t.env);
    const runId = await startedRunId(wait);
    const names = refreshNames(
      getMedia(t.media, 'clip'),
      'production',
      runId,
      t.config.ELASTICSEARCH_INDEX_PREFIX,
    );
    await finalize.reached(120_000);
    // Finalize has not started its work yet: lock the temp table first, then let it go on.
    const lock = new pg.Client({ connectionString: apiUrl, application_name: 'freshet-test' });
    lock.on('error', () => undefined);
    await lock.connect();
    await lock.query('BEGIN');
    await lock.query(`LOCK TABLE "${names.tempTable}" IN ACCESS EXCLUSIVE MODE`);
    await finalize.release();
    await waitUntil(
      async () =>
        withPg(apiUrl, async (c) => {
          const { rowCount } = await c.query(
            `SELECT 1 FROM pg_stat_activity WHERE application_name = $1 AND wait_event_type = 'Lock'`,
            [jobTag(`${runId}.finalize`)],
          );
          return (rowCount ?? 0) > 0;
        }),
      "finalize's verification waits on the temp table's lock",
      60_000,
    );
    finalizeWaited = true;

    await server.stop('fast');
    await lock.end();
    await delay(DOWN_MS);
    await server.start();

    first = await follow(t, runId, wait);
    let status = first.status;
    if (status === 'blocked') {
      const retry = spawnCli(['retry', runId, '--wait'], t.env);
      // Once it printed this, the run is running again (retryRun marks it before retrying).
      await retry.waitFor(/retried \d+ job/);
      retried = await follow(t, runId, retry);
      status = retried.status;
    }
    if (['succeeded', 'failed', 'cancelled'].includes(status)) {
      second = await refreshAgain(t, 'clip');
    }
  });

  after(async () => {
    await pool?.close();
    await cp?.close();
    await t?.close();
    await server?.close();
  });

  it("restarted the server while finalize's verification waited on a lock", () => {
    assert.ok(finalizeWaited);
  });

  it('the run did not stay running at finalize: it succeeded, or is blocked with the reason', () => {
    assert.ok(
      first.status === 'succeeded' || (first.status === 'blocked' && !!first.error),
      `run ${first.runId} is ${first.status} at ${first.stage ?? '?'} (${first.error ?? 'no error'}):\n${first.rows}`,
    );
  });

  it('the --wait process said it was reconnecting and exited with the run outcome', () => {
    assertReconnectNotices(first.exit);
    assertWaitOutcome(first);
  });

  it('no attempt and no stage of the run is left running', async () => {
    assert.deepEqual(await leftRunning(t, first.runId), { attempts: [], stages: [] }, first.rows);
  });

  it('the run completed exactly (after `freshet retry --wait` if it was blocked)', () => {
    if (retried) {
      assert.equal(retried.status, 'succeeded', retried.rows);
      assertWaitOutcome(retried);
    }
    const done = retried ?? first;
    assert.ok(done.acc, `run ${done.runId} did not succeed: ${done.rows}`);
    assert.deepEqual(exactnessProblems(done.acc), []);
  });

  it('a second refresh of the same media is accepted and succeeds exactly', () => {
    assert.ok(second, `no second refresh: run ${first.runId} is still ${first.status}`);
    assert.equal(second.status, 'succeeded', second.rows);
    assertWaitOutcome(second);
    assert.ok(second.acc);
    assert.deepEqual(exactnessProblems(second.acc), []);
  });
});
