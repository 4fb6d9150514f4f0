// The run commands of the `freshet` CLI (runs, show, pause, resume, cancel, approve, discard) as
// an operator in a terminal runs them, on the real Redis, PostgreSQL and Elasticsearch: each
// action's success, its refusal when it does not apply (exit 3 with the reason), an unknown run
// (exit 4), and the operating-system user as the actor in the audit log.
import assert from 'node:assert/strict';
import { userInfo } from 'node:os';
import { after, before, describe, it } from 'node:test';
import { startWorker, type WorkerApp } from '@freshet/worker';
import type { RunDetails, RunSummary } from '@freshet/control';
import { seedClips, writeClipMedia } from '../helpers/clip-media.js';
import { createTestEnv, type TestEnv } from '../helpers/env.js';
import { runCli, type CliResult } from '../helpers/processes.js';

const ROWS = 600;
const actor = `cli:${userInfo().username}`;

describe('the run commands of the CLI', { timeout: 400_000 }, () => {
  let t: TestEnv;
  let worker: WorkerApp | undefined;
  const cli = (...args: string[]) => runCli(args, t.env);

  /** The run id a `freshet refresh` printed. */
  const startedRun = (r: CliResult) => {
    assert.equal(r.code, 0, r.stderr);
    const id = /run (\S+) started/.exec(r.stdout)?.[1];
    assert.ok(id, r.stdout);
    return id;
  };

  /** Asserts a refusal: exit 3 and the reason on stderr; the run's status is unchanged. */
  const refused = async (r: CliResult, runId: string, status: string, reason: RegExp) => {
    assert.equal(r.code, 3, `${r.stdout}${r.stderr}`);
    assert.match(r.stderr, reason);
    assert.equal(r.stdout, '');
    assert.equal((await t.store.getRun(runId)).status, status);
  };

  const auditOf = async (runId: string) =>
    (
      await t.dbs.api.query<{ actor: string; action: string }>(
        'SELECT actor, action FROM freshet.audit WHERE run_id = $1 ORDER BY id',
        [runId],
      )
    ).rows.map((a) => `${a.actor}:${a.action}`);

  before(async () => {
    t = await createTestEnv({
      FRESHET_MEDIA_FILE: writeClipMedia(),
      LOG_LEVEL: 'silent',
      // Any change holds a shadow build for approval.
      SHADOW_MAX_COUNT_CHANGE: '0.01',
    });
    await seedClips(t.dbs.catalog, ROWS);
  });

  after(async () => {
    await worker?.close();
    await t?.close();
  });

  it('pauses, resumes and cancels a queued run; refuses what does not apply', async () => {
    // No worker yet: the run stays queued while the commands act on it.
    const runId = startedRun(await cli('refresh', 'clip', '--chunk-size', '100'));

    const paused = await cli('pause', runId);
    assert.equal(paused.code, 0, paused.stderr);
    assert.equal(paused.stdout, `run ${runId} paused: now paused\n`);
    await refused(
      await cli('pause', runId),
      runId,
      'paused',
      /only a queued, running or blocked run can be paused/,
    );

    const listed = await cli('runs', '--status', 'paused', '--json');
    assert.equal(listed.code, 0, listed.stderr);
    assert.deepEqual(
      (JSON.parse(listed.stdout) as RunSummary[]).map((r) => [r.id, r.status]),
      [[runId, 'paused']],
    );
    const none = await cli('runs', '--status', 'succeeded');
    assert.equal(none.stdout, 'no runs\n');

    const resumed = await cli('resume', runId);
    assert.equal(resumed.code, 0, resumed.stderr);
    assert.equal(resumed.stdout, `run ${runId} resumed: now queued\n`);
    await refused(await cli('resume', runId), runId, 'queued', /is queued, not paused/);
    await refused(await cli('approve', runId), runId, 'queued', /is queued, not awaiting approval/);
    await refused(await cli('discard', runId), runId, 'queued', /is queued, not awaiting approval/);

    const cancelled = await cli('cancel', runId);
    assert.equal(cancelled.code, 0, cancelled.stderr);
    assert.equal(cancelled.stdout, `run ${runId} cancelled: now cancelled\n`);
    await refused(await cli('cancel', runId), runId, 'cancelled', /is already cancelled/);

    assert.deepEqual(await auditOf(runId), [
      `${actor}:start`,
      `${actor}:pause`,
      `${actor}:resume`,
      `${actor}:cancel`,
    ]);
    const text = await cli('runs', '--media', 'clip');
    assert.match(text.stdout, new RegExp(`^${runId}\\s+clip\\s+production\\s+cancelled\\s`, 'm'));
  });

  it('refuses an unknown run (exit 4) and a bad status (exit 2)', async () => {
    for (const command of ['show', 'pause', 'approve']) {
      const r = await cli(command, '20000101-000000-abcd');
      assert.equal(r.code, 4, `${command}: ${r.stderr}`);
      assert.match(r.stderr, /no run with id "20000101-000000-abcd"/);
    }
    const bad = await cli('runs', '--status', 'stuck');
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /--status must be one of queued, running, .*cancelled/);
  });

  it('shows a finished run as text and as JSON', { timeout: 180_000 }, async () => {
    worker = await startWorker(t.config, t.logger);
    const runId = startedRun(await cli('refresh', 'clip', '--chunk-size', '100'));
    await t.waitForRunEnd(runId);

    const json = await cli('show', runId, '--json');
    assert.equal(json.code, 0, json.stderr);
    const d = JSON.parse(json.stdout) as RunDetails;
    assert.equal(d.run.id, runId);
    assert.equal(d.run.status, 'succeeded', d.run.error ?? '');
    assert.equal(d.chunks.total, 6);
    assert.equal(d.chunks.indexed, 6);

    const text = await cli('show', runId);
    assert.equal(text.code, 0, text.stderr);
    assert.match(text.stdout, new RegExp(`^run ${runId}: clip \\(production\\) succeeded`));
    for (const stage of d.stages.filter((s) => s.stage !== 'compare')) {
      assert.match(text.stdout, new RegExp(`^  ${stage.stage}\\s+done\\s`, 'm'));
    }
    assert.match(
      text.stdout,
      /^chunks: 6 planned, 6 done, 0 running, 0 failed; rows read 600, indexed 600$/m,
    );
    // Every source's rows before (none: the first build) and after.
    for (const s of d.sources) {
      assert.match(text.stdout, new RegExp(`^  ${s.source}\\s+0 -> ${s.after} `, 'm'));
    }
    assert.equal(d.sources.length, 13);
    assert.match(text.stdout, /^attempts: \d+, 0 failed or lost$/m);
  });

  it('approves and discards builds held for approval', { timeout: 240_000 }, async () => {
    await t.dbs.catalog.query('DELETE FROM clip WHERE id % 5 = 0');
    const held = startedRun(await cli('refresh', 'clip', '--shadow'));
    await t.waitForStage(held, 'compare');
    assert.equal((await t.store.getRun(held)).status, 'awaiting-approval');
    const approved = await cli('approve', held);
    assert.equal(approved.code, 0, approved.stderr);
    assert.equal(approved.stdout, `run ${held} approved: now running\n`);
    await t.waitForRunEnd(held);
    assert.equal((await t.store.getRun(held)).status, 'succeeded');
    await refused(
      await cli('approve', held),
      held,
      'succeeded',
      /is succeeded, not awaiting approval/,
    );

    await t.dbs.catalog.query('DELETE FROM clip WHERE id % 3 = 0');
    const second = startedRun(await cli('refresh', 'clip', '--shadow'));
    await t.waitForStage(second, 'compare');
    const discarded = await cli('discard', second);
    assert.equal(discarded.code, 0, discarded.stderr);
    assert.equal(discarded.stdout, `run ${second} discarded: now cancelled\n`);
    assert.equal((await t.store.getRun(second)).status, 'cancelled');
    assert.equal(
      (
        await t.dbs.api.query<{ t: string | null }>(
          "SELECT to_regclass('temp_import_clip')::text AS t",
        )
      ).rows[0]?.t,
      null,
      'the held build is dropped',
    );
    assert.deepEqual(await auditOf(held), [`${actor}:start`, `${actor}:approve`]);
    assert.deepEqual(await auditOf(second), [`${actor}:start`, `${actor}:discard`]);
  });
});
