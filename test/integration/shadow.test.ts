import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { QueueEvents } from 'bullmq';
import { createWorkerRedis, STAGE_QUEUE, type ComparisonReport } from '@freshet/core';
import { startWorker, type WorkerApp } from '@freshet/worker';
import { approveRun, discardRun, startRefresh } from '@freshet/control';
import { seedClips, writeClipMedia } from '../helpers/clip-media.js';
import { createTestEnv, type TestEnv } from '../helpers/env.js';

/**
 * Shadow builds: the new table and index are built beside the live ones and compared before
 * promotion. Within thresholds promotion goes on; beyond them the run is held, the live aliases
 * don't move, and an operator approves (promote) or discards (remove the shadow table and index).
 */
describe('shadow build and gate', { timeout: 240_000 }, () => {
  let t: TestEnv;
  let worker: WorkerApp;
  let events: QueueEvents;
  let eventsRedis: ReturnType<typeof createWorkerRedis>;
  let firstRun: string;
  const alias = () => `${t.config.ELASTICSEARCH_INDEX_PREFIX}clip`;
  const deps = () => ({
    config: t.config,
    api: t.dbs.api,
    media: t.media,
    queues: t.queues,
    es: t.es,
  });
  const holders = async () => Object.keys(await t.es.indices.getAlias({ name: alias() }));
  /** Resolves when the run's compare stage job has completed. */
  const compared = (runId: string) =>
    new Promise<void>((resolve) =>
      events.on('completed', ({ jobId }) => jobId === `${runId}.compare` && resolve()),
    );

  before(async () => {
    t = await createTestEnv({ FRESHET_MEDIA_FILE: writeClipMedia() });
    await seedClips(t.dbs.catalog, 1000);
    eventsRedis = createWorkerRedis(t.config);
    events = new QueueEvents(STAGE_QUEUE, {
      connection: eventsRedis,
      prefix: t.config.FRESHET_QUEUE_PREFIX,
    });
    events.setMaxListeners(50);
    await events.waitUntilReady();
    worker = await startWorker(t.config, t.logger);
    firstRun = await startRefresh(deps(), { media: 'clip' });
    await t.waitForRunEnd(firstRun);
  });

  after(async () => {
    await worker?.close();
    await events?.close();
    eventsRedis?.disconnect();
    await t?.close();
  });

  it('promotes on its own when the new build is within thresholds', async () => {
    const runId = await startRefresh(deps(), { media: 'clip', shadow: true });
    await t.waitForRunEnd(runId);
    const run = await t.store.getRun(runId);
    assert.equal(run.status, 'succeeded', run.error ?? '');
    const report = (run.counts as { comparison: ComparisonReport }).comparison;
    assert.equal(report.withinThresholds, true, report.reasons.join('; '));
    assert.equal(report.totals.live, 1000);
    // The filtered view (a filtered alias over the live index, and the shadow index's documents
    // with sensitive: false) is compared too; no clip title has a sensitive term.
    assert.deepEqual(report.filtered, { live: 1000, shadow: 1000, change: 0 });
    assert.ok(report.sampled > 0, 'documents were sampled and diffed');
    assert.equal(report.diffs.length, 0);
    assert.deepEqual(await holders(), [`${alias()}-${runId}`]);
  });

  it('holds a build that differs beyond the thresholds; the live aliases do not move; approve promotes', async () => {
    const live = await holders();
    await t.dbs.catalog.query(`DELETE FROM clip WHERE id % 3 = 0`);
    await t.dbs.catalog.query(`UPDATE clip SET title = NULL WHERE id % 2 = 0`);
    const runId = await startRefresh(deps(), { media: 'clip', shadow: true });
    await compared(runId);
    const held = await t.store.getRun(runId);
    assert.equal(held.status, 'awaiting-approval');
    const report = (held.counts as { comparison: ComparisonReport }).comparison;
    assert.equal(report.withinThresholds, false);
    assert.ok(
      report.reasons.some((r) => /total rows change -33\.\d%/.test(r)),
      report.reasons.join('; '),
    );
    assert.ok(
      report.reasons.some((r) => /clip-filtered documents change -33\.\d% \(1000 -> 667\)/.test(r)),
      report.reasons.join('; '),
    );
    assert.ok(report.shiftedFields.some((f) => f.field === 'title'));
    assert.ok(
      report.diffs.some((d) => 'title' in d.fields),
      'sampled documents diffed field by field',
    );
    assert.deepEqual(await holders(), live, 'the live alias did not move');
    assert.equal((await t.es.count({ index: alias() })).count, 1000);

    await approveRun(deps(), runId, 'operator');
    await t.waitForRunEnd(runId);
    assert.equal((await t.store.getRun(runId)).status, 'succeeded');
    assert.deepEqual(await holders(), [`${alias()}-${runId}`]);
    const rows = await t.dbs.api.query<{ n: number }>('SELECT count(*)::int AS n FROM clip');
    assert.equal((await t.es.count({ index: alias() })).count, rows.rows[0]?.n);
  });

  it('discard removes the shadow table and index and leaves the live ones', async () => {
    const live = await holders();
    const liveCount = (await t.es.count({ index: alias() })).count;
    await t.dbs.catalog.query(`DELETE FROM clip WHERE id % 5 = 0`);
    const runId = await startRefresh(deps(), { media: 'clip', shadow: true });
    await compared(runId);
    assert.equal((await t.store.getRun(runId)).status, 'awaiting-approval');
    await discardRun(deps(), runId, 'operator');
    const run = await t.store.getRun(runId);
    assert.equal(run.status, 'cancelled');
    assert.match(run.error ?? '', /discarded by operator/);
    const temp = await t.dbs.api.query<{ t: string | null }>(
      `SELECT to_regclass('temp_import_clip')::text AS t`,
    );
    assert.equal(temp.rows[0]?.t, null);
    const left = await t.es.cat.indices({ index: `${alias()}-${runId}*`, format: 'json' });
    assert.deepEqual(left, [], 'no index of the discarded build is left');
    assert.deepEqual(await holders(), live);
    assert.equal((await t.es.count({ index: alias() })).count, liveCount);
    const audit = await t.dbs.api.query<{ action: string }>(
      'SELECT action FROM freshet.audit WHERE run_id = $1 ORDER BY id DESC LIMIT 1',
      [runId],
    );
    assert.equal(audit.rows[0]?.action, 'discard');
  });
});
