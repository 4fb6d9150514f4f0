import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import {
  ConflictError,
  ensureRunStore,
  type Config,
  type Logger,
  type MediaCatalog,
  type Pool,
  type Queues,
  formatDuration,
} from '@freshet/core';
import { startRefresh } from '../refresh.js';
import type { ScheduleConfig, ScheduleEntry } from './config.js';
import { ScheduleStore, type Blocker, type SlotOutcome, type SlotRow } from './slot-store.js';
import { dueSlots, slotRunId, type Slot } from './slots.js';

/** What a scheduler needs; `now` is never read from the wall clock here. */
export interface SchedulerDeps {
  /** Reads `FRESHET_QUEUE_PREFIX` and `SCHEDULE_CATCHUP_WINDOW_MS`. */
  readonly config: Config;
  /** The API database: run store and slot claims. */
  readonly api: Pool;
  readonly media: MediaCatalog;
  readonly queues: Queues;
  readonly schedules: ScheduleConfig;
  readonly logger: Logger;
  /** This scheduler's name in slot claims. Default `<host>-<pid>-<4 hex>`. */
  readonly instance?: string;
  /**
   * A slot claimed this long ago (ms) and still not started is taken over by another scheduler:
   * its claimer stopped in between. Default 5 minutes.
   */
  readonly claimLeaseMs?: number;
  /**
   * A slot found at most this late (ms) is on time, whatever `SCHEDULE_CATCHUP_WINDOW_MS` says
   * (0 turns catch-up off, not scheduling). Default 2 minutes: several daemon ticks.
   */
  readonly onTimeGraceMs?: number;
}

/** What this scheduler decided for one slot during a tick. */
export interface SlotDecision {
  readonly scheduleId: string;
  readonly slotTime: Date;
  readonly fireAt: Date;
  readonly outcome: Exclude<SlotOutcome, 'claimed'>;
  /** The run started (`started`) or to be started (`queued`). */
  readonly runId?: string;
  readonly reason?: string;
}

/** The scheduler's core: a function of `now`, so tests drive it with a fake clock. */
export interface Scheduler {
  /** This scheduler's name in slot claims. */
  readonly instance: string;
  /**
   * Handles everything due at `now` for every enabled schedule: takes over stale claims, starts a
   * queued slot whose way is clear, reports missed slots and claims and starts (or skips or
   * queues) the latest due one. Returns what this scheduler decided; slots another scheduler
   * claimed are not in it. Throws an AggregateError if any schedule failed (the others ran).
   */
  tick(now: Date): Promise<SlotDecision[]>;
}

/** Default {@link SchedulerDeps.claimLeaseMs}. */
export const defaultClaimLeaseMs = 5 * 60_000;
/** Default {@link SchedulerDeps.onTimeGraceMs}. */
export const defaultOnTimeGraceMs = 2 * 60_000;

/** `audio production run 20260101-000000-abcd is running; ...` */
function describeBlockers(blockers: readonly Blocker[]): string {
  return blockers.map((b) => `${b.media} ${b.profile} run ${b.id} is ${b.status}`).join('; ');
}

/**
 * Creates a scheduler over the schedules in `deps.schedules`. Any number of schedulers (one per
 * producer replica) may tick at once: each slot is claimed by a primary key in
 * `freshet.schedule_slots`, so it starts at most one run, and that run's id is derived from the
 * slot.
 */
export function createScheduler(deps: SchedulerDeps): Scheduler {
  const instance =
    deps.instance ?? `${hostname()}-${process.pid}-${randomBytes(2).toString('hex')}`;
  const prefix = deps.queues.prefix;
  const windowMs = Math.max(
    deps.config.SCHEDULE_CATCHUP_WINDOW_MS,
    deps.onTimeGraceMs ?? defaultOnTimeGraceMs,
  );
  const leaseMs = deps.claimLeaseMs ?? defaultClaimLeaseMs;
  const store = new ScheduleStore(deps.api, prefix);
  const log = deps.logger.child({ component: 'scheduler', instance });
  let ready: Promise<void> | undefined;

  const ensureReady = () => {
    ready ??= (async () => {
      await ensureRunStore(deps.api);
      await ensureRunStore(deps.api);
    })().catch((err: unknown) => {
      ready = undefined;
      throw err;
    });
    return ready;
  };

  const decision = (
    entry: ScheduleEntry,
    row: Pick<SlotRow, 'slot_time' | 'fire_at' | 'run_id'>,
    outcome: SlotDecision['outcome'],
    reason?: string,
  ): SlotDecision => ({
    scheduleId: entry.id,
    slotTime: row.slot_time,
    fireAt: row.fire_at,
    outcome,
    ...(row.run_id && (outcome === 'started' || outcome === 'queued') ? { runId: row.run_id } : {}),
    ...(reason ? { reason } : {}),
  });

  /** Starts the run of a slot this scheduler holds, or skips or queues it per policy. */
  const fire = (
    entry: ScheduleEntry,
    row: Pick<SlotRow, 'slot_time' | 'fire_at' | 'run_id'>,
    now: Date,
  ): Promise<SlotDecision> =>
    store.withStartLock(async () => {
      const slot = { schedule: entry.id, slot: row.slot_time.toISOString() };
      const runId = row.run_id ?? slotRunId(prefix, entry.id, toSlot(row));
      let blockers = await store.blockers(entry.media, entry.profile, entry.conflictsWith);
      if (blockers.length === 0) {
        try {
          await startRefresh(deps, {
            media: entry.media,
            profile: entry.profile,
            requestedBy: `schedule:${entry.id}`,
            runId,
          });
          await store.decide(entry.id, row.slot_time, 'started', null, now);
          log.info({ ...slot, runId, media: entry.media }, 'scheduled run started');
          return decision(entry, { ...row, run_id: runId }, 'started');
        } catch (err) {
          // A run started by hand since the check is a blocker like any other.
          if (err instanceof ConflictError) {
            blockers = await store.blockers(entry.media, entry.profile, entry.conflictsWith);
          }
          if (!(err instanceof ConflictError) || blockers.length === 0) {
            const reason = `could not start run ${runId}: ${(err as Error).message}`;
            await store.decide(entry.id, row.slot_time, 'failed', reason, now);
            log.error({ ...slot, runId, err }, 'scheduled run could not start');
            return decision(entry, row, 'failed', reason);
          }
        }
      }
      const busy = describeBlockers(blockers);
      if (entry.overlap === 'queue') {
        const reason = `waiting for ${busy}`;
        if (await store.queue(entry.id, row.slot_time, reason, now)) {
          log.info({ ...slot, runId, blockers }, 'scheduled slot queued behind the active run');
          return decision(entry, { ...row, run_id: runId }, 'queued', reason);
        }
        const waiting = await store.queuedSlot(entry.id);
        const skipReason = `${busy}, and slot ${waiting?.slot_time.toISOString() ?? '?'} is already queued behind it`;
        await store.decide(entry.id, row.slot_time, 'skipped', skipReason, now);
        log.warn({ ...slot, blockers }, 'scheduled slot skipped: one is already queued');
        return decision(entry, row, 'skipped', skipReason);
      }
      await store.decide(entry.id, row.slot_time, 'skipped', busy, now);
      log.warn({ ...slot, blockers }, 'scheduled slot skipped: overlap policy skip');
      return decision(entry, row, 'skipped', busy);
    });

  /** Slots whose claimer stopped before deciding them: recorded, started or reported. */
  const recoverStale = async (entry: ScheduleEntry, now: Date, out: SlotDecision[]) => {
    const stale = await store.takeStale(entry.id, new Date(now.getTime() - leaseMs), instance, now);
    for (const row of stale) {
      if (row.run_id && (await store.runExists(row.run_id))) {
        await store.decide(
          entry.id,
          row.slot_time,
          'started',
          'recorded after its claimer stopped',
          now,
        );
        out.push(decision(entry, row, 'started', 'recorded after its claimer stopped'));
      } else if (row.fire_at.getTime() >= now.getTime() - windowMs) {
        log.warn({ schedule: entry.id, slot: row.slot_time }, 'taking over a stale slot claim');
        out.push(await fire(entry, row, now));
      } else {
        const reason = `claimed by ${row.claimed_by} but never started; older than the catch-up window`;
        await store.decide(entry.id, row.slot_time, 'missed', reason, now);
        log.warn({ schedule: entry.id, slot: row.slot_time, reason }, 'scheduled slot missed');
        out.push(decision(entry, row, 'missed', reason));
      }
    }
  };

  /** A queued slot starts once nothing blocks it any more. */
  const startQueued = async (entry: ScheduleEntry, now: Date, out: SlotDecision[]) => {
    const queued = await store.queuedSlot(entry.id);
    if (!queued) return;
    const blockers = await store.blockers(entry.media, entry.profile, entry.conflictsWith);
    if (blockers.length > 0) return;
    const row = await store.takeQueued(entry.id, queued.slot_time, instance, now);
    if (row) out.push(await fire(entry, row, now));
  };

  /** New due slots: older ones reported, the latest claimed and fired. */
  const handleDue = async (entry: ScheduleEntry, now: Date, out: SlotDecision[]) => {
    const last = await store.lastSlotTime(entry.id);
    // A schedule never seen before starts with the first slot that fires after it was seen.
    const after =
      last ?? new Date((await store.firstSeen(entry.id, now)).getTime() - entry.offsetMs);
    const due = dueSlots(entry, after, now, windowMs);
    const reported = await store.reportMissed(entry, due.missed, instance, now);
    for (const m of reported) {
      log.warn(
        { schedule: entry.id, slot: m.slotTime, fireAt: m.fireAt, reason: m.reason },
        'scheduled slot missed',
      );
      out.push(
        decision(
          entry,
          { slot_time: m.slotTime, fire_at: m.fireAt, run_id: null },
          'missed',
          m.reason,
        ),
      );
    }
    if (due.truncated) {
      log.warn(
        { schedule: entry.id, window: formatDuration(windowMs) },
        'more slots were missed than are reported one by one',
      );
    }
    if (!due.run) return;
    const runId = slotRunId(prefix, entry.id, due.run);
    if (!(await store.claim(entry, due.run, runId, instance, now))) return;
    out.push(
      await fire(
        entry,
        { slot_time: due.run.slotTime, fire_at: due.run.fireAt, run_id: runId },
        now,
      ),
    );
  };

  return {
    instance,
    async tick(now) {
      await ensureReady();
      const out: SlotDecision[] = [];
      const errors: Error[] = [];
      for (const entry of deps.schedules.schedules) {
        if (!entry.enabled) continue;
        try {
          await recoverStale(entry, now, out);
          await startQueued(entry, now, out);
          await handleDue(entry, now, out);
        } catch (err) {
          log.error({ schedule: entry.id, err }, 'schedule tick failed');
          errors.push(err as Error);
        }
      }
      if (errors.length > 0) {
        throw new AggregateError(
          errors,
          `scheduler tick failed for ${errors.length} schedule(s): ${errors.map((e) => e.message).join('; ')}`,
        );
      }
      return out;
    },
  };
}

function toSlot(row: Pick<SlotRow, 'slot_time' | 'fire_at'>): Slot {
  return { slotTime: row.slot_time, fireAt: row.fire_at };
}
