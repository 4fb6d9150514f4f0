import assert from 'node:assert/strict';
import path from 'node:path';
import { describe, it } from 'node:test';
import { loadMediaCatalog, repoRoot } from '@freshet/core';
import {
  parseScheduleConfig,
  type ScheduleEntry,
  cronMatcher,
  dstRule,
  dueSlots,
  nextSlots,
  formatInZone,
  scheduleTable,
} from '@freshet/control';

const media = loadMediaCatalog(path.join(repoRoot, 'packages/core/media/media.json'));
const minute = 60_000;
const hour = 60 * minute;
const day = 24 * hour;
const year = 2027;

/*
 * The reference the schedules are checked against is built here, independently of the code under
 * test: the zone's offsets sampled every hour of the year (and every minute of an hour in which
 * it changed), and the cron expressions read by a small evaluator of plain fields.
 */

/** A stretch of real time with one UTC offset: instants in [start, end). */
interface Segment {
  readonly start: number;
  readonly end: number;
  readonly offset: number;
}

function offsetOf(timeZone: string): (instant: number) => number {
  const f = new Intl.DateTimeFormat('en-US', { timeZone, timeZoneName: 'longOffset' });
  return (instant) => {
    const name = f.formatToParts(instant).find((p) => p.type === 'timeZoneName')?.value ?? '';
    const m = /^GMT(?:([+-])(\d\d):(\d\d))?$/.exec(name);
    assert.ok(m, `offset name ${name}`);
    const sign = m[1] === '-' ? -1 : 1;
    return m[1] ? sign * (Number(m[2]) * hour + Number(m[3]) * minute) : 0;
  };
}

/** The zone's offsets from `from` to `to` (all on whole minutes in the zones used here). */
function timeline(timeZone: string, from: number, to: number): Segment[] {
  const offset = offsetOf(timeZone);
  const segments: Segment[] = [];
  let start = from;
  let current = offset(from);
  for (let t = from; t < to; t += hour) {
    const after = offset(Math.min(t + hour, to));
    if (after === current) continue;
    let change = t + minute;
    while (offset(change) === current) change += minute;
    segments.push({ start, end: change, offset: current });
    start = change;
    current = offset(change);
  }
  segments.push({ start, end: to, offset: current });
  return segments;
}

/** A cron field of plain numbers, ranges, lists and steps. */
function field(text: string, min: number, max: number): Set<number> {
  const values = new Set<number>();
  for (const part of text.split(',')) {
    const [range = '', step = '1'] = part.split('/');
    const [lo, hi] =
      range === '*'
        ? [min, max]
        : range.includes('-')
          ? range.split('-').map(Number)
          : [Number(range), Number(range)];
    for (let v = lo ?? min; v <= (hi ?? max); v += Number(step)) values.add(v);
  }
  return values;
}

interface Fields {
  minutes: Set<number>;
  hours: Set<number>;
  days: Set<number>;
  months: Set<number>;
  weekdays: Set<number>;
}

function fieldsOf(cron: string): Fields {
  const [mi = '', h = '', dom = '', mon = '', dow = ''] = cron.split(' ');
  return {
    minutes: field(mi, 0, 59),
    hours: field(h, 0, 23),
    days: field(dom, 1, 31),
    months: field(mon, 1, 12),
    weekdays: field(dow, 0, 6),
  };
}

/** Whether the local date (a UTC-read timestamp) is one the expression names. */
function dateMatches(f: Fields, local: Date): boolean {
  return (
    f.days.has(local.getUTCDate()) &&
    f.months.has(local.getUTCMonth() + 1) &&
    f.weekdays.has(local.getUTCDay())
  );
}

type Kind = 'plain' | 'repeated' | 'skipped';

interface Expected {
  readonly fire: number;
  readonly kind: Kind;
  /** The local date and time the expression names, `2027-03-28T02:30`. */
  readonly named: string;
}

const localIso = (local: number) => new Date(local).toISOString().slice(0, 16);

/**
 * Fixed-time expressions: every local date of the year they name, once: at the named time, at
 * its first occurrence if it repeats, at the first instant after the gap if it is skipped.
 */
function expectedFixed(f: Fields, segments: readonly Segment[]): Expected[] {
  const out: Expected[] = [];
  for (let date = Date.UTC(year, 0, 1); date < Date.UTC(year + 1, 0, 1); date += day) {
    if (!dateMatches(f, new Date(date))) continue;
    for (const h of [...f.hours].sort((a, b) => a - b)) {
      for (const mi of [...f.minutes].sort((a, b) => a - b)) {
        const local = date + h * hour + mi * minute;
        const instants = segments
          .map((s) => local - s.offset)
          .filter((x, i) => {
            const s = segments[i] as Segment;
            return x >= s.start && x < s.end;
          });
        if (instants.length > 0) {
          out.push({
            fire: Math.min(...instants),
            kind: instants.length > 1 ? 'repeated' : 'plain',
            named: localIso(local),
          });
        } else {
          const after = segments.find((s) => s.start + s.offset > local);
          assert.ok(after, `a gap end after ${localIso(local)}`);
          out.push({ fire: after.start, kind: 'skipped', named: localIso(local) });
        }
      }
    }
  }
  return out;
}

/** Real-time expressions: every real minute of the year whose local time matches. */
function expectedRealTime(f: Fields, segments: readonly Segment[]): number[] {
  const out: number[] = [];
  for (const s of segments) {
    for (let x = Math.ceil(s.start / minute) * minute; x < s.end; x += minute) {
      const local = new Date(x + s.offset);
      if (
        local.getUTCFullYear() === year &&
        f.minutes.has(local.getUTCMinutes()) &&
        f.hours.has(local.getUTCHours()) &&
        dateMatches(f, local)
      ) {
        out.push(x);
      }
    }
  }
  return out;
}

function entryOf(cron: string, timezone: string): ScheduleEntry {
  const config = parseScheduleConfig(
    { schedules: [{ id: 'dst', media: 'audio', cron, timezone }] },
    media,
  );
  return config.schedules[0] as ScheduleEntry;
}

const zones = ['Europe/Berlin', 'America/New_York', 'Australia/Lord_Howe'];
const fixedTime = [
  '30 2 * * *',
  '0 0 * * *',
  '59 1 * * *',
  '30 2 * * 0',
  '30 2 1 * *',
  // Monthly on a day with a clock change in 2027: Berlin 28 March (02:00 -> 03:00) and 31 October
  // (03:00 -> 02:00), New York 14 March and 7 November, Lord Howe 3 October (02:00 -> 02:30) and
  // 4 April (02:00 -> 01:30).
  '30 2 28 * *',
  '30 2 31 * *',
  '30 2 14 * *',
  '30 1 7 * *',
  '15 2 3 * *',
  '45 1 4 * *',
];
const realTime = ['0 * * * *', '*/30 * * * *'];

/** The year in the zone: from its first local instant (exclusive bound, a second before). */
function yearIn(timeZone: string): { from: number; to: number; segments: Segment[] } {
  const rough = timeline(timeZone, Date.UTC(year - 1, 11, 30), Date.UTC(year + 1, 0, 3));
  const instantOf = (local: number) => {
    const s = rough.find((seg) => local - seg.offset >= seg.start && local - seg.offset < seg.end);
    assert.ok(s);
    return local - s.offset;
  };
  return {
    from: instantOf(Date.UTC(year, 0, 1)) - 1000,
    to: instantOf(Date.UTC(year + 1, 0, 1)),
    segments: rough,
  };
}

/** What the table (`freshet schedules`) lists within the year. */
function tableFires(entry: ScheduleEntry, from: number, to: number, atLeast: number): number[] {
  const [row] = scheduleTable({ source: 'test', schedules: [entry] }, new Date(from), atLeast + 2);
  assert.ok(row);
  const fires = row.next.map((n) => Date.parse(n.slotUtc));
  assert.ok(
    fires.some((t) => t >= to),
    'the table reaches past the year',
  );
  return fires.filter((t) => t < to);
}

/**
 * What the scheduler finds due, ticking every `tickMs` from `from` to `to` (a catch-up window as
 * long as the tick, so every slot is seen): each slot once, as the slot run or a missed one.
 */
function scheduledFires(entry: ScheduleEntry, from: number, to: number, tickMs: number): number[] {
  const seen: number[] = [];
  let last = new Date(from);
  for (let now = from + tickMs; now < to + tickMs; now += tickMs) {
    const due = dueSlots(entry, last, new Date(Math.min(now, to - 1)), tickMs);
    assert.equal(due.truncated, false);
    const times = [...due.missed, ...(due.run ? [due.run] : [])].map((s) => s.slotTime.getTime());
    seen.push(...times);
    if (times.length > 0) last = new Date(Math.max(...times));
  }
  return seen;
}

const iso = (times: readonly number[]) => times.map((t) => new Date(t).toISOString());

function assertStrictlyIncreasing(times: readonly number[], label: string): void {
  for (let i = 1; i < times.length; i++) {
    assert.ok(
      (times[i] as number) > (times[i - 1] as number),
      `${label}: ${iso([times[i - 1] as number, times[i] as number]).join(' then ')}`,
    );
  }
}

void describe('daylight saving time, by cron convention', () => {
  void it('tells fixed-time from real-time expressions (a * in the minute or hour field)', () => {
    for (const cron of [...fixedTime, '@daily', '@weekly', '0 30 2 * * *', '0 1-5 * * *']) {
      assert.equal(dstRule(cron), 'fixed-time', cron);
    }
    for (const cron of [...realTime, '@hourly', '*/15 * * * *', '0 */2 * * *', '* 2 * * *']) {
      assert.equal(dstRule(cron), 'real-time', cron);
    }
  });

  for (const timeZone of zones) {
    const { from, to, segments } = yearIn(timeZone);

    void it(`${timeZone} ${year}: the reference sees its clock changes`, () => {
      // Two changes a year in each zone: the tests below really meet them.
      assert.equal(segments.length, 3, JSON.stringify(segments));
    });

    for (const cron of fixedTime) {
      void it(`${timeZone} "${cron}": once on every local date it names, at the expected instant; the scheduler agrees`, () => {
        const entry = entryOf(cron, timeZone);
        const expected = expectedFixed(fieldsOf(cron), segments);
        const fires = tableFires(entry, from, to, expected.length);
        assert.deepEqual(
          fires.map((t) => formatInZone(new Date(t), timeZone)),
          expected.map((e) => formatInZone(new Date(e.fire), timeZone)),
        );
        assertStrictlyIncreasing(fires, cron);
        // One fire per named date, never two; the named time itself unless DST moved it.
        const dates = expected.map((e) => e.named.slice(0, 10));
        assert.equal(new Set(dates).size, dates.length, 'one named time per date here');
        assert.equal(fires.length, dates.length);
        for (const [i, e] of expected.entries()) {
          const local = formatInZone(new Date(fires[i] as number), timeZone);
          if (e.kind !== 'skipped') assert.equal(local.slice(0, 16), e.named, e.kind);
          else assert.ok(local.slice(0, 16) > e.named, `${e.named} fires after its gap: ${local}`);
        }
        // The scheduler, ticking on the dot (and a second before), starts the same slots.
        let last = new Date(from);
        for (const fire of fires) {
          const early = dueSlots(entry, last, new Date(fire - 1000), hour);
          assert.equal(early.run, undefined, `nothing due before ${new Date(fire).toISOString()}`);
          assert.deepEqual(early.missed, []);
          const due = dueSlots(entry, last, new Date(fire), hour);
          assert.equal(due.run?.slotTime.getTime(), fire);
          assert.deepEqual(due.missed, []);
          last = new Date(fire);
        }
      });
    }

    for (const cron of realTime) {
      void it(`${timeZone} "${cron}": every real instant it matches, strictly increasing; the scheduler agrees`, () => {
        const entry = entryOf(cron, timeZone);
        const expected = expectedRealTime(fieldsOf(cron), segments);
        const fires = tableFires(entry, from, to, expected.length);
        assert.deepEqual(iso(fires), iso(expected));
        assertStrictlyIncreasing(fires, cron);
        // The scheduler, around each clock change (the rest of the year is plain arithmetic).
        for (const change of segments.slice(1).map((s) => s.start)) {
          const [start, end] = [change - 3 * day, change + 3 * day];
          assert.deepEqual(
            iso(scheduledFires(entry, start, end, 6 * hour)),
            iso(fires.filter((t) => t > start && t < end)),
          );
        }
      });
    }
  }

  void it('the DST days themselves, as an operator reads them', () => {
    const local = (cron: string, timeZone: string, fromIso: string, count: number) =>
      nextSlots(entryOf(cron, timeZone), new Date(fromIso), count).map((s) =>
        formatInZone(s.slotTime, timeZone),
      );
    // Spring forward: the skipped 02:30 fires when the clocks jump; fall back: the first 02:30.
    assert.deepEqual(local('30 2 * * *', 'Europe/Berlin', '2027-03-27T00:00:00Z', 3), [
      '2027-03-27T02:30:00+01:00',
      '2027-03-28T03:00:00+02:00',
      '2027-03-29T02:30:00+02:00',
    ]);
    assert.deepEqual(local('30 2 * * *', 'Europe/Berlin', '2027-10-30T00:00:00Z', 3), [
      '2027-10-30T02:30:00+02:00',
      '2027-10-31T02:30:00+02:00',
      '2027-11-01T02:30:00+01:00',
    ]);
    assert.deepEqual(local('30 1 * * *', 'America/New_York', '2027-11-06T12:00:00Z', 2), [
      '2027-11-07T01:30:00-04:00',
      '2027-11-08T01:30:00-05:00',
    ]);
    assert.deepEqual(local('30 2 * * *', 'America/New_York', '2027-03-13T12:00:00Z', 2), [
      '2027-03-14T03:00:00-04:00',
      '2027-03-15T02:30:00-04:00',
    ]);
    // Lord Howe moves by 30 minutes: 02:00 -> 02:30 in October, 02:00 -> 01:30 in April.
    assert.deepEqual(local('15 2 * * *', 'Australia/Lord_Howe', '2027-10-02T00:00:00Z', 2), [
      '2027-10-03T02:30:00+11:00',
      '2027-10-04T02:15:00+11:00',
    ]);
    assert.deepEqual(local('45 1 * * *', 'Australia/Lord_Howe', '2027-04-03T00:00:00Z', 2), [
      '2027-04-04T01:45:00+11:00',
      '2027-04-05T01:45:00+10:30',
    ]);
    // Real time: the repeated hour fires twice, the skipped one not at all.
    assert.deepEqual(local('0 * * * *', 'Europe/Berlin', '2027-10-30T23:30:00Z', 3), [
      '2027-10-31T02:00:00+02:00',
      '2027-10-31T02:00:00+01:00',
      '2027-10-31T03:00:00+01:00',
    ]);
    assert.deepEqual(local('0 * * * *', 'Europe/Berlin', '2027-03-27T23:30:00Z', 2), [
      '2027-03-28T01:00:00+01:00',
      '2027-03-28T03:00:00+02:00',
    ]);
    assert.deepEqual(local('*/30 * * * *', 'Australia/Lord_Howe', '2027-04-03T14:15:00Z', 4), [
      '2027-04-04T01:30:00+11:00',
      '2027-04-04T01:30:00+10:30',
      '2027-04-04T02:00:00+10:30',
      '2027-04-04T02:30:00+10:30',
    ]);
    assert.deepEqual(local('*/30 * * * *', 'Australia/Lord_Howe', '2027-10-02T14:45:00Z', 3), [
      '2027-10-03T01:30:00+10:30',
      '2027-10-03T02:30:00+11:00',
      '2027-10-03T03:00:00+11:00',
    ]);
  });

  void it('local times skipped together fire once, at the jump', () => {
    const fires = (cron: string, count: number) => {
      const m = cronMatcher(cron, 'Europe/Berlin');
      const out: string[] = [];
      let t = new Date('2027-03-27T00:00:00Z');
      for (let i = 0; i < count; i++) out.push(formatInZone((t = m.next(t)), 'Europe/Berlin'));
      return out;
    };
    // 02:00 and 02:30 do not exist on 28 March: the day's slot is 03:00, once.
    assert.deepEqual(fires('0,30 2 * * *', 4), [
      '2027-03-27T02:00:00+01:00',
      '2027-03-27T02:30:00+01:00',
      '2027-03-28T03:00:00+02:00',
      '2027-03-29T02:00:00+02:00',
    ]);
    // With 03:00 itself named too, still one slot at 03:00.
    assert.deepEqual(fires('0,30 2-3 * * *', 7).slice(4), [
      '2027-03-28T03:00:00+02:00',
      '2027-03-28T03:30:00+02:00',
      '2027-03-29T02:00:00+02:00',
    ]);
    const m = cronMatcher('0,30 2 * * *', 'Europe/Berlin');
    assert.ok(m.matches(new Date('2027-03-28T01:00:00Z')));
    assert.ok(!m.matches(new Date('2027-03-28T01:00:01Z')));
    assert.ok(!m.matches(new Date('2027-03-28T01:30:00Z')));
  });
});
