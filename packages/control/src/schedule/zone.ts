/*
 * Time zone arithmetic on the runtime's IANA data (Intl), in plain ms. A "local" timestamp is a
 * wall-clock time written as the ms since the epoch at which UTC shows that wall-clock time, so
 * wall-clock times compare and step like numbers, without any time zone.
 */

/** 24 hours: longer than any UTC offset change, shorter than the time between two. */
const dayMs = 86_400_000;
const hourMs = 3_600_000;

const formatters = new Map<string, Intl.DateTimeFormat>();

function formatter(timeZone: string): Intl.DateTimeFormat {
  let f = formatters.get(timeZone);
  if (!f) {
    f = new Intl.DateTimeFormat('en-US', {
      timeZone,
      year: 'numeric',
      month: 'numeric',
      day: 'numeric',
      hour: 'numeric',
      minute: 'numeric',
      second: 'numeric',
      hourCycle: 'h23',
    });
    formatters.set(timeZone, f);
  }
  return f;
}

/** `1/15/2027, 09:00:00`: how `en-US` writes the numeric date and 24-hour time. */
const usDateTime = /^(\d+)\/(\d+)\/(\d+), (\d+):(\d+):(\d+)$/;

/** The wall-clock time of a whole-second `instant` in `timeZone`, asked of Intl. */
function wallClockOf(instant: number, timeZone: string): number {
  const f = formatter(timeZone);
  // format() is a few times faster than formatToParts(); the parts are the fallback should a
  // runtime ever write en-US differently.
  const m = usDateTime.exec(f.format(instant));
  if (m) {
    const [, month, day, year, hour, minute, second] = m.map(Number);
    return Date.UTC(year as number, (month as number) - 1, day, hour, minute, second);
  }
  const p: Partial<Record<Intl.DateTimeFormatPartTypes, string>> = {};
  for (const part of f.formatToParts(instant)) p[part.type] = part.value;
  return Date.UTC(
    Number(p.year),
    Number(p.month) - 1,
    Number(p.day),
    Number(p.hour),
    Number(p.minute),
    Number(p.second),
  );
}

/** Per zone, the offset of each UTC hour known to have one offset throughout. */
const hourOffsets = new Map<string, Map<number, number>>();
const maxCachedHours = 200_000;

/** The UTC offset of `timeZone` at `instant` (ms since the epoch), in ms, east positive. */
export function offsetAt(instant: number, timeZone: string): number {
  const whole = Math.floor(instant / 1000) * 1000;
  const hour = Math.floor(whole / hourMs);
  let cache = hourOffsets.get(timeZone);
  if (!cache) hourOffsets.set(timeZone, (cache = new Map<number, number>()));
  const known = cache.get(hour);
  if (known !== undefined) return known;
  // No zone changes its offset twice within an hour: if both ends of this hour agree, so does
  // all of it. An hour with a change is asked of Intl every time.
  const start = hour * hourMs;
  const first = wallClockOf(start, timeZone) - start;
  const last = wallClockOf(start + hourMs - 1000, timeZone) - (start + hourMs - 1000);
  if (first !== last) return wallClockOf(whole, timeZone) - whole;
  if (cache.size >= maxCachedHours) cache.clear();
  cache.set(hour, first);
  return first;
}

/** The wall-clock time of `instant` in `timeZone`, as a local timestamp (whole seconds). */
export function wallClockAt(instant: number, timeZone: string): number {
  const whole = Math.floor(instant / 1000) * 1000;
  return whole + offsetAt(whole, timeZone);
}

/**
 * What a wall-clock time (a local timestamp, whole seconds) is in `timeZone`:
 * - `instants`: the real instants showing it, ascending: one on an ordinary day, two when a
 *   fall-back repeats it (the first is the earlier, before the clocks went back);
 * - none when a spring-forward skips it; then `gapEnd` is the first instant whose wall clock is
 *   past it: the moment the clocks jumped (03:00 local for 02:30 in a 02:00 -> 03:00 gap).
 * Assumes at most one offset change within a day either side, as every IANA zone has since 1970.
 */
export function instantsOfWallClock(
  local: number,
  timeZone: string,
): { readonly instants: readonly number[]; readonly gapEnd?: number } {
  // An instant showing `local` is `local - offset` for an offset in force near it; an offset
  // changes at most once within a day either side, so these three samples include it.
  const offsets = [
    ...new Set([local - dayMs, local, local + dayMs].map((t) => offsetAt(t, timeZone))),
  ];
  const instants = [
    ...new Set(offsets.map((o) => local - o).filter((t) => wallClockAt(t, timeZone) === local)),
  ].sort((a, b) => a - b);
  if (instants.length > 0) return { instants };
  // Skipped: find the jump, the first whole second whose wall clock is past `local`. Around a
  // gap the wall clock only moves forward, so a binary search finds it.
  let lo = local - Math.max(...offsets) - 1000; // its wall clock is before `local`
  let hi = local - Math.min(...offsets); // and this one's after
  while (hi - lo > 1000) {
    const mid = lo + Math.floor((hi - lo) / 2000) * 1000;
    if (wallClockAt(mid, timeZone) > local) hi = mid;
    else lo = mid;
  }
  return { instants: [], gapEnd: hi };
}
