import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  formatDuration,
  loadMediaCatalog,
  parseDuration,
  repoRoot,
  runIdPattern,
} from '@freshet/core';
import path from 'node:path';
import {
  loadScheduleConfig,
  parseScheduleConfig,
  type ScheduleEntry,
  cronMatcher,
  dueSlots,
  jitterOffsetMs,
  maxReportedOld,
  nextSlots,
  slotRunId,
  formatInZone,
  scheduleTable,
} from '@freshet/control';

const media = loadMediaCatalog(path.join(repoRoot, 'packages/core/media/media.json'));
const hour = 3_600_000;
const minute = 60_000;

/** One parsed entry from a raw one (defaults filled in by the schema). */
function entry(raw: Record<string, unknown>): ScheduleEntry {
  const parsed = parseScheduleConfig({ schedules: [{ media: 'audio', ...raw }] }, media);
  return parsed.schedules[0] as ScheduleEntry;
}

void describe('durations', () => {
  void it('reads and writes jitter durations', () => {
    assert.equal(parseDuration('0'), 0);
    assert.equal(parseDuration('45s'), 45_000);
    assert.equal(parseDuration('30m'), 30 * minute);
    assert.equal(parseDuration('1h30m'), 90 * minute);
    assert.equal(parseDuration('250ms'), 250);
    assert.equal(parseDuration('1d'), 24 * hour);
    for (const bad of ['', 'abc', '30', '-5m', '1.5h', 'm30']) {
      assert.equal(parseDuration(bad), undefined, bad);
    }
    assert.equal(formatDuration(90 * minute + 5000), '1h30m5s');
    assert.equal(formatDuration(0), '0');
  });
});

void describe('jitter', () => {
  void it('gives each schedule a fixed offset within [0, jitter], in whole seconds', () => {
    const jitter = 30 * minute;
    const offsets = new Set<number>();
    for (let i = 0; i < 200; i++) {
      const offset = jitterOffsetMs(`schedule-${i}`, jitter);
      assert.ok(offset >= 0 && offset <= jitter, String(offset));
      assert.equal(offset % 1000, 0);
      assert.equal(jitterOffsetMs(`schedule-${i}`, jitter), offset, 'same id, same offset');
      offsets.add(offset);
    }
    // 200 ids over 1801 possible seconds: about 11 collisions are expected by chance alone.
    assert.ok(offsets.size >= 175, `offsets spread out (${offsets.size} distinct of 200)`);
    assert.ok(Math.min(...offsets) < jitter / 10 && Math.max(...offsets) > (jitter * 9) / 10);
    assert.equal(jitterOffsetMs('anything', 0), 0);
  });

  void it('starts two schedules due at the same minute apart, and at the same times after a restart', () => {
    const raw = {
      schedules: [
        { id: 'image-monthly', media: 'image', cron: '0 0 1 * *', jitter: '30m' },
        { id: 'audio-daily', media: 'audio', cron: '0 0 * * *', jitter: '30m' },
      ],
    };
    const now = new Date('2030-01-31T12:00:00Z');
    const first = scheduleTable(parseScheduleConfig(raw, media), now);
    const [image, audio] = first;
    assert.ok(image && audio);
    // Both are due at 2030-02-01T00:00Z; each starts at that slot plus its own offset.
    assert.equal(image.next[0]?.slotUtc, '2030-02-01T00:00:00.000Z');
    assert.equal(audio.next[0]?.slotUtc, '2030-02-01T00:00:00.000Z');
    assert.notEqual(image.offsetMs, audio.offsetMs);
    assert.notEqual(image.next[0]?.fireUtc, audio.next[0]?.fireUtc);
    for (const row of first) {
      for (const n of row.next) {
        assert.equal(Date.parse(n.fireUtc) - Date.parse(n.slotUtc), row.offsetMs);
      }
    }
    // A restart parses the file again: a new process, the very same times.
    const again = scheduleTable(parseScheduleConfig(structuredClone(raw), media), now);
    assert.deepEqual(again, first);
  });
});

void describe('cron slots', () => {
  void it('reads the expression in its time zone, DST included', () => {
    const m = cronMatcher('0 3 * * *', 'Europe/Berlin');
    assert.equal(
      m.next(new Date('2030-01-10T12:00:00Z')).toISOString(),
      '2030-01-11T02:00:00.000Z',
    );
    assert.equal(
      m.next(new Date('2030-07-10T12:00:00Z')).toISOString(),
      '2030-07-11T01:00:00.000Z',
    );
    assert.ok(m.matches(new Date('2030-07-11T01:00:00Z')));
    assert.ok(!m.matches(new Date('2030-07-11T02:00:00Z')));
    assert.equal(
      m.next(new Date('2030-07-11T01:00:00Z')).toISOString(),
      '2030-07-12T01:00:00.000Z',
      'strictly after',
    );
  });

  void it('lists the next fire times, counting a slot whose jittered start is still ahead', () => {
    const e = entry({ id: 'hourly', cron: '0 * * * *', jitter: '50m' });
    const slot = new Date('2030-03-01T10:00:00Z');
    const now = new Date(slot.getTime() + e.offsetMs - 1000);
    const next = nextSlots(e, now, 3);
    assert.deepEqual(
      next.map((s) => s.slotTime.toISOString()),
      ['2030-03-01T10:00:00.000Z', '2030-03-01T11:00:00.000Z', '2030-03-01T12:00:00.000Z'],
    );
    const later = nextSlots(e, new Date(slot.getTime() + e.offsetMs), 1);
    assert.equal(later[0]?.slotTime.toISOString(), '2030-03-01T11:00:00.000Z');
  });

  void it('formats a time in a zone with its offset', () => {
    const d = new Date('2030-07-01T00:17:42Z');
    assert.equal(formatInZone(d, 'Europe/Berlin'), '2030-07-01T02:17:42+02:00');
    assert.equal(formatInZone(d, 'America/New_York'), '2030-06-30T20:17:42-04:00');
    assert.equal(formatInZone(d, 'UTC'), '2030-07-01T00:17:42+00:00');
  });

  void it('derives a run id from the slot: the run id shape, the same for the same slot', () => {
    const e = entry({ id: 'audio-daily', cron: '0 0 * * *', jitter: '1h' });
    const [slot] = nextSlots(e, new Date('2030-01-01T12:00:00Z'), 1);
    assert.ok(slot);
    const id = slotRunId('freshet', e.id, slot);
    assert.match(id, runIdPattern);
    assert.ok(id.startsWith(slot.fireAt.toISOString().slice(0, 10).replaceAll('-', '')));
    assert.equal(slotRunId('freshet', e.id, { ...slot }), id);
    assert.notEqual(slotRunId('other', e.id, slot), id);
  });
});

void describe('due slots', () => {
  const e = entry({ id: 'hourly', cron: '0 * * * *' });
  const t = (iso: string) => new Date(iso);

  void it('runs the one slot that just came due', () => {
    const due = dueSlots(e, t('2030-01-01T09:00:00Z'), t('2030-01-01T10:00:05Z'), 6 * hour);
    assert.equal(due.run?.slotTime.toISOString(), '2030-01-01T10:00:00.000Z');
    assert.deepEqual(due.missed, []);
    assert.equal(
      dueSlots(e, t('2030-01-01T10:00:00Z'), t('2030-01-01T10:59:59Z'), hour).run,
      undefined,
    );
  });

  void it('catches up only the latest missed slot in the window and reports the others', () => {
    const due = dueSlots(e, t('2030-01-01T00:00:00Z'), t('2030-01-01T05:30:00Z'), 2 * hour);
    assert.equal(due.run?.slotTime.toISOString(), '2030-01-01T05:00:00.000Z');
    assert.deepEqual(
      due.missed.map((m) => [
        m.slotTime.toISOString().slice(11, 16),
        /catch-up window/.test(m.reason),
      ]),
      [
        ['01:00', true],
        ['02:00', true],
        ['03:00', true],
        ['04:00', false],
      ],
    );
    assert.match(due.missed[3]?.reason ?? '', /superseded by a later due slot/);
  });

  void it('reports, and does not run, a slot older than the window', () => {
    const daily = entry({ id: 'daily', cron: '0 0 * * *' });
    const due = dueSlots(daily, t('2030-01-01T00:00:00Z'), t('2030-01-02T03:00:00Z'), 2 * hour);
    assert.equal(due.run, undefined);
    assert.equal(due.missed.length, 1);
    assert.match(due.missed[0]?.reason ?? '', /older than the catch-up window/);
  });

  void it('bounds a long outage: the first slots are listed, then it jumps to the window', () => {
    const minutely = entry({ id: 'minutely', cron: '* * * * *' });
    const due = dueSlots(minutely, t('2030-01-01T00:00:00Z'), t('2030-01-08T00:00:00Z'), hour);
    assert.equal(due.truncated, true);
    assert.equal(due.run?.slotTime.toISOString(), '2030-01-08T00:00:00.000Z');
    const old = due.missed.filter((m) => /catch-up window/.test(m.reason));
    assert.equal(old.length, maxReportedOld);
    assert.equal(due.missed.length - old.length, 60, 'the hour inside the window, less the run');
  });
});

void describe('the schedules file', () => {
  void it('the default file: image monthly, audio daily', () => {
    const file = path.join(repoRoot, 'packages/core/config/schedules.json');
    const { schedules } = loadScheduleConfig(file, media);
    const byMedia = new Map(schedules.map((s) => [s.media, s]));
    assert.equal(byMedia.get('image')?.cron, '0 0 1 * *');
    assert.equal(byMedia.get('audio')?.cron, '0 0 * * *');
  });
});
