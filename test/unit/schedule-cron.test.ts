import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { cronMatcher, cronProblem } from '@freshet/control';

const utc = (iso: string) => new Date(`${iso}Z`);

void describe('cron expressions (cron-parser, public API)', () => {
  void it('accepts 5 and 6 fields, names, L, # and nicknames', () => {
    for (const cron of [
      '0 3 * * *',
      '30 0 3 * * *',
      '0 0 * * thu',
      '0 0 1 jan,jul *',
      '0 0 L * *',
      '0 0 * * 1#2',
      '@daily',
      '@midnight',
      '@Hourly',
    ]) {
      assert.equal(cronProblem(cron), undefined, cron);
    }
  });

  void it('names the field that is wrong, and the shape that is', () => {
    assert.match(cronProblem('0 25 * * *') ?? '', /^invalid hour field "25" \(.*0-23\)$/);
    assert.match(cronProblem('61 0 3 * * *') ?? '', /^invalid second field "61"/);
    assert.match(cronProblem('0 0 32 * *') ?? '', /^invalid day-of-month field "32"/);
    assert.match(cronProblem('0 0 * * 8') ?? '', /^invalid day-of-week field "8"/);
    assert.match(cronProblem('') ?? '', /expected 5 or 6 fields .* but got 0/);
    assert.match(cronProblem('0 3 * *') ?? '', /expected 5 or 6 fields .* but got 4/);
    assert.match(
      cronProblem('@weekdays') ?? '',
      /unknown nickname "@weekdays"; use one of @yearly/,
    );
  });

  void it('refuses hashed (H) values: they are random, the jitter is not', () => {
    assert.match(cronProblem('H 3 * * *') ?? '', /minute field "H": hashed \(H\) values/);
    assert.match(cronProblem('0 H(0-5)/2 * * *') ?? '', /hour field/);
  });

  void it('fires at the first matching second strictly after the given time', () => {
    const m = cronMatcher('0 3 * * *', 'UTC');
    assert.deepEqual(m.next(utc('2026-01-01T03:00:00')), utc('2026-01-02T03:00:00'));
    assert.deepEqual(m.next(utc('2026-01-01T02:59:59.500')), utc('2026-01-01T03:00:00'));
    assert.equal(m.matches(utc('2026-01-01T03:00:00')), true);
    assert.equal(m.matches(utc('2026-01-01T03:00:01')), false);
    // The last day of the month and the second Monday, read in the schedule's zone.
    assert.deepEqual(
      cronMatcher('0 0 L * *', 'Europe/Berlin').next(utc('2026-02-01T00:00:00')),
      utc('2026-02-27T23:00:00'),
    );
    assert.deepEqual(
      cronMatcher('0 9 * * mon#2', 'America/New_York').next(utc('2026-03-01T00:00:00')),
      utc('2026-03-09T13:00:00'),
    );
  });

  void it('reads day-of-month and day-of-week as cron does: either one matches', () => {
    const m = cronMatcher('0 0 13 * fri', 'UTC');
    // 2026-02-06 is a Friday, 2026-02-13 a Friday the 13th, 2026-03-13 a Friday too.
    assert.deepEqual(m.next(utc('2026-02-01T00:00:00')), utc('2026-02-06T00:00:00'));
    assert.deepEqual(m.next(utc('2026-02-06T00:00:00')), utc('2026-02-13T00:00:00'));
  });
});
