import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { loadMediaCatalog, repoRoot } from '@freshet/core';
import { loadScheduleConfig, parseScheduleConfig, ScheduleConfigError } from '@freshet/control';

const media = loadMediaCatalog(path.join(repoRoot, 'packages/core/media/media.json'));
const good = { id: 'audio-daily', media: 'audio', cron: '0 0 * * *', timezone: 'UTC' };

/** The ScheduleConfigError that parsing `schedules` throws. */
function problems(schedules: unknown[]): ScheduleConfigError {
  try {
    parseScheduleConfig({ schedules }, media, 'test.json');
  } catch (err) {
    assert.ok(
      err instanceof ScheduleConfigError,
      `expected ScheduleConfigError, got ${String(err)}`,
    );
    return err;
  }
  assert.fail('the schedules were accepted');
}

void describe('schedules file validation', () => {
  void it('accepts a valid entry and fills in the defaults', () => {
    const { schedules } = parseScheduleConfig({ schedules: [good] }, media);
    const [e] = schedules;
    assert.equal(e?.profile, 'production');
    assert.equal(e?.overlap, 'skip');
    assert.equal(e?.jitterMs, 0);
    assert.equal(e?.offsetMs, 0);
    assert.deepEqual(e?.conflictsWith, []);
    assert.equal(e?.enabled, true);
  });

  void it('names the entry and the cron field that is wrong', () => {
    const err = problems([good, { ...good, id: 'broken', cron: '0 25 * * *' }]);
    assert.equal(err.problems.length, 1);
    assert.match(err.message, /test\.json/);
    assert.match(
      err.problems[0] ?? '',
      /schedule "broken" \(schedules\[1\]\): cron "0 25 \* \* \*": invalid hour field "25"/,
    );
    assert.equal(err.exitCode, 2);
    assert.match(
      problems([{ ...good, cron: 'every day' }]).message,
      /audio-daily.*expected 5 or 6 fields/,
    );
  });

  void it('rejects an unknown time zone with the fix', () => {
    const err = problems([{ ...good, timezone: 'Europe/Atlantis' }]);
    assert.match(
      err.message,
      /schedule "audio-daily".*unknown time zone "Europe\/Atlantis"; use an IANA name/,
    );
  });

  void it('rejects an unknown media type, in the entry or in conflictsWith, listing the known ones', () => {
    const err = problems([
      { ...good, media: 'video' },
      { ...good, id: 'other', conflictsWith: ['images'] },
    ]);
    assert.match(
      err.problems[0] ?? '',
      /"audio-daily".*unknown media type "video"; known types: image, audio/,
    );
    assert.match(err.problems[1] ?? '', /"other".*conflictsWith names unknown media type "images"/);
  });

  void it('lists every problem of every entry at once', () => {
    const err = problems([
      { ...good, jitter: 'soon', overlap: 'stack' },
      { ...good },
      { id: 'Bad Id', media: 'audio', cron: '* * * * *', extra: 1 },
      'not an object',
    ]);
    const text = err.problems.join('\n');
    assert.match(text, /"audio-daily" \(schedules\[0\]\): overlap/);
    assert.match(text, /"audio-daily" \(schedules\[1\]\): id "audio-daily" is used twice/);
    assert.match(text, /schedules\[2\]\): id: must be 1-63 lower-case letters/);
    assert.match(text, /schedules\[2\]\): entry: Unrecognized key: "extra"/);
    assert.match(text, /schedules\[3\]: entry:/);
    assert.match(problems([{ ...good, jitter: 'soon' }]).message, /jitter must be a duration like/);
  });

  void it('explains a file it cannot read', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'freshet-schedules-'));
    const file = path.join(dir, 'schedules.json');
    writeFileSync(file, '{ "schedules": [ ');
    assert.throws(
      () => loadScheduleConfig(file, media),
      (err: Error) => {
        assert.ok(err instanceof ScheduleConfigError);
        assert.match(
          err.message,
          new RegExp(`invalid schedules file ${file}:\\n  - cannot read it`),
        );
        return true;
      },
    );
    assert.throws(() => parseScheduleConfig({ schedule: [] }, media), /schedules: /);
  });
});
