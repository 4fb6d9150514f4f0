// A shadow build driven through the dashboard's REST API with an in-process worker, on the real
// Redis, PostgreSQL and Elasticsearch, with the test-only media type `clip`: a first refresh
// (its rejected and skipped rows per reason in the run view), then a catalog changed beyond the
// thresholds, a shadow refresh held in awaiting-approval with its comparison in the run view,
// the viewer refused, approve promoting it; then another held build discarded.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { QueueEvents } from 'bullmq';
import { createWorkerRedis, jobIds, STAGE_QUEUE } from '@freshet/core';
import { startWorker, type WorkerApp } from '@freshet/worker';
import type { RunDetails } from '@freshet/control';
import { seedClips, writeClipMedia } from '../helpers/clip-media.js';
import { createDashboardWorld, type DashboardWorld } from '../helpers/dashboard.js';

const ROWS = 1000;
const STEP_MS = 120_000;

/** The JSON of `GET /api/runs/:id` (dates as strings). */
type Details = Omit<RunDetails, 'run'> & {
  run: { id: string; status: string; error: string | null; active: boolean };
};

describe('shadow builds through the dashboard API', { timeout: 400_000 }, () => {
  let w: DashboardWorld;
  let worker: WorkerApp;
  let events: QueueEvents;
  let eventsRedis: ReturnType<typeof createWorkerRedis>;
  /** Stage jobs completed since the start, and who waits for which. */
  const completed = new Set<string>();
  const waiting = new Map<string, () => void>();
  let heldRun: string;

  /** Resolves once the stage job `jobId` has completed (it may already have). */
  const stageCompleted = (jobId: string) =>
    completed.has(jobId)
      ? Promise.resolve()
      : new Promise<void>((resolve) => waiting.set(jobId, resolve));

  const details = async (id: string, as: 'viewer' | 'operator' = 'viewer') => {
    const res = await w.request(`/api/runs/${id}`, { as });
    assert.equal(res.status, 200);
    return (await res.json()) as Details;
  };

  /** Starts a refresh through the API as the operator; returns its run id. */
  const start = async (body: Record<string, unknown>) => {
    const res = await w.request('/api/runs', { as: 'operator', method: 'POST', json: body });
    assert.equal(res.status, 202, await res.clone().text());
    return ((await res.json()) as { runId: string }).runId;
  };

  const aliasHolders = async () =>
    Object.keys(
      await w.t.es.indices.getAlias({ name: `${w.t.config.ELASTICSEARCH_INDEX_PREFIX}clip` }),
    );

  before(async () => {
    w = await createDashboardWorld({ FRESHET_MEDIA_FILE: writeClipMedia(), LOG_LEVEL: 'warn' });
    await seedClips(w.t.dbs.catalog, ROWS);
    // Rows the clean step must reject: no license, and a URL that is not one.
    await w.t.dbs.catalog.query(
      `INSERT INTO clip (id, title, provider, license, url, score)
       SELECT 100000 + i, 'bad ' || i, 'p1', CASE WHEN i <= 4 THEN '' ELSE 'by' END,
              CASE WHEN i <= 4 THEN 'example.org/bad/' || i ELSE '' END, '1'
         FROM generate_series(1, 7) AS i`,
    );
    eventsRedis = createWorkerRedis(w.t.config);
    events = new QueueEvents(STAGE_QUEUE, {
      connection: eventsRedis,
      prefix: w.t.config.FRESHET_QUEUE_PREFIX,
    });
    events.on('completed', ({ jobId }) => {
      completed.add(jobId);
      waiting.get(jobId)?.();
      waiting.delete(jobId);
    });
    await events.waitUntilReady();
    worker = await startWorker(w.t.config, w.t.logger);
  });

  after(async () => {
    await worker?.close();
    await events?.close();
    eventsRedis?.disconnect();
    await w?.close();
  });

  it(
    'runs a first refresh; the run view has rejected and skipped rows per reason',
    { timeout: STEP_MS },
    async () => {
      const first = await start({ media: 'clip' });
      await w.t.waitForRunEnd(first);
      const d = await details(first);
      assert.equal(d.run.status, 'succeeded', d.run.error ?? '');
      assert.equal(d.comparison, null, 'not a shadow build');
      assert.deepEqual(
        d.rejected.map((r) => [r.reason, r.count]),
        [
          ['missing-license', 4],
          ['invalid-url', 3],
        ],
      );
      assert.ok(d.rejected.every((r) => r.sample.length > 0));
      // Clip has no removed flag or deleted-identifiers rows: every reason is there, at 0.
      assert.deepEqual(d.skipped.map((r) => [r.reason, r.count]).sort(), [
        ['deleted', 0],
        ['removed', 0],
      ]);
      const { rows } = await w.t.dbs.api.query<{ n: number }>(
        'SELECT count(*)::int AS n FROM clip',
      );
      assert.equal(rows[0]?.n, ROWS);
    },
  );

  it(
    'holds a shadow build that differs beyond the thresholds, with its comparison in the run view',
    { timeout: STEP_MS },
    async () => {
      const live = await aliasHolders();
      await w.t.dbs.catalog.query('DELETE FROM clip WHERE id % 3 = 0');
      await w.t.dbs.catalog.query('UPDATE clip SET title = NULL WHERE id % 2 = 0');
      heldRun = await start({ media: 'clip', shadow: true });
      await stageCompleted(jobIds.stage(heldRun, 'compare'));

      const d = await details(heldRun);
      assert.equal(d.run.status, 'awaiting-approval');
      assert.equal(d.run.active, true);
      const c = d.comparison;
      assert.ok(c, 'the comparison is in the run view');
      assert.equal(c.withinThresholds, false);
      assert.ok(
        c.reasons.some((r) => /total rows change -33\.\d%/.test(r)),
        c.reasons.join('; '),
      );
      assert.equal(c.totals.live, ROWS);
      assert.ok(c.totals.shadow < ROWS * 0.7, JSON.stringify(c.totals));
      assert.ok(Object.keys(c.sources).length >= 13, 'every source, live vs shadow');
      for (const s of Object.values(c.sources)) {
        assert.ok(s.shadow < s.live, JSON.stringify(s));
        assert.ok(s.change < 0);
      }
      assert.ok(c.sampled > 0);
      assert.ok(
        c.diffs.some((doc) => 'title' in doc.fields && doc.fields.title?.shadow == null),
        'sampled documents diffed field by field',
      );
      assert.ok(c.shiftedFields.some((f) => f.field === 'title' && f.shadowNullRate > 0.4));

      const listed = (await (await w.request('/api/runs', { as: 'viewer' })).json()) as {
        runs: { id: string; status: string }[];
      };
      assert.equal(listed.runs.find((r) => r.id === heldRun)?.status, 'awaiting-approval');
      assert.deepEqual(await aliasHolders(), live, 'the live alias did not move');
    },
  );

  it('refuses approve and discard to the viewer and without credentials', async () => {
    for (const action of ['approve', 'discard']) {
      const viewer = await w.request(`/api/runs/${heldRun}/${action}`, {
        as: 'viewer',
        method: 'POST',
      });
      assert.equal(viewer.status, 403, action);
      const nobody = await w.request(`/api/runs/${heldRun}/${action}`, { method: 'POST' });
      assert.equal(nobody.status, 401, action);
    }
    assert.equal((await w.t.store.getRun(heldRun)).status, 'awaiting-approval');
  });

  it('approves the held build as the operator: it is promoted', { timeout: STEP_MS }, async () => {
    const res = await w.request(`/api/runs/${heldRun}/approve`, {
      as: 'operator',
      method: 'POST',
    });
    assert.equal(res.status, 200, await res.clone().text());
    assert.deepEqual(await res.json(), { runId: heldRun, status: 'running' });
    await w.t.waitForRunEnd(heldRun);
    const d = await details(heldRun);
    assert.equal(d.run.status, 'succeeded', d.run.error ?? '');
    assert.ok(d.comparison, 'the comparison stays on the run');
    assert.deepEqual(
      d.audit.map((a) => `${a.actor}:${a.action}`),
      ['operator:approve', 'operator:start'],
    );
    const prefix = w.t.config.ELASTICSEARCH_INDEX_PREFIX;
    assert.deepEqual(await aliasHolders(), [`${prefix}clip-${heldRun}`]);
    const { rows } = await w.t.dbs.api.query<{ n: number }>('SELECT count(*)::int AS n FROM clip');
    assert.equal((await w.t.es.count({ index: `${prefix}clip` })).count, rows[0]?.n);
    const again = await w.request(`/api/runs/${heldRun}/approve`, {
      as: 'operator',
      method: 'POST',
    });
    assert.equal(again.status, 409);
  });

  it(
    'discards another held build as the operator: its table and indices are gone',
    { timeout: STEP_MS },
    async () => {
      const live = await aliasHolders();
      await w.t.dbs.catalog.query('DELETE FROM clip WHERE id % 5 = 0');
      const runId = await start({ media: 'clip', shadow: true });
      await stageCompleted(jobIds.stage(runId, 'compare'));
      assert.equal((await details(runId)).run.status, 'awaiting-approval');
      const res = await w.request(`/api/runs/${runId}/discard`, {
        as: 'operator-basic',
        method: 'POST',
      });
      assert.equal(res.status, 200, await res.clone().text());
      assert.deepEqual(await res.json(), { runId, status: 'cancelled' });
      const d = await details(runId);
      assert.match(d.run.error ?? '', /discarded by operator/);
      assert.equal(d.audit[0]?.actor, 'operator');
      assert.equal(d.audit[0]?.action, 'discard');
      const prefix = w.t.config.ELASTICSEARCH_INDEX_PREFIX;
      assert.equal(await w.t.es.indices.exists({ index: `${prefix}clip-${runId}` }), false);
      assert.deepEqual(await aliasHolders(), live);
      const again = await w.request(`/api/runs/${runId}/discard`, {
        as: 'operator',
        method: 'POST',
      });
      assert.equal(again.status, 409);
    },
  );
});
