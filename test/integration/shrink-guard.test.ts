import assert from 'node:assert/strict';
import { userInfo } from 'node:os';
import { once } from 'node:events';
import { after, before, describe, it } from 'node:test';
import { shrinkOf, type AlertPayload } from '@freshet/core';
import { startWorker, type WorkerApp } from '@freshet/worker';
import { parseStartBody } from '../../apps/dashboard/src/api.js';
import { formatPlan, planRefresh, RunView, startRefresh } from '@freshet/control';
import { waitUntil } from '../helpers/backends.js';
import { seedClips, writeClipMedia } from '../helpers/clip-media.js';
import { createTestEnv, type TestEnv } from '../helpers/env.js';
import { endStatuses, waitForRunStatus } from '../helpers/faults.js';
import { spawnCli } from '../helpers/processes.js';
import { startReceiver, type Receiver } from '../helpers/webhook-receiver.js';

const ROWS = 2600;
/** Half the rows (1300) come from `flickr`, the rest from 13 small providers of 100 rows. */
const FLICKR = 1300;
/** flickr's rows once 30% of them are gone upstream. */
const FLICKR_AFTER = 910;
const CHUNK = 500;

/**
 * No silent shrink: a production promotion compares the new build with the live one and holds a
 * build that lost more than the limits (10% of all rows, or half of a source of at least 1000
 * rows) in `awaiting-approval`, with the numbers in the run, the run view and the alert. Approve
 * promotes it, discard leaves the live build serving, `--allow-shrink` approves ahead of time.
 * Real Redis, PostgreSQL and Elasticsearch, the test-only media type `clip`, an in-process worker
 * and a real webhook receiver.
 */
describe('the shrink guard', { timeout: 400_000 }, () => {
  let t: TestEnv;
  let worker: WorkerApp;
  let receiver: Receiver;
  let liveRun: string;
  const deps = () => ({
    config: t.config,
    api: t.dbs.api,
    media: t.media,
    queues: t.queues,
    es: t.es,
  });
  const prefix = () => t.config.ELASTICSEARCH_INDEX_PREFIX;
  const alias = () => `${prefix()}clip`;
  const holders = async () => Object.keys(await t.es.indices.getAlias({ name: alias() }));
  const tableRows = async (table = 'clip') =>
    (await t.dbs.api.query<{ n: number }>(`SELECT count(*)::int AS n FROM ${table}`)).rows[0]?.n;
  const flickrRows = async () =>
    (
      await t.dbs.api.query<{ n: number }>(
        `SELECT count(*)::int AS n FROM clip WHERE provider = 'flickr'`,
      )
    ).rows[0]?.n;
  /** A digest of the table's rows, to compare the live table with the catalog. */
  const digest = async (pool: typeof t.dbs.api, table: string) =>
    (
      await pool.query<{ h: string }>(
        `SELECT md5(string_agg(id::text || ':' || provider, ',' ORDER BY id)) AS h FROM ${table}`,
      )
    ).rows[0]?.h;
  const shrinkOfRun = async (runId: string) => shrinkOf((await t.store.getRun(runId)).counts);
  const refresh = (extra: { allowShrink?: boolean; profile?: string } = {}) =>
    startRefresh(deps(), { media: 'clip', chunkSizeRows: CHUNK, ...extra });
  /** Runs the real `freshet` CLI on this test's world to its end. */
  const cli = async (args: string[]) => {
    const child = spawnCli(args, t.env);
    const [code] = (await once(child.child, 'exit')) as [number | null];
    return { code, output: child.output() };
  };
  const held = (runId: string) =>
    waitForRunStatus(t.store, runId, ['awaiting-approval', ...endStatuses]);
  /** Removes `share` tenths of flickr's rows: those whose rank within flickr ends in `digits`. */
  const dropFlickr = (digits: number[]) =>
    t.dbs.catalog.query(
      `DELETE FROM clip WHERE provider = 'flickr' AND ((id / 7) / 2) % 10 = ANY($1::int[])`,
      [digits],
    );

  before(async () => {
    receiver = await startReceiver();
    t = await createTestEnv({
      FRESHET_MEDIA_FILE: writeClipMedia(),
      ALERT_WEBHOOK_URL: `${receiver.url}/hook`,
    });
    await seedClips(t.dbs.catalog, ROWS);
    await t.dbs.catalog.query(`UPDATE clip SET provider = 'flickr' WHERE (id / 7) % 2 = 0`);
    worker = await startWorker(t.config, t.logger);
    liveRun = await refresh();
    await t.waitForRunEnd(liveRun);
  });

  after(async () => {
    await worker?.close();
    await t?.close();
    await receiver?.close();
  });

  it('never holds a first promotion', async () => {
    const run = await t.store.getRun(liveRun);
    assert.equal(run.status, 'succeeded', run.error ?? '');
    const shrink = await shrinkOfRun(liveRun);
    assert.equal(shrink?.outcome, 'first-promotion');
    assert.deepEqual(shrink?.totals, { live: 0, shadow: ROWS, change: ROWS });
    assert.equal(await tableRows(), ROWS);
  });

  it('the dry run and the API request say whether the guard applies', async () => {
    const planDeps = { config: t.config, catalog: t.dbs.catalog, es: t.es, media: t.media };
    const plan = await planRefresh(planDeps, { media: 'clip', chunkSizeRows: CHUNK });
    assert.equal(plan.shrinkGuard.applies, true);
    assert.match(
      formatPlan(plan),
      /shrink: {2}guard applies: held for approval if it loses more than 10% of all rows \(PROMOTE_MAX_DROP\) or 50% of a source with at least 1000 rows/,
    );
    const ahead = await planRefresh(planDeps, { media: 'clip', allowShrink: true });
    assert.equal(ahead.shrinkGuard.applies, false);
    assert.match(ahead.shrinkGuard.reason, /approved ahead \(--allow-shrink\)/);
    const staging = await planRefresh(planDeps, { media: 'clip', profile: 'staging' });
    assert.equal(staging.shrinkGuard.reason, 'does not apply: staging is exempt');

    assert.deepEqual(parseStartBody({ media: 'clip', allowShrink: true }), {
      media: 'clip',
      allowShrink: true,
    });
    assert.throws(
      () => parseStartBody({ media: 'clip', allowShrink: 'yes' }),
      /allowShrink must be true or false, got "yes"/,
    );
  });

  it('holds an upstream that lost 30% of one provider, with the numbers; freshet approve promotes it', async () => {
    const live = await holders();
    await dropFlickr([0, 1, 2]);
    const runId = await refresh();
    const run = await held(runId);
    assert.equal(run.status, 'awaiting-approval', run.error ?? '');
    const after = ROWS - (FLICKR - FLICKR_AFTER);
    assert.equal(
      run.error,
      `held for approval: total rows drop 15.0% (${ROWS} -> ${after}), beyond PROMOTE_MAX_DROP 10%; most from source flickr -30% (${FLICKR} -> ${FLICKR_AFTER})`,
    );
    const shrink = await shrinkOfRun(runId);
    assert.equal(shrink?.outcome, 'held');
    assert.deepEqual(shrink?.totals, { live: ROWS, shadow: after, change: -0.15 });
    assert.deepEqual(shrink?.sources.flickr, { live: FLICKR, shadow: FLICKR_AFTER, change: -0.3 });
    assert.deepEqual(shrink?.sources.p1, { live: 100, shadow: 100, change: 0 });
    assert.deepEqual(shrink?.limits, { maxDrop: 0.1, maxSourceDrop: 0.5, sourceMinRows: 1000 });

    // The run view shows it; the finalize stage's result holds it too.
    const details = await new RunView(t.dbs.api, t.config.FRESHET_QUEUE_PREFIX).details(runId);
    assert.deepEqual(details.shrink, shrink);
    const stages = await t.dbs.api.query<{ stage: string; status: string; result: unknown }>(
      `SELECT stage, status, result FROM freshet.stages WHERE run_id = $1`,
      [runId],
    );
    const finalize = stages.rows.find((s) => s.stage === 'finalize');
    assert.deepEqual((finalize?.result as { shrink?: unknown } | undefined)?.shrink, shrink);
    assert.ok(!stages.rows.some((s) => s.stage === 'promote' && s.status === 'done'));

    // The alert carries the numbers, as sent and as recorded.
    const alert = await receiver.delivered(runId, 'awaiting-approval');
    assert.equal(alert.body.freshet.status, 'awaiting-approval');
    assert.deepEqual(alert.body.freshet.approval?.totals, shrink?.totals);
    assert.deepEqual(alert.body.freshet.approval?.sources.flickr, shrink?.sources.flickr);
    assert.deepEqual(alert.body.freshet.approval?.reasons, shrink?.drops);
    assert.match(alert.body.text, /awaits approval/);
    assert.match(alert.body.text, /total rows drop 15\.0% \(2600 -&gt; 2210\)/);
    assert.match(alert.body.text, /freshet approve \S+ \/ freshet discard/);
    let recorded: AlertPayload | undefined;
    await waitUntil(async () => {
      const { rows } = await t.dbs.api.query<{ payload: AlertPayload }>(
        `SELECT payload FROM freshet.alerts
          WHERE run_id = $1 AND kind = 'awaiting-approval' AND sent_at IS NOT NULL`,
        [runId],
      );
      recorded = rows[0]?.payload;
      return recorded !== undefined;
    }, 'the awaiting-approval alert is recorded as sent');
    assert.deepEqual(recorded?.freshet.approval, alert.body.freshet.approval);
    assert.equal(receiver.count(runId, 'awaiting-approval'), 1);

    // Held: nothing moved.
    assert.deepEqual(await holders(), live);
    assert.equal(await tableRows(), ROWS);
    assert.equal((await t.es.count({ index: alias() })).count, ROWS);

    const approved = await cli(['approve', runId]);
    assert.equal(approved.code, 0, approved.output);
    assert.match(approved.output, new RegExp(`run ${runId} approved: now running`));
    await t.waitForRunEnd(runId);
    const done = await t.store.getRun(runId);
    assert.equal(done.status, 'succeeded', done.error ?? '');
    assert.deepEqual(await holders(), [`${alias()}-${runId}`]);
    assert.equal(await tableRows(), after);
    assert.equal(await flickrRows(), FLICKR_AFTER);
    assert.equal(await digest(t.dbs.api, 'clip'), await digest(t.dbs.catalog, 'clip'));
    assert.equal((await t.es.count({ index: alias() })).count, after);
    assert.equal(
      (await t.es.count({ index: alias(), query: { term: { provider: 'flickr' } } })).count,
      FLICKR_AFTER,
    );
    liveRun = runId;
  });

  it('freshet discard leaves the live build serving: table and aliases unchanged, the new build gone', async () => {
    const live = await holders();
    const liveRows = await tableRows();
    const liveDigest = await digest(t.dbs.api, 'clip');
    await dropFlickr([3, 4, 5]);
    // `refresh --wait` stops at the hold: exit 1, saying why and what to do.
    const waited = await cli(['refresh', 'clip', '--chunk-size', String(CHUNK), '--wait']);
    assert.equal(waited.code, 1, waited.output);
    const runId = /run (\S+) started/.exec(waited.output)?.[1] ?? '';
    assert.match(
      waited.output,
      new RegExp(
        `run ${runId} is awaiting approval \\(held for approval: total rows drop 17\\.6% .*\\); the live build keeps serving: promote it with freshet approve ${runId} --wait, or drop it with freshet discard ${runId}`,
      ),
    );
    const run = await t.store.getRun(runId);
    assert.equal(run.status, 'awaiting-approval', run.error ?? '');
    assert.match(run.error ?? '', /total rows drop 17\.6% \(2210 -> 1820\)/);
    assert.equal(
      (await t.es.count({ index: `${alias()}-${runId}` })).count,
      1820,
      'the held build is complete beside the live one',
    );

    const discard = await cli(['discard', runId]);
    assert.equal(discard.code, 0, discard.output);
    assert.match(discard.output, new RegExp(`run ${runId} discarded: now cancelled`));
    const discarded = await t.store.getRun(runId);
    assert.equal(discarded.status, 'cancelled');
    assert.match(discarded.error ?? '', /discarded by cli:/);
    const temp = await t.dbs.api.query<{ t: string | null }>(
      `SELECT to_regclass('temp_import_clip')::text AS t`,
    );
    assert.equal(temp.rows[0]?.t, null, 'the temp table is dropped');
    const left = await t.es.cat.indices({ index: `${alias()}-${runId}*`, format: 'json' });
    assert.deepEqual(left, [], 'no index of the discarded build is left');
    assert.deepEqual(await holders(), live);
    assert.equal(await tableRows(), liveRows);
    assert.equal(await digest(t.dbs.api, 'clip'), liveDigest);
    assert.equal((await t.es.count({ index: alias() })).count, liveRows);
  });

  it('--allow-shrink on the CLI promotes at once; the comparison is recorded and audited', async () => {
    const { code, output } = await cli([
      'refresh',
      'clip',
      '--allow-shrink',
      '--chunk-size',
      String(CHUNK),
      '--wait',
    ]);
    assert.equal(code, 0, output);
    const runId = /run (\S+) started/.exec(output)?.[1] ?? '';
    assert.match(output, new RegExp(`run ${runId} succeeded`));
    const shrink = await shrinkOfRun(runId);
    assert.equal(shrink?.outcome, 'approved-ahead');
    assert.deepEqual(shrink?.totals, { live: 2210, shadow: 1820, change: (1820 - 2210) / 2210 });
    assert.equal(shrink?.drops.length, 1, shrink?.drops.join('; '));
    assert.deepEqual(await holders(), [`${alias()}-${runId}`]);
    assert.equal(await tableRows(), 1820);
    assert.equal((await t.es.count({ index: alias() })).count, 1820);
    const audit = await t.dbs.api.query<{ actor: string; action: string; detail: unknown }>(
      'SELECT actor, action, detail FROM freshet.audit WHERE run_id = $1 ORDER BY id',
      [runId],
    );
    assert.deepEqual(
      audit.rows.map((a) => [a.actor, a.action]),
      [
        [`cli:${userInfo().username}`, 'start'],
        [`cli:${userInfo().username}`, 'approve-shrink-ahead'],
      ],
    );
    assert.deepEqual(audit.rows[0]?.detail, {
      media: 'clip',
      profile: 'production',
      allowShrink: true,
    });
    assert.deepEqual((audit.rows[1]?.detail as { drops: string[] }).drops, shrink?.drops);
    const logs = await t.dbs.api.query<{ msg: string }>(
      `SELECT msg FROM freshet.logs WHERE run_id = $1 AND msg LIKE 'shrink%'`,
      [runId],
    );
    assert.deepEqual(
      logs.rows.map((l) => l.msg),
      ['shrink approved ahead of time: promoting'],
    );
    assert.equal(receiver.count(runId, 'awaiting-approval'), 0);
  });

  it('does not hold a drop within the limits', async () => {
    // 5% of all rows, flickr (now 520 rows, under PROMOTE_SOURCE_MIN_ROWS) included.
    await t.dbs.catalog.query(
      `DELETE FROM clip WHERE id IN (SELECT id FROM clip ORDER BY id LIMIT 91)`,
    );
    const runId = await refresh();
    await t.waitForRunEnd(runId);
    const run = await t.store.getRun(runId);
    assert.equal(run.status, 'succeeded', run.error ?? '');
    const shrink = await shrinkOfRun(runId);
    assert.equal(shrink?.outcome, 'within-limits');
    assert.deepEqual(shrink?.drops, []);
    assert.deepEqual(shrink?.totals, { live: 1820, shadow: 1729, change: -0.05 });
    assert.equal(await tableRows(), 1729);
  });

  it('never holds a staging build', async () => {
    const first = await refresh({ profile: 'staging' });
    await t.waitForRunEnd(first);
    assert.equal((await t.store.getRun(first)).status, 'succeeded');
    await t.dbs.catalog.query(`DELETE FROM clip WHERE (id / 7) % 2 = 1`);
    const upstream = (
      await t.dbs.catalog.query<{ n: number }>('SELECT count(*)::int AS n FROM clip')
    ).rows[0]?.n;
    const runId = await refresh({ profile: 'staging' });
    await t.waitForRunEnd(runId);
    const run = await t.store.getRun(runId);
    assert.equal(run.status, 'succeeded', run.error ?? '');
    const shrink = await shrinkOfRun(runId);
    assert.equal(shrink?.outcome, 'staging-exempt');
    assert.ok((shrink?.drops.length ?? 0) > 0, 'the drop is beyond the production limits');
    assert.deepEqual(shrink?.totals.shadow, upstream);
    assert.equal(await tableRows('staging_clip'), upstream);
  });
});
