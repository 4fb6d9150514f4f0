import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { QueueEvents } from 'bullmq';
import {
  CHUNK_QUEUE,
  createNotifier,
  createWorkerRedis,
  loadConfig,
  newRunId,
  startMonitor,
  type Monitor,
  type Notifier,
  type RunStatus,
} from '@freshet/core';
import { startWorker, type WorkerApp } from '@freshet/worker';
import { startRefresh } from '@freshet/control';
import { breakCatalogRow, seedClips, writeClipMedia } from '../helpers/clip-media.js';
import { createTestEnv, type TestEnv } from '../helpers/env.js';
import { startReceiver, type Receiver } from '../helpers/webhook-receiver.js';

/** The webhook path stands in for a Slack secret: it must never appear in any alert. */
const secretPath = '/services/T0000/B0000/s3cr3t-hook';

/**
 * Alerts on a real refresh (worker in-process, real Redis, Postgres and Elasticsearch) and on
 * run rows driven into each state, delivered to a real HTTP receiver. The worker does not send
 * alerts itself here unless it is wired to; either way each alert must arrive exactly once
 * (the monitor catches up on a missed one, Postgres dedupes).
 */
describe('alerts', { timeout: 300_000 }, () => {
  let receiver: Receiver;
  let t: TestEnv;
  let worker: WorkerApp;
  let events: QueueEvents;
  let eventsRedis: ReturnType<typeof createWorkerRedis>;
  let notifier: Notifier;
  let monitor: Monitor;
  const extra: { close(): Promise<void> }[] = [];
  const deps = () => ({ config: t.config, api: t.dbs.api, media: t.media, queues: t.queues });

  /** A run row (not a real refresh) of its own media, moved to `status`. */
  async function syntheticRun(media: string, status: RunStatus, error?: string): Promise<string> {
    const id = newRunId();
    await t.store.createRun({
      id,
      prefix: t.config.FRESHET_QUEUE_PREFIX,
      media,
      profile: 'production',
    });
    await t.store.markRunning(id);
    if (status !== 'running') await t.store.setStatus(id, status, error ?? null);
    return id;
  }

  const alertRows = async (runId: string) =>
    (
      await t.dbs.api.query<{ kind: string; episode: string; sent: boolean }>(
        `SELECT kind, episode, sent_at IS NOT NULL AS sent FROM freshet.alerts
          WHERE run_id = $1 ORDER BY claimed_at`,
        [runId],
      )
    ).rows;

  before(async () => {
    receiver = await startReceiver();
    t = await createTestEnv({
      DASHBOARD_PUBLIC_URL: 'http://dashboard.test',
      FRESHET_MEDIA_FILE: writeClipMedia(),
      CHUNK_ATTEMPTS: '2',
      CHUNK_BACKOFF_MS: '10',
      ALERT_WEBHOOK_URL: `${receiver.url}${secretPath}`,
    });
    await seedClips(t.dbs.catalog, 2000);
    eventsRedis = createWorkerRedis(t.config);
    events = new QueueEvents(CHUNK_QUEUE, {
      connection: eventsRedis,
      prefix: t.config.FRESHET_QUEUE_PREFIX,
    });
    await events.waitUntilReady();
    worker = await startWorker(t.config, t.logger);
    notifier = createNotifier(t.config, t.logger, {
      api: t.dbs.api,
      backoffMs: 10,
      runUrl: (id) => `http://dashboard.test/runs/${id}`,
    });
    monitor = startMonitor({
      config: t.config,
      api: t.dbs.api,
      notifier,
      logger: t.logger,
      prefix: t.config.FRESHET_QUEUE_PREFIX,
      intervalMs: 0,
    });
  });

  after(async () => {
    for (const c of extra) await c.close();
    await monitor?.close();
    await notifier?.close();
    await worker?.close();
    await events?.close();
    eventsRedis?.disconnect();
    await t?.close();
    await receiver?.close();
  });

  it(
    'announces a succeeded refresh with every source before, after and change',
    { timeout: 180_000 },
    async () => {
      const first = await startRefresh(deps(), { media: 'clip' });
      await t.waitForRunEnd(first);
      // Change the catalog: one source gone, one new, the rest as before.
      await t.dbs.catalog.query(`DELETE FROM clip WHERE provider = 'p3'`);
      await t.dbs.catalog.query(
        `INSERT INTO clip (id, title, provider, license, url, score)
       SELECT 100000 + i, 'new ' || i, 'pnew', 'by', 'example.org/new/' || i, '1'
         FROM generate_series(1, 40) AS i`,
      );
      const second = await startRefresh(deps(), { media: 'clip' });
      await t.waitForRunEnd(second);
      const run = await t.store.getRun(second);
      assert.equal(run.status, 'succeeded', run.error ?? '');

      await monitor.tick();
      const { body, path, contentType } = await receiver.delivered(second, 'succeeded');
      await receiver.delivered(first, 'succeeded');
      assert.equal(path, secretPath);
      assert.equal(contentType, 'application/json');

      const f = body.freshet;
      assert.equal(f.status, 'succeeded');
      assert.equal(f.media, 'clip');
      assert.equal(f.profile, 'production');
      assert.equal(f.stage, 'report');
      assert.equal(f.url, `http://dashboard.test/runs/${second}`);
      const stored = (run.counts as { sources: Record<string, unknown> }).sources;
      assert.deepEqual(f.sources, stored);
      // p0..p12 from the seed plus pnew: every source, not a top N.
      assert.equal(Object.keys(f.sources ?? {}).length, 14);
      const p3 = f.sources?.p3;
      assert.ok(p3 && p3.before > 0);
      assert.deepEqual(p3, { before: p3.before, after: 0, change: -p3.before });
      assert.deepEqual(f.sources?.pnew, { before: 0, after: 40, change: 40 });
      assert.equal(f.sources?.p5?.change, 0);
      assert.deepEqual(f.totals, {
        before: 2000,
        after: 2040 - p3.before,
        change: 40 - p3.before,
        sources: 14,
      });
      assert.match(body.text, /clip \(production\) refresh succeeded/);
      assert.match(body.text, new RegExp(`Largest changes: p3 -${p3.before}, pnew \\+40`));
      assert.equal(body.blocks[0]?.type, 'header');

      // A second tick (or the worker, if wired) sends nothing new.
      await monitor.tick();
      await notifier.notifyRunStatus(second);
      assert.equal(receiver.count(second, 'succeeded'), 1);
      assert.equal(receiver.count(first, 'succeeded'), 1);
      assert.deepEqual(await alertRows(second), [{ kind: 'succeeded', episode: '', sent: true }]);
    },
  );

  it(
    'announces a real run blocked at a chunk that failed all its attempts',
    { timeout: 120_000 },
    async () => {
      await breakCatalogRow(t.dbs.catalog, 7 * 1234);
      const exhausted = new Promise<void>((resolve) =>
        events.on('retries-exhausted', () => resolve()),
      );
      const runId = await startRefresh(deps(), { media: 'clip' });
      await exhausted;
      assert.equal((await t.store.getRun(runId)).status, 'blocked');

      await monitor.tick();
      const { body } = await receiver.delivered(runId, 'blocked');
      assert.equal(body.freshet.status, 'blocked');
      assert.equal(body.freshet.stage, 'index');
      assert.match(body.freshet.error ?? '', /chunk \d+ failed all attempts/);
      assert.match(body.text, /clip \(production\) refresh is blocked/);
      assert.match(body.text, /failed all attempts/);

      await monitor.tick();
      await notifier.notifyRunStatus(runId);
      assert.equal(receiver.count(runId, 'blocked'), 1);
    },
  );

  it(
    'announces a failed run once, and a blocked run again only after a retry',
    { timeout: 60_000 },
    async () => {
      const failed = await syntheticRun(
        'failmedia',
        'failed',
        'finalize failed: VerificationError: index has 1999 documents, table has 2000',
      );
      await notifier.notifyRunStatus(failed);
      const { body } = await receiver.delivered(failed, 'failed');
      assert.equal(body.freshet.status, 'failed');
      assert.match(body.freshet.error ?? '', /index has 1999 documents/);
      assert.match(body.text, /failmedia \(production\) refresh failed/);
      await notifier.notifyRunStatus(failed);
      await monitor.tick();
      assert.equal(receiver.count(failed, 'failed'), 1);

      const blocked = await syntheticRun(
        'blockmedia',
        'blocked',
        'chunk 2 copy failed all attempts',
      );
      await notifier.notifyRunStatus(blocked);
      await notifier.notifyRunStatus(blocked);
      assert.equal(receiver.count(blocked, 'blocked'), 1);
      // An operator's retry that blocks again is a new episode.
      await t.store.audit(blocked, 'test', 'retry');
      await t.store.markRunning(blocked, true);
      await t.store.setStatus(blocked, 'blocked', 'chunk 2 copy failed all attempts');
      await notifier.notifyRunStatus(blocked);
      assert.equal(receiver.count(blocked, 'blocked'), 2);
      assert.deepEqual(
        (await alertRows(blocked)).map((r) => r.episode),
        ['retry-0', 'retry-1'],
      );
    },
  );

  it(
    'alerts a stuck run once per stuck episode; paused and fresh runs are not stuck',
    { timeout: 60_000 },
    async () => {
      const stuck = await syntheticRun('stuckmedia', 'running');
      await t.store.enterStage(stuck, 'index');
      const attempt = await t.store.startAttempt({
        runId: stuck,
        jobId: `${stuck}.c3.index`,
        step: 'index',
        chunk: 3,
        attempt: 1,
        worker: 'host:1',
      });
      const queued = newRunId();
      await t.store.createRun({
        id: queued,
        prefix: t.config.FRESHET_QUEUE_PREFIX,
        media: 'queuedmedia',
        profile: 'production',
      });
      await t.store.setWaiting(stuck, 'Elasticsearch disk 91% used');
      const paused = await syntheticRun('pausedmedia', 'paused');
      const { rows } = await t.dbs.api.query<{ now: Date }>('SELECT now()');
      const dbNow = (rows[0] as { now: Date }).now.getTime();
      let clock = dbNow + 60_000;
      const clocked = startMonitor({
        config: t.config,
        api: t.dbs.api,
        notifier,
        logger: t.logger,
        prefix: t.config.FRESHET_QUEUE_PREFIX,
        now: () => new Date(clock),
        intervalMs: 0,
      });
      extra.push(clocked);

      // One minute on: nothing is stuck yet (STUCK_AFTER_MS is 15 min).
      assert.deepEqual((await clocked.tick()).stuck, []);
      assert.equal(receiver.count(stuck, 'stuck'), 0);

      clock = dbNow + 20 * 60_000;
      const report = await clocked.tick();
      assert.deepEqual([...report.stuck].sort(), [queued, stuck].sort());
      const { body } = await receiver.delivered(stuck, 'stuck');
      const f = body.freshet;
      assert.equal(f.status, 'running');
      assert.equal(f.stage, 'index');
      assert.ok(f.lastProgressAt && f.stuckForMs !== null);
      assert.ok(f.stuckForMs >= 19 * 60_000 && f.stuckForMs <= 21 * 60_000, String(f.stuckForMs));
      assert.equal(f.runningCount, 1);
      assert.equal(f.waitingReason, 'Elasticsearch disk 91% used');
      assert.deepEqual(
        f.running?.map((a) => [a.step, a.chunk, a.attempt, a.worker]),
        [['index', 3, 1, 'host:1']],
      );
      assert.match(body.text, /stuckmedia \(production\) refresh is stuck/);
      assert.match(body.text, /No progress for (19|20|21) min/);
      const queuedAlert = await receiver.delivered(queued, 'stuck');
      assert.equal(queuedAlert.body.freshet.status, 'queued');
      assert.equal(queuedAlert.body.freshet.runningCount, 0);

      // Still stuck a minute later: no second alert.
      clock = dbNow + 21 * 60_000;
      assert.ok((await clocked.tick()).stuck.includes(stuck));
      assert.equal(receiver.count(stuck, 'stuck'), 1);
      assert.equal(receiver.count(queued, 'stuck'), 1);
      assert.equal(receiver.count(paused, 'stuck'), 0);

      // Progress, then stuck again: a new episode, a new alert.
      await t.store.finishAttempt(attempt, 'done', { rows: 100 }, null);
      clock = dbNow + 10 * 60_000;
      assert.deepEqual((await clocked.tick()).stuck, []);
      clock = dbNow + 40 * 60_000;
      assert.ok((await clocked.tick()).stuck.includes(stuck));
      assert.equal(receiver.count(stuck, 'stuck'), 2);
      const episodes = (await alertRows(stuck)).map((r) => r.episode);
      assert.equal(episodes.length, 2);
      assert.notEqual(episodes[0], episodes[1]);
      const second = receiver.all.filter(
        (r) => r.body.freshet.runId === stuck && r.body.freshet.kind === 'stuck',
      )[1];
      assert.equal(second?.body.freshet.runningCount, 0);
      assert.ok((second?.body.freshet.lastProgressAt ?? '') > (f.lastProgressAt ?? ''));

      // Runs waiting for an operator or done are never stuck.
      assert.ok(!report.stuck.includes(paused));
    },
  );

  it(
    'a step running longer than STUCK_AFTER_MS is not stuck while it reports progress',
    { timeout: 60_000 },
    async () => {
      // Two runs, each with one step that started 30 min ago (as far as the store knows) and
      // still runs; one of them reported progress just now.
      const moving = await syntheticRun('movingmedia', 'running');
      const silent = await syntheticRun('silentmedia', 'running');
      const attempts: number[] = [];
      for (const runId of [moving, silent]) {
        await t.store.enterStage(runId, 'index');
        const { attemptId } = await t.store.beginAttempt({
          runId,
          jobId: `${runId}.c0.index`,
          step: 'index',
          chunk: 0,
          attempt: 1,
          worker: 'host:1',
        });
        assert.ok(attemptId !== null);
        attempts.push(attemptId);
        await t.dbs.api.query(
          `UPDATE freshet.runs SET created_at = now() - interval '30 min',
             started_at = now() - interval '30 min', updated_at = now() - interval '30 min' WHERE id = $1;`,
          [runId],
        );
        await t.dbs.api.query(
          `UPDATE freshet.stages SET started_at = now() - interval '30 min' WHERE run_id = $1`,
          [runId],
        );
        await t.dbs.api.query(
          `UPDATE freshet.attempts SET started_at = now() - interval '30 min' WHERE run_id = $1`,
          [runId],
        );
      }
      await t.store.recordProgress(attempts[0] as number);
      const { rows } = await t.dbs.api.query<{ now: Date }>('SELECT now()');
      const dbNow = (rows[0] as { now: Date }).now.getTime();
      const clocked = startMonitor({
        config: t.config,
        api: t.dbs.api,
        notifier,
        logger: t.logger,
        prefix: t.config.FRESHET_QUEUE_PREFIX,
        now: () => new Date(dbNow + 60_000),
        intervalMs: 0,
      });
      extra.push(clocked);
      const { stuck } = await clocked.tick();
      assert.ok(stuck.includes(silent), 'the step that stopped reporting is stuck');
      assert.ok(!stuck.includes(moving), 'the step that reports progress is not');
      for (const runId of [moving, silent]) await t.store.setStatus(runId, 'cancelled');
    },
  );

  it(
    'retries a receiver that answers 500, and delivers on its 200',
    { timeout: 60_000 },
    async () => {
      const runId = await syntheticRun('retrymedia', 'failed', 'promote failed: lock timeout');
      receiver.answer(runId, [500]);
      await notifier.notifyRunStatus(runId);
      const got = receiver.all.filter((r) => r.body.freshet.runId === runId);
      assert.deepEqual(
        got.map((r) => r.status),
        [500, 200],
      );
      assert.deepEqual(got[0]?.body, got[1]?.body);
      assert.deepEqual(await alertRows(runId), [
        { kind: 'failed', episode: 'retry-0', sent: true },
      ]);
    },
  );

  it(
    'releases an undelivered alert so the monitor sends it later',
    { timeout: 60_000 },
    async () => {
      const dead = createServer();
      await new Promise<void>((resolve) => dead.listen(0, '127.0.0.1', resolve));
      const deadUrl = `http://127.0.0.1:${(dead.address() as AddressInfo).port}${secretPath}`;
      await new Promise<void>((resolve) => dead.close(() => resolve()));
      const down = createNotifier({ ALERT_WEBHOOK_URL: deadUrl }, t.logger, {
        api: t.dbs.api,
        attempts: 2,
        backoffMs: 10,
      });
      const runId = await syntheticRun('downmedia', 'failed', 'report failed: boom');
      await down.notifyRunStatus(runId);
      await down.close();
      assert.deepEqual(await alertRows(runId), []);

      const report = await monitor.tick();
      assert.ok(report.caughtUp.includes(runId));
      await receiver.delivered(runId, 'failed');
      assert.equal(receiver.count(runId, 'failed'), 1);
    },
  );

  it('sends nothing when ALERT_WEBHOOK_URL is unset', { timeout: 60_000 }, async () => {
    const config = loadConfig({ ...t.env, ALERT_WEBHOOK_URL: '' });
    assert.equal(config.ALERT_WEBHOOK_URL, undefined);
    const silent = createNotifier(config, t.logger, { api: t.dbs.api });
    assert.equal(silent.enabled, false);
    const idle = startMonitor({
      config,
      api: t.dbs.api,
      notifier: silent,
      logger: t.logger,
      prefix: t.config.FRESHET_QUEUE_PREFIX,
      now: () => new Date(Date.now() + 3600_000),
      intervalMs: 0,
    });
    extra.push(idle);
    const before = receiver.all.length;
    const runId = await syntheticRun('silentmedia', 'failed', 'boom');
    await silent.notifyRunStatus(runId);
    await silent.notify({ kind: 'failed', run: await t.store.getRun(runId) });
    assert.deepEqual(await idle.tick(), { stuck: [], caughtUp: [] });
    await silent.close();
    assert.equal(receiver.all.length, before);
    assert.deepEqual(await alertRows(runId), []);
  });

  it('never puts the webhook secret in an alert', () => {
    assert.ok(receiver.all.length > 0);
    assert.ok(receiver.all.every((r) => r.path === secretPath));
    assert.doesNotMatch(JSON.stringify(receiver.all.map((r) => r.body)), /s3cr3t/);
  });
});
