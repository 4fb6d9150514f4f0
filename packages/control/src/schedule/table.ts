import type { ScheduleConfig } from './config.js';
import { formatDuration } from '@freshet/core';
import { nextSlots } from './slots.js';

/** One upcoming firing of a schedule, as ISO 8601 strings. */
export interface UpcomingFire {
  /** The cron time, UTC. */
  readonly slotUtc: string;
  /** When the run starts (cron time plus the jitter offset), UTC. */
  readonly fireUtc: string;
  /** The same start time in the schedule's time zone, with its UTC offset. */
  readonly fireLocal: string;
}

/** One row of the schedule table (`freshet schedules`, the dashboard). */
export interface ScheduleTableRow {
  readonly id: string;
  readonly media: string;
  readonly profile: string;
  readonly cron: string;
  readonly timezone: string;
  readonly jitter: string;
  /** This schedule's fixed start offset after each slot, in ms. */
  readonly offsetMs: number;
  readonly overlap: string;
  readonly conflictsWith: readonly string[];
  readonly enabled: boolean;
  /** The next fire times after `now` (none for a disabled entry). */
  readonly next: readonly UpcomingFire[];
}

/**
 * The schedule table as data: every entry with its next `count` (default 3) fire times after
 * `now`, jitter included, in UTC and in the entry's time zone.
 */
export function scheduleTable(config: ScheduleConfig, now: Date, count = 3): ScheduleTableRow[] {
  return config.schedules.map((e) => ({
    id: e.id,
    media: e.media,
    profile: e.profile,
    cron: e.cron,
    timezone: e.timezone,
    jitter: e.jitter,
    offsetMs: e.offsetMs,
    overlap: e.overlap,
    conflictsWith: e.conflictsWith,
    enabled: e.enabled,
    next: e.enabled
      ? nextSlots(e, now, count).map((s) => ({
          slotUtc: s.slotTime.toISOString(),
          fireUtc: s.fireAt.toISOString(),
          fireLocal: formatInZone(s.fireAt, e.timezone),
        }))
      : [],
  }));
}

/** The schedule table as text, one block per schedule. */
export function formatScheduleTable(rows: readonly ScheduleTableRow[]): string {
  const lines: string[] = [];
  for (const r of rows) {
    const extra = [
      `overlap ${r.overlap}`,
      `jitter ${r.jitter} (offset ${formatDuration(r.offsetMs)})`,
      ...(r.conflictsWith.length > 0 ? [`conflicts with ${r.conflictsWith.join(', ')}`] : []),
      ...(r.enabled ? [] : ['DISABLED']),
    ];
    lines.push(`${r.id}  ${r.media} ${r.profile}  "${r.cron}" ${r.timezone}  ${extra.join(', ')}`);
    for (const n of r.next) {
      lines.push(`  ${n.fireLocal} ${r.timezone}  =  ${n.fireUtc}  (slot ${n.slotUtc})`);
    }
  }
  return `${lines.join('\n')}\n`;
}

const zoneFormatters = new Map<string, Intl.DateTimeFormat>();

/** `2026-12-01T00:17:42+01:00`: `date` as wall-clock time in `timeZone`, with its offset. */
export function formatInZone(date: Date, timeZone: string): string {
  // Building a formatter costs far more than using one: one per zone, reused.
  let format = zoneFormatters.get(timeZone);
  if (!format) {
    format = new Intl.DateTimeFormat('en-US', {
      timeZone,
      year: 'numeric',
      month: '2-digit',
      day: '2-digit',
      hour: '2-digit',
      minute: '2-digit',
      second: '2-digit',
      hourCycle: 'h23',
      timeZoneName: 'longOffset',
    });
    zoneFormatters.set(timeZone, format);
  }
  const parts = format.formatToParts(date);
  const get = (type: Intl.DateTimeFormatPartTypes) =>
    parts.find((p) => p.type === type)?.value ?? '';
  const offset = get('timeZoneName').replace(/^GMT/, '') || '+00:00';
  return `${get('year')}-${get('month')}-${get('day')}T${get('hour')}:${get('minute')}:${get('second')}${offset}`;
}
