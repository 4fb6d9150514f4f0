import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { activeStatuses, createPool, ensureRunStore, type Pool } from '@freshet/core';
import {
  parseScheduleConfig,
  createScheduler,
  type SlotDecision,
  ScheduleStore,
  type SlotRow,
} from '@freshet/control';
import { writeClipMedia } from '../helpers/clip-media.js';
import { createTestEnv, type TestEnv } from '../helpers/env.js';

const minute = 60_000;
const schedulers = 20;
const rounds = 50;

/** Rejection reasons of settled promises, as text (empty when all were fulfilled). */
function rejections(results: readonly PromiseSettledResult<unknown>[]): string[] {
  return results.flatMap((r) => (r.status === 'rejected' ? [String(r.reason)] : []));
}

/**
 * The moment several schedulers meet a schedule for the first time, or the same due slot, at
 * once: repeated many times on the real PostgreSQL, each scheduler on its own pool (its own
 * sessions), so the statements really run concurrently.
 */
describe('schedulers racing on the real database', { timeout: 240_000 }, () => {
  let t: TestEnv;
  const pools: Pool[] = [];

  before(async () => {
    t = await createTestEnv({ FRESHET_MEDIA_FILE: writeClipMedia() });
    // Two sessions each: a start holds one for its lock and records the run on the other.
    for (let i = 0; i < schedulers; i++) {
      pools.push(createPool(t.config.API_DATABASE_URL, `freshet-race-${i}`, 2));
    }
    await ensureRunStore(t.dbs.api);
  });

  after(async () => {
    await Promise.allSettled(pools.map((p) => p.end()));
    await t?.close();
  });

  it(`${schedulers} stores asking when a new schedule was first seen all get the one stored time (${rounds} schedules)`, async () => {
    const stores = pools.map((p) => new ScheduleStore(p, t.queues.prefix));
    const base = Date.parse('2031-01-01T00:00:00Z');
    for (let k = 0; k < rounds; k++) {
      const id = `seen-${k}`;
      // Each store proposes its own time; whichever insert lands first is the answer for all.
      const results = await Promise.allSettled(
        stores.map((s, i) => s.firstSeen(id, new Date(base + k * minute + i * 1000))),
      );
      assert.deepEqual(rejections(results), [], `schedule ${id}: every call succeeded`);
      const seen = results.map((r) => (r.status === 'fulfilled' ? r.value.getTime() : NaN));
      const { rows } = await t.dbs.api.query<{ first_seen_at: Date }>(
        'SELECT first_seen_at FROM freshet.schedule_state WHERE prefix = $1 AND schedule_id = $2',
        [t.queues.prefix, id],
      );
      assert.equal(rows.length, 1);
      const stored = rows[0]?.first_seen_at.getTime();
      assert.deepEqual(
        new Set(seen),
        new Set([stored]),
        `schedule ${id}: one answer, the stored one`,
      );
      // Asked again later, with a later time, it does not move.
      assert.equal(
        (await stores[0]?.firstSeen(id, new Date(base + 10 * 365 * 86_400_000)))?.getTime(),
        stored,
      );
    }
  });

  it(`${schedulers} schedulers ticking at once start exactly one run per slot (${rounds} new schedules)`, async () => {
    const base = Date.parse('2031-02-01T00:00:00Z');
    for (let k = 0; k < rounds; k++) {
      const id = `race-${k}`;
      const config = parseScheduleConfig(
        { schedules: [{ id, media: 'clip', cron: '*/10 * * * *' }] },
        t.media,
        'test',
      );
      const all = pools.map((api, i) =>
        createScheduler({
          config: t.config,
          api,
          media: t.media,
          queues: t.queues,
          logger: t.logger,
          schedules: config,
          instance: `race-${i}`,
        }),
      );
      const slot = new Date(base + k * 10 * minute);
      // First sight of the schedule, all at once (each at its own clock, a few ms apart)...
      const seen = await Promise.allSettled(
        all.map((s, i) => s.tick(new Date(slot.getTime() - minute + i))),
      );
      assert.deepEqual(rejections(seen), [], `${id}: every first tick succeeded`);
      assert.deepEqual(
        seen.flatMap((r) => (r.status === 'fulfilled' ? r.value : [])),
        [],
        'nothing is due before the first slot',
      );
      // ...then its first slot, due for all of them at once.
      const due = await Promise.allSettled(all.map((s, i) => s.tick(new Date(slot.getTime() + i))));
      assert.deepEqual(rejections(due), [], `${id}: every due tick succeeded`);
      const decisions: SlotDecision[] = due.flatMap((r) =>
        r.status === 'fulfilled' ? r.value : [],
      );
      assert.deepEqual(
        decisions.map((d) => [d.slotTime.toISOString(), d.outcome]),
        [[slot.toISOString(), 'started']],
        `${id}: one scheduler started the slot, the others did nothing`,
      );
      const { rows: slots } = await t.dbs.api.query<SlotRow>(
        'SELECT * FROM freshet.schedule_slots WHERE prefix = $1 AND schedule_id = $2',
        [t.queues.prefix, id],
      );
      assert.deepEqual(
        slots.map((r) => [r.slot_time.toISOString(), r.outcome, r.run_id]),
        [[slot.toISOString(), 'started', decisions[0]?.runId]],
      );
      const { rows: runs } = await t.dbs.api.query<{ id: string }>(
        'SELECT id FROM freshet.runs WHERE requested_by = $1',
        [`schedule:${id}`],
      );
      assert.deepEqual(
        runs.map((r) => r.id),
        [decisions[0]?.runId],
      );
      // What a worker would do: the run ends, so the next schedule's media is free.
      await t.dbs.api.query(
        `UPDATE freshet.runs SET status = 'succeeded', finished_at = now() WHERE status = ANY($1)`,
        [activeStatuses],
      );
    }
  });
});
