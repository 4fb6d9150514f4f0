import { createHash } from 'node:crypto';
import type { ScheduleEntry } from './config.js';
import { formatDuration, newRunId } from '@freshet/core';

/** One firing of a schedule: the cron time and the jittered time the run starts. */
export interface Slot {
  /** The time the cron expression names (the slot's identity). */
  readonly slotTime: Date;
  /** `slotTime` plus the schedule's jitter offset: when the run starts. */
  readonly fireAt: Date;
}

/** A slot that will not run, and why. */
export interface MissedSlot extends Slot {
  readonly reason: string;
}

/** The slots of one schedule that have come due, and what to do with them. */
export interface DueSlots {
  /** The slot to start now: the latest due slot inside the catch-up window. */
  readonly run?: Slot;
  /** Due slots reported, not run: older than the window, or superseded by `run`. */
  readonly missed: readonly MissedSlot[];
  /** More slots were missed than are listed (only the first {@link maxReportedOld} are). */
  readonly truncated: boolean;
}

/** At most this many slots older than the catch-up window are reported one by one per tick. */
export const maxReportedOld = 100;
/** At most this many slots inside the window are walked per tick (the rest wait for the next). */
const maxWalkedRecent = 1000;

/** The slot of `entry` at cron time `slotTime`. */
export function slotAt(entry: Pick<ScheduleEntry, 'offsetMs'>, slotTime: Date): Slot {
  return { slotTime, fireAt: new Date(slotTime.getTime() + entry.offsetMs) };
}

/**
 * The run id of a slot: the UTC fire time plus 4 hex digits of a hash of the deployment prefix,
 * schedule id and slot. Same shape as `newRunId` (`runIdPattern`), so every name derived from a
 * run id works; the same slot always maps to the same id, so it cannot start two runs.
 */
export function slotRunId(prefix: string, scheduleId: string, slot: Slot): string {
  const hash = createHash('sha256')
    .update(`${prefix}\0${scheduleId}\0${slot.slotTime.toISOString()}`)
    .digest('hex');
  return newRunId(slot.fireAt, hash.slice(0, 4));
}

/**
 * The next `count` slots of `entry` whose fire time is after `now`. Slot times come from
 * `entry.matcher.next` alone, as in {@link dueSlots}: the table and the scheduler agree on every
 * day, DST days included (see `DstRule` in cron.ts).
 */
export function nextSlots(
  entry: Pick<ScheduleEntry, 'offsetMs' | 'matcher'>,
  now: Date,
  count: number,
): Slot[] {
  const slots: Slot[] = [];
  let cursor = new Date(now.getTime() - entry.offsetMs);
  while (slots.length < count) {
    cursor = entry.matcher.next(cursor);
    const slot = slotAt(entry, cursor);
    if (slot.fireAt.getTime() > now.getTime()) slots.push(slot);
  }
  return slots;
}

/**
 * The slots of `entry` after slot time `afterSlot` whose fire time is at or before `now`. Of
 * those that fired within the last `windowMs`, only the latest runs (a missed slot is caught up
 * once); the others, and every older one, are reported as missed. Slot times come from
 * `entry.matcher.next`, as in {@link nextSlots}.
 */
export function dueSlots(
  entry: Pick<ScheduleEntry, 'offsetMs' | 'matcher'>,
  afterSlot: Date,
  now: Date,
  windowMs: number,
): DueSlots {
  const nowMs = now.getTime();
  const windowStart = nowMs - windowMs;
  const missed: MissedSlot[] = [];
  const recent: Slot[] = [];
  let truncated = false;
  let old = 0;
  let cursor = entry.matcher.next(afterSlot);
  while (cursor.getTime() + entry.offsetMs <= nowMs && recent.length < maxWalkedRecent) {
    const slot = slotAt(entry, cursor);
    if (slot.fireAt.getTime() >= windowStart) {
      recent.push(slot);
      cursor = entry.matcher.next(cursor);
    } else if (old < maxReportedOld) {
      old += 1;
      missed.push({
        ...slot,
        reason: `due at ${slot.fireAt.toISOString()} while no scheduler was running; older than the catch-up window (${formatDuration(windowMs)})`,
      });
      cursor = entry.matcher.next(cursor);
    } else {
      // Too many to list: jump to the first slot inside the window.
      truncated = true;
      const jumpTo = Math.max(cursor.getTime(), windowStart - entry.offsetMs - 1);
      cursor = entry.matcher.next(new Date(jumpTo));
    }
  }
  const caughtUp = cursor.getTime() + entry.offsetMs > nowMs;
  // If the walk stopped early the latest due slot is still ahead: report what was walked and
  // let the next tick go on from there.
  const run = caughtUp ? recent.at(-1) : undefined;
  for (const slot of run ? recent.slice(0, -1) : recent) {
    missed.push({
      ...slot,
      reason: `superseded by a later due slot${run ? ` (${run.slotTime.toISOString()})` : ''}: a missed slot is caught up only once`,
    });
  }
  return { ...(run ? { run } : {}), missed, truncated };
}
