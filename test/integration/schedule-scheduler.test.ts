import assert from 'node:assert/strict';
import { after, afterEach, before, describe, it } from 'node:test';
import { Job } from 'bullmq';
import { activeStatuses, jobIds } from '@freshet/core';
import {
  openProducer,
  type Producer,
  startRefresh,
  parseScheduleConfig,
  type ScheduleConfig,
  createScheduler,
  type Scheduler,
  type SchedulerDeps,
  type SlotDecision,
  ScheduleStore,
  type SlotRow,
  nextSlots,
  slotAt,
  slotRunId,
} from '@freshet/control';
import { writeClipMedia } from '../helpers/clip-media.js';
import { createTestEnv, type TestEnv } from '../helpers/env.js';

const minute = 60_000;
const hour = 60 * minute;
const at = (iso: string) => new Date(iso);
const plus = (d: Date, ms: number) => new Date(d.getTime() + ms);

/**
 * The scheduler's core driven by a fake clock against the real Postgres and Redis: slots are
 * claimed in `freshet.schedule_slots` and real runs (run rows and BullMQ flows) are started. No
 * worker runs; a run "finishes" when the test marks it so, as a worker would.
 */
describe('scheduled refreshes', { timeout: 240_000 }, () => {
  let t: TestEnv;
  const opened: Producer[] = [];

  before(async () => {
    t = await createTestEnv({ FRESHET_MEDIA_FILE: writeClipMedia() });
  });

  afterEach(async () => {
    await finishActiveRuns();
  });

  after(async () => {
    for (const p of opened) await p.close();
    await t?.close();
  });

  const schedulesOf = (entries: Record<string, unknown>[]): ScheduleConfig =>
    parseScheduleConfig({ schedules: entries }, t.media, 'test');

  /** A scheduler over `entries`: by default on the test env's connections. */
  const scheduler = (
    entries: Record<string, unknown>[],
    extra: Partial<SchedulerDeps> = {},
  ): Scheduler =>
    createScheduler({
      config: t.config,
      api: t.dbs.api,
      media: t.media,
      queues: t.queues,
      logger: t.logger,
      schedules: schedulesOf(entries),
      ...extra,
    });

  /** What a worker would do: every active run ends. */
  async function finishActiveRuns(): Promise<void> {
    await t.dbs.api.query(
      `UPDATE freshet.runs SET status = 'succeeded', finished_at = now() WHERE status = ANY($1)`,
      [activeStatuses],
    );
  }

  async function slotsOf(scheduleId: string): Promise<SlotRow[]> {
    const { rows } = await t.dbs.api.query<SlotRow>(
      'SELECT * FROM freshet.schedule_slots WHERE schedule_id = $1 ORDER BY slot_time',
      [scheduleId],
    );
    return rows;
  }

  async function runsOf(scheduleId: string): Promise<{ id: string; status: string }[]> {
    const { rows } = await t.dbs.api.query<{ id: string; status: string }>(
      'SELECT id, status FROM freshet.runs WHERE requested_by = $1 ORDER BY created_at',
      [`schedule:${scheduleId}`],
    );
    return rows;
  }

  const summary = (decisions: SlotDecision[]) =>
    decisions.map((d) => `${d.slotTime.toISOString().slice(5, 16)} ${d.outcome}`);

  it('starts two schedules due at the same minute apart, per their jitter, and the same after a restart', async () => {
    const entries = [
      {
        id: 'stagger-a',
        media: 'clip',
        cron: '0 3 * * *',
        timezone: 'Europe/Berlin',
        jitter: '30m',
      },
      {
        id: 'stagger-b',
        media: 'slowclip',
        cron: '0 3 * * *',
        timezone: 'Europe/Berlin',
        jitter: '30m',
      },
    ];
    const s = scheduler(entries);
    const [a, b] = schedulesOf(entries).schedules;
    assert.ok(a && b);
    assert.notEqual(a.offsetMs, b.offsetMs, 'the two ids hash to different offsets');
    const slot = at('2030-01-15T02:00:00Z'); // 03:00 in Berlin
    const startedAt = new Map<string, Date>();
    const decisions: SlotDecision[] = [];
    for (let now = plus(slot, -minute); now <= plus(slot, 31 * minute); now = plus(now, minute)) {
      for (const d of await s.tick(now)) {
        decisions.push(d);
        if (d.outcome === 'started') startedAt.set(d.scheduleId, now);
      }
    }
    assert.deepEqual(decisions.map((d) => [d.scheduleId, d.outcome]).sort(), [
      ['stagger-a', 'started'],
      ['stagger-b', 'started'],
    ]);
    for (const e of [a, b]) {
      const fire = plus(slot, e.offsetMs);
      const started = startedAt.get(e.id);
      assert.ok(started, `${e.id} started`);
      // The first tick at or after slot + offset starts it (ticks are a minute apart here).
      assert.ok(started >= fire && started.getTime() - fire.getTime() < minute, e.id);
      const runId = slotRunId(t.queues.prefix, e.id, slotAt(e, slot));
      const run = await t.store.getRun(runId);
      assert.equal(run.requested_by, `schedule:${e.id}`);
      assert.equal(run.media, e.media);
    }
    assert.equal(
      Math.sign(
        (startedAt.get('stagger-a')?.getTime() ?? 0) - (startedAt.get('stagger-b')?.getTime() ?? 0),
      ),
      Math.sign(a.offsetMs - b.offsetMs),
    );

    // A restart: a new process parses the file again and gets the very same times, and finds
    // nothing left to start for the slot already handled.
    const restarted = schedulesOf(structuredClone(entries));
    for (const [i, e] of restarted.schedules.entries()) {
      const before = schedulesOf(entries).schedules[i];
      assert.ok(before);
      assert.deepEqual(
        nextSlots(e, plus(slot, -minute), 3),
        nextSlots(before, plus(slot, -minute), 3),
      );
    }
    assert.deepEqual(await scheduler(entries).tick(plus(slot, 40 * minute)), []);
  });

  it('three producers ticking at once start exactly one run per slot', async () => {
    const producers = [0, 1, 2].map(() => openProducer(t.config));
    opened.push(...producers);
    const entries = [{ id: 'multi', media: 'clip', cron: '*/10 * * * *', jitter: '5m' }];
    const schedulers = producers.map((p, i) =>
      createScheduler({
        config: p.config,
        api: p.api,
        media: p.media,
        queues: p.queues,
        logger: t.logger,
        schedules: schedulesOf(entries),
        instance: `producer-${i}`,
      }),
    );
    const [entry] = schedulesOf(entries).schedules;
    assert.ok(entry);
    const first = at('2030-02-01T00:00:00Z');
    await Promise.all(schedulers.map((s) => s.tick(plus(first, -minute))));
    const decisions: SlotDecision[] = [];
    const slots = 5;
    for (let k = 0; k < slots; k++) {
      const fire = plus(first, k * 10 * minute + entry.offsetMs);
      for (const dt of [-1000, 0, 300, 1500, 60_000]) {
        const all = await Promise.all(schedulers.map((s, i) => s.tick(plus(fire, dt + i * 137))));
        decisions.push(...all.flat());
      }
      await finishActiveRuns();
    }
    const started = decisions.filter((d) => d.outcome === 'started');
    assert.equal(started.length, slots, summary(decisions).join('\n'));
    assert.equal(decisions.length, slots, 'nothing but one start per slot');
    const rows = await slotsOf('multi');
    assert.deepEqual(
      rows.map((r) => [r.slot_time.toISOString(), r.outcome]),
      Array.from({ length: slots }, (_, k) => [
        plus(first, k * 10 * minute).toISOString(),
        'started',
      ]),
    );
    const runs = await runsOf('multi');
    assert.deepEqual(runs.map((r) => r.id).sort(), rows.map((r) => r.run_id).sort());
    for (const run of runs) {
      const report = await Job.fromId(t.queues.stage, jobIds.stage(run.id, 'report'));
      assert.ok(report, `run ${run.id} has its flow`);
    }
  });

  it('overlap skip: a slot due while the last run is still active is skipped, with the reason', async () => {
    const s = scheduler([{ id: 'skipper', media: 'clip', cron: '0 * * * *', overlap: 'skip' }]);
    const slot = at('2030-03-01T10:00:00Z');
    await s.tick(plus(slot, -minute));
    const [first] = await s.tick(slot);
    assert.equal(first?.outcome, 'started');
    const [second] = await s.tick(plus(slot, hour));
    assert.equal(second?.outcome, 'skipped');
    assert.match(second?.reason ?? '', new RegExp(`clip production run ${first?.runId} is queued`));
    assert.equal((await runsOf('skipper')).length, 1);
    // Once it finishes, the next slot runs again.
    await finishActiveRuns();
    const [third] = await s.tick(plus(slot, 2 * hour));
    assert.equal(third?.outcome, 'started');
    assert.deepEqual(
      (await slotsOf('skipper')).map((r) => r.outcome),
      ['started', 'skipped', 'started'],
    );
  });

  it('overlap queue: one slot waits behind the active run and starts when it ends', async () => {
    const s = scheduler([{ id: 'queuer', media: 'clip', cron: '0 * * * *', overlap: 'queue' }]);
    const slot = at('2030-04-01T10:00:00Z');
    await s.tick(plus(slot, -minute));
    const [first] = await s.tick(slot);
    assert.equal(first?.outcome, 'started');
    const [second] = await s.tick(plus(slot, hour));
    assert.equal(second?.outcome, 'queued');
    assert.match(
      second?.reason ?? '',
      new RegExp(`waiting for clip production run ${first?.runId}`),
    );
    // At most one waits: the next slot is skipped.
    const [third] = await s.tick(plus(slot, 2 * hour));
    assert.equal(third?.outcome, 'skipped');
    assert.match(third?.reason ?? '', /is already queued behind it/);
    // Still blocked: nothing happens.
    assert.deepEqual(await s.tick(plus(slot, 2 * hour + minute)), []);
    await finishActiveRuns();
    const [resumed] = await s.tick(plus(slot, 2 * hour + 2 * minute));
    assert.equal(resumed?.outcome, 'started');
    assert.equal(resumed?.slotTime.toISOString(), second?.slotTime.toISOString());
    assert.equal(resumed?.runId, second?.runId);
    assert.equal((await t.store.getRun(resumed?.runId ?? '')).status, 'queued');
    assert.deepEqual(
      (await slotsOf('queuer')).map((r) => r.outcome),
      ['started', 'started', 'skipped'],
    );
    assert.equal((await runsOf('queuer')).length, 2);
  });

  it('conflictsWith: a run of a conflicting media holds the schedule back (skip or queue)', async () => {
    const handStarted = await startRefresh(
      { config: t.config, api: t.dbs.api, media: t.media, queues: t.queues },
      { media: 'clip' },
    );
    const s = scheduler([
      { id: 'excl-skip', media: 'slowclip', cron: '0 * * * *', conflictsWith: ['clip'] },
      {
        id: 'excl-queue',
        media: 'slowclip',
        profile: 'staging',
        cron: '0 * * * *',
        overlap: 'queue',
        conflictsWith: ['clip'],
      },
    ]);
    const slot = at('2030-05-01T10:00:00Z');
    await s.tick(plus(slot, -minute));
    const decisions = await s.tick(slot);
    assert.deepEqual(
      decisions.map((d) => [d.scheduleId, d.outcome]),
      [
        ['excl-skip', 'skipped'],
        ['excl-queue', 'queued'],
      ],
    );
    for (const d of decisions) {
      assert.match(d.reason ?? '', new RegExp(`clip production run ${handStarted} is queued`));
    }
    await finishActiveRuns();
    const [resumed] = await s.tick(plus(slot, minute));
    assert.equal(resumed?.scheduleId, 'excl-queue');
    assert.equal(resumed?.outcome, 'started');
    assert.equal((await runsOf('excl-skip')).length, 0);
  });

  it('catch-up: a slot missed while no producer ran starts once, on the first startup only', async () => {
    const entries = [{ id: 'catchup', media: 'clip', cron: '0 * * * *' }];
    const config = { ...t.config, SCHEDULE_CATCHUP_WINDOW_MS: 2 * hour };
    const slot = at('2030-06-01T00:00:00Z');
    const before = scheduler(entries, { config });
    await before.tick(plus(slot, -minute));
    assert.equal((await before.tick(slot))[0]?.outcome, 'started');
    await finishActiveRuns();

    // No producer runs from 00:00 to 03:30; the 01:00 slot is now older than the 2 h window.
    const now = at('2030-06-01T03:30:00Z');
    const startup = await scheduler(entries, { config }).tick(now);
    assert.deepEqual(summary(startup), [
      '06-01T01:00 missed',
      '06-01T02:00 missed',
      '06-01T03:00 started',
    ]);
    assert.match(startup[0]?.reason ?? '', /older than the catch-up window/);
    assert.match(startup[1]?.reason ?? '', /superseded by a later due slot/);
    const caughtUp = startup[2]?.runId ?? '';
    await finishActiveRuns();

    // A second startup (or a second replica) finds nothing left to do.
    assert.deepEqual(await scheduler(entries, { config }).tick(plus(now, minute)), []);
    const runs = await runsOf('catchup');
    assert.equal(runs.length, 2);
    assert.equal(runs[1]?.id, caughtUp);
  });

  it('a slot older than the catch-up window is reported, not run', async () => {
    const entries = [{ id: 'too-old', media: 'clip', cron: '0 0 * * *' }];
    const config = { ...t.config, SCHEDULE_CATCHUP_WINDOW_MS: 2 * hour };
    const s = scheduler(entries, { config });
    const day1 = at('2030-07-01T00:00:00Z');
    await s.tick(plus(day1, -minute));
    assert.equal((await s.tick(day1))[0]?.outcome, 'started');
    await finishActiveRuns();
    const late = at('2030-07-02T03:00:00Z');
    const decisions = await scheduler(entries, { config }).tick(late);
    assert.deepEqual(summary(decisions), ['07-02T00:00 missed']);
    assert.equal((await runsOf('too-old')).length, 1);
    const rows = await slotsOf('too-old');
    assert.equal(rows[1]?.outcome, 'missed');
    assert.equal(rows[1]?.run_id, null);
    assert.match(
      rows[1]?.reason ?? '',
      /while no scheduler was running; older than the catch-up window/,
    );
    assert.deepEqual(await scheduler(entries, { config }).tick(plus(late, minute)), []);
  });

  it('with catch-up off (window 0) a slot found a few ticks late still starts', async () => {
    const entries = [{ id: 'no-catchup', media: 'clip', cron: '0 * * * *' }];
    const config = { ...t.config, SCHEDULE_CATCHUP_WINDOW_MS: 0 };
    const s = scheduler(entries, { config });
    const slot = at('2030-09-01T10:00:00Z');
    await s.tick(plus(slot, -minute));
    assert.deepEqual(summary(await s.tick(plus(slot, 45_000))), ['09-01T10:00 started']);
    await finishActiveRuns();
    assert.deepEqual(summary(await s.tick(plus(slot, hour + 10 * minute))), ['09-01T11:00 missed']);
  });

  it('a slot whose claimer stopped before starting it is taken over after the lease', async () => {
    const entries = [{ id: 'orphan', media: 'clip', cron: '0 * * * *' }];
    const [entry] = schedulesOf(entries).schedules;
    assert.ok(entry);
    const slot = slotAt(entry, at('2030-08-01T10:00:00Z'));
    const store = new ScheduleStore(t.dbs.api, t.queues.prefix);
    const runId = slotRunId(t.queues.prefix, entry.id, slot);
    // A producer claimed the slot, then died before starting the run.
    assert.ok(await store.claim(entry, slot, runId, 'crashed-producer', slot.fireAt));
    const s = scheduler(entries, { claimLeaseMs: 5 * minute });
    assert.deepEqual(await s.tick(plus(slot.fireAt, minute)), [], 'within the lease: left alone');
    const [taken] = await s.tick(plus(slot.fireAt, 6 * minute));
    assert.equal(taken?.outcome, 'started');
    assert.equal(taken?.runId, runId);
    assert.equal((await t.store.getRun(runId)).status, 'queued');
    assert.equal((await slotsOf('orphan'))[0]?.claimed_by, s.instance);
  });
});
