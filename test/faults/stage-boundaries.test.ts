import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { retryRun, startRefresh } from '@freshet/control';
import { createTestEnv, type TestEnv } from '../helpers/env.js';
import {
  accounting,
  chunkDisagreements,
  exactnessProblems,
  filteredViewChecksum,
  indexChecksum,
  openCheckpoints,
  seedFaultTable,
  tableChecksum,
  waitForRunStatus,
  writeFaultMedia,
  faultDefinition,
  type Accounting,
  type Checkpoints,
} from '../helpers/faults.js';
import { spawnCli, type CliProcess } from '../helpers/processes.js';

interface Build {
  runId: string;
  acc: Accounting;
  table: string;
  docs: string;
  filtered: string;
}

interface KillPoint {
  readonly name: string;
  readonly event: 'INSERT' | 'UPDATE';
  /** Condition over NEW (a freshet.attempts row). */
  readonly when: string;
  /**
   * Armed together with the point before it: another job of the same worker can reach it first
   * (a chunk starts as soon as the fan-out has added it, before the fan-out's own record).
   */
  readonly armEarly?: boolean;
}

/** Every boundary of a refresh, in the order one worker meets them. */
function killPoints(runId: string): KillPoint[] {
  const started = (job: string, name: string): KillPoint => ({
    name: `${name} started, nothing done`,
    event: 'INSERT',
    when: `NEW.job_id = '${runId}.${job}'`,
  });
  const done = (job: string, name: string, extra = ''): KillPoint => ({
    name: `${name} done, not acknowledged`,
    event: 'UPDATE',
    when: `NEW.job_id = '${runId}.${job}' AND NEW.status = 'done'${extra}`,
  });
  return [
    started('preflight', 'preflight'),
    done('preflight', 'preflight'),
    started('index', 'fan-out'),
    done('index', 'fan-out adding the chunk chains', ` AND NEW.result ? 'waitingChildren'`),
    { ...started('c0.index', 'chunk 0'), armEarly: true },
    done('c0.index', 'chunk 0'),
    done('index', 'fan-out after every chunk', ` AND NOT NEW.result ? 'waitingChildren'`),
    started('finalize', 'finalize'),
    done('finalize', 'finalize'),
    started('promote', 'promote'),
    done('promote', 'promote'),
    started('report', 'report'),
    done('report', 'report'),
  ];
}

/**
 * A refresh whose only worker is killed (SIGKILL) at every boundary of the run in turn: each stage
 * and chunk step just after it started (nothing done yet), and just after its work committed but
 * before BullMQ heard of it. A new worker takes over each time (BullMQ stall detection). The run
 * must end exactly as an undisturbed run of the same data: same table, same documents, same
 * counts, aliases on the new build. A job whose worker dies twice more than allowed blocks the
 * run (never "running" forever), and a retry finishes it.
 */
describe('a run killed at every stage boundary in turn', { timeout: 300_000 }, () => {
  let t: TestEnv;
  let cp: Checkpoints;
  let worker: CliProcess | undefined;
  let undisturbed: Build;
  let killed: Build;
  let reached: string[] = [];
  let stalledOut: { status: string; error: string | null };
  let retried: Build;
  const deps = () => ({ config: t.config, api: t.dbs.api, media: t.media, queues: t.queues });

  async function build(runId: string): Promise<Build> {
    const acc = await accounting(t, runId);
    return {
      runId,
      acc,
      table: await tableChecksum(t.dbs.api, 'clip', 'id'),
      docs: await indexChecksum(t.es, acc.names.index),
      filtered: await filteredViewChecksum(t.es, acc.names),
    };
  }

  /** Runs `points` in order: at each, the worker is killed and a new one started. */
  async function killAt(points: KillPoint[], env: NodeJS.ProcessEnv): Promise<string[]> {
    const seen: string[] = [];
    const first = points[0];
    if (!first) return seen;
    const arm = (p: KillPoint) => cp.arm('freshet.attempts', p.event, p.when);
    /** The point after `i`, armed now if it must be (see armEarly). */
    const early = async (i: number) => {
      const p = points[i + 1];
      return p?.armEarly ? arm(p) : undefined;
    };
    let armed = await arm(first);
    let next = await early(0);
    worker = spawnCli(['worker'], env);
    for (const [i, point] of points.entries()) {
      // The worker that reaches it may be one killed before (its backend still waits in the
      // checkpoint): killing the current one and ending that backend is the same kill.
      const pid = await armed.reached(60_000);
      await worker.stop('SIGKILL');
      await armed.abort(pid);
      seen.push(point.name);
      const following = points[i + 1];
      if (following) {
        armed = next ?? (await arm(following));
        next = await early(i + 1);
      }
      worker = spawnCli(['worker'], env);
    }
    return seen;
  }

  before(async () => {
    t = await createTestEnv({
      FRESHET_MEDIA_FILE: writeFaultMedia({ clip: faultDefinition('clip') }),
      WORKER_CONCURRENCY: '1',
      STAGE_CONCURRENCY: '1',
      WORKER_LOCK_DURATION_MS: '1500',
      WORKER_STALLED_INTERVAL_MS: '500',
      LOG_LEVEL: 'info',
    });
    // 3 chunks; chunk 0 holds rows the clean rejects (no license, URLs that are not URLs).
    await seedFaultTable(t.dbs.catalog, 'clip', 300);
    cp = await openCheckpoints(t.config.API_DATABASE_URL);

    worker = spawnCli(['worker'], t.env);
    const a = await startRefresh(deps(), { media: 'clip' });
    assert.equal((await waitForRunStatus(t.store, a)).status, 'succeeded');
    undisturbed = await build(a);
    await worker.stop();

    // Each job is killed up to twice here: allow it (the default of 1 is tested below).
    const b = await startRefresh(deps(), { media: 'clip' });
    reached = await killAt(killPoints(b), { ...t.env, WORKER_MAX_STALLED_COUNT: '5' });
    const end = await waitForRunStatus(t.store, b);
    assert.equal(end.status, 'succeeded', end.error ?? '');
    killed = await build(b);
    await worker?.stop();

    // Default WORKER_MAX_STALLED_COUNT (1): chunk 0's pass loses its worker twice.
    const c = await startRefresh(deps(), { media: 'clip' });
    // One checkpoint at a time: both kills are of the same job, one after the other.
    const copy: KillPoint = {
      ...(killPoints(c).find((p) => p.name.startsWith('chunk 0 started')) as KillPoint),
      armEarly: false,
    };
    await killAt([copy, copy], t.env);
    try {
      const blocked = await waitForRunStatus(
        t.store,
        c,
        ['blocked', 'failed', 'succeeded'],
        30_000,
      );
      stalledOut = { status: blocked.status, error: blocked.error };
    } catch (err) {
      const run = await t.store.getRun(c);
      stalledOut = { status: run.status, error: `${run.error ?? ''} (${(err as Error).message})` };
    }
    await retryRun({ api: t.dbs.api, queues: t.queues }, c);
    const end2 = await waitForRunStatus(t.store, c);
    assert.equal(end2.status, 'succeeded', end2.error ?? '');
    retried = await build(c);
  });

  after(async () => {
    await worker?.stop('SIGKILL');
    await cp?.close();
    await t?.close();
  });

  it('the undisturbed run is exact', () => {
    assert.deepEqual(exactnessProblems(undisturbed.acc), []);
    assert.ok(Object.keys(undisturbed.acc.rejected).length >= 2, 'the data has rejected rows');
  });

  it('reaches every boundary and kills the worker there', () => {
    assert.deepEqual(
      reached,
      killPoints(killed.runId).map((p) => p.name),
    );
  });

  it('ends exact, with the same counts (skipped and rejected by reason) as the undisturbed run', () => {
    assert.deepEqual(exactnessProblems(killed.acc), []);
    assert.deepEqual(killed.acc.rejected, undisturbed.acc.rejected);
    assert.deepEqual(killed.acc.skipped, undisturbed.acc.skipped);
    assert.equal(killed.acc.tableRows, undisturbed.acc.tableRows);
  });

  it('ends with the same table and the same documents, both aliases on the new build', () => {
    assert.equal(killed.table, undisturbed.table, 'table checksum');
    assert.equal(killed.docs, undisturbed.docs, 'documents checksum');
    assert.equal(killed.filtered, undisturbed.filtered, 'filtered documents checksum');
    assert.deepEqual(killed.acc.aliasHolders, [killed.acc.names.index]);
    assert.deepEqual(killed.acc.filteredAliasHolders, [killed.acc.names.aliases[1].index]);
  });

  it('no chunk step ran twice to a different result', async () => {
    assert.deepEqual(await chunkDisagreements(t, killed.runId), []);
  });

  it('a job whose worker died twice blocks the run (not left "running"); retry finishes it exactly', async () => {
    assert.equal(stalledOut.status, 'blocked', stalledOut.error ?? '');
    assert.match(stalledOut.error ?? '', /chunk 0 index.*stalled/);
    assert.deepEqual(exactnessProblems(retried.acc), []);
    assert.equal(retried.table, undisturbed.table);
    assert.equal(retried.docs, undisturbed.docs);
    assert.deepEqual(retried.acc.rejected, undisturbed.acc.rejected);
    assert.deepEqual(await chunkDisagreements(t, retried.runId), []);
  });
});
