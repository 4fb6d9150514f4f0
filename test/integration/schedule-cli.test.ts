import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { startScheduleDaemon } from '@freshet/control';
import { writeClipMedia } from '../helpers/clip-media.js';
import { createTestEnv, type TestEnv } from '../helpers/env.js';
import { runCli, spawnCli } from '../helpers/processes.js';

const dir = mkdtempSync(path.join(tmpdir(), 'freshet-schedules-'));
function schedulesFile(name: string, schedules: Record<string, unknown>[]): string {
  const file = path.join(dir, `${name}.json`);
  writeFileSync(file, JSON.stringify({ schedules }));
  return file;
}

const valid = { id: 'clip-hourly', media: 'clip', cron: '0 * * * *', timezone: 'UTC' };

/** `freshet schedule` / `freshet schedules` as an operator runs them, on the real services. */
describe('the schedule commands', { timeout: 180_000 }, () => {
  let t: TestEnv;

  before(async () => {
    t = await createTestEnv({ FRESHET_MEDIA_FILE: writeClipMedia() });
  });

  after(async () => {
    await t?.close();
  });

  /** Nothing of the scheduler reached the database or the queues. */
  async function assertNothingWritten(): Promise<void> {
    const { rows } = await t.dbs.api.query<{ slots: number; seen: number; runs: number }>(
      `SELECT (SELECT count(*)::int FROM freshet.schedule_slots) AS slots,
              (SELECT count(*)::int FROM freshet.schedule_state) AS seen,
              (SELECT count(*)::int FROM freshet.runs) AS runs`,
    );
    assert.deepEqual(rows[0], { slots: 0, seen: 0, runs: 0 });
    const counts = await t.queues.stage.getJobCounts();
    assert.equal(
      Object.values(counts).reduce((a, b) => a + b, 0),
      0,
    );
  }

  const badFiles: [string, Record<string, unknown>, RegExp][] = [
    [
      'an invalid cron expression',
      { ...valid, id: 'bad-cron', cron: '0 0 32 * *' },
      /schedule "bad-cron" \(schedules\[1\]\): cron "0 0 32 \* \*": invalid day-of-month field "32"/,
    ],
    [
      'an unknown time zone',
      { ...valid, id: 'bad-zone', timezone: 'Mars/Olympus_Mons' },
      /schedule "bad-zone" \(schedules\[1\]\): timezone: unknown time zone "Mars\/Olympus_Mons"/,
    ],
    [
      'an unknown media type',
      { ...valid, id: 'bad-media', media: 'video' },
      /schedule "bad-media" \(schedules\[1\]\): unknown media type "video"; known types: clip, slowclip/,
    ],
  ];

  for (const [what, entry, message] of badFiles) {
    it(`freshet schedule refuses a file with ${what}: exit 2, the entry named, nothing started`, async () => {
      const file = schedulesFile(String(entry.id), [valid, entry]);
      const result = await runCli(['schedule'], { ...t.env, FRESHET_SCHEDULES_FILE: file });
      assert.equal(result.code, 2, JSON.stringify(result));
      assert.match(result.stderr, new RegExp(`^freshet: invalid schedules file ${file}:\\n`));
      assert.match(result.stderr, message);
      assert.equal(result.stdout, '');
      await assertNothingWritten();
    });
  }

  it('freshet schedules prints each entry with its next fire times, local and UTC', async () => {
    const file = schedulesFile('listing', [
      { ...valid, id: 'berlin', cron: '30 2 * * *', timezone: 'Europe/Berlin', jitter: '20m' },
    ]);
    const result = await runCli(['schedules', '--file', file, '--count', '2', '--json'], t.env);
    assert.equal(result.code, 0, result.stderr);
    const { schedules } = JSON.parse(result.stdout) as {
      schedules: { id: string; offsetMs: number; next: { fireUtc: string; fireLocal: string }[] }[];
    };
    const [berlin] = schedules;
    assert.equal(berlin?.id, 'berlin');
    assert.equal(berlin?.next.length, 2);
    for (const n of berlin?.next ?? []) {
      assert.equal(Date.parse(n.fireLocal), Date.parse(n.fireUtc), 'the same instant');
      assert.match(n.fireLocal, /^\d{4}-\d\d-\d\dT(02|03):\d\d:\d\d\+0[12]:00$/);
    }
    const text = await runCli(['schedules', '--file', file], t.env);
    assert.equal(text.code, 0, text.stderr);
    assert.match(
      text.stdout,
      /^berlin {2}clip production {2}"30 2 \* \* \*" Europe\/Berlin {2}overlap skip, jitter 20m \(offset /,
    );
    assert.equal(text.stdout.trim().split('\n').length, 4);
    await assertNothingWritten();
  });

  it('freshet schedules --count 400: a daily 02:30 in Berlin fires once every local day, DST days too', async () => {
    const file = schedulesFile('berlin-400', [
      { ...valid, id: 'berlin-daily', cron: '30 2 * * *', timezone: 'Europe/Berlin' },
    ]);
    const result = await runCli(['schedules', '--file', file, '--count', '400', '--json'], t.env);
    assert.equal(result.code, 0, result.stderr);
    const { schedules } = JSON.parse(result.stdout) as {
      schedules: { next: { fireLocal: string }[] }[];
    };
    const fires = schedules[0]?.next.map((n) => n.fireLocal) ?? [];
    assert.equal(fires.length, 400);
    // Consecutive local dates, each once: no day without a fire, none with two.
    const dates = fires.map((f) => f.slice(0, 10));
    for (let i = 1; i < dates.length; i++) {
      const gap = Date.parse(`${dates[i]}T00:00:00Z`) - Date.parse(`${dates[i - 1]}T00:00:00Z`);
      assert.equal(gap, 86_400_000, `${fires[i - 1]} then ${fires[i]}`);
    }
    // 400 days hold at least one spring-forward: its skipped 02:30 fires at 03:00 summer time,
    // the moment the clocks jump. Every other day fires at 02:30, in winter or summer time.
    const jumps = fires.filter((f) => !f.includes('T02:30:00'));
    assert.ok(jumps.length >= 1 && jumps.length <= 2, jumps.join(', '));
    for (const f of jumps) assert.match(f, /^\d{4}-03-(2[5-9]|3[01])T03:00:00\+02:00$/);
    // The fall-back day fires at the first 02:30 (still summer time, +02:00).
    for (let i = 1; i < fires.length; i++) {
      if (fires[i - 1]?.endsWith('+02:00') && fires[i]?.endsWith('+01:00')) {
        assert.match(fires[i - 1] ?? '', /^\d{4}-10-(2[5-9]|3[01])T02:30:00\+02:00$/);
      }
    }
    await assertNothingWritten();
  });

  it('the daemon ticks with node-cron and starts the due slot once', async () => {
    const file = schedulesFile('every-second', [
      { ...valid, id: 'every-second', cron: '* * * * * *', overlap: 'skip' },
    ]);
    const daemon = await startScheduleDaemon(t.config, t.logger, { file, tickCron: '* * * * * *' });
    try {
      const deadline = Date.now() + 20_000;
      let outcomes: string[] = [];
      // Wait for a started slot and, after it, a skipped one (the run is still active).
      while (Date.now() < deadline) {
        const { rows } = await t.dbs.api.query<{ outcome: string }>(
          `SELECT outcome FROM freshet.schedule_slots WHERE schedule_id = 'every-second' ORDER BY slot_time`,
        );
        outcomes = rows.map((r) => r.outcome);
        if (
          outcomes.includes('started') &&
          outcomes.indexOf('skipped') > outcomes.indexOf('started')
        ) {
          break;
        }
        await delay(200);
      }
      assert.ok(outcomes.includes('skipped'), outcomes.join(','));
    } finally {
      await daemon.close();
    }
    const { rows } = await t.dbs.api.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM freshet.runs WHERE requested_by = 'schedule:every-second'`,
    );
    assert.equal(rows[0]?.n, 1);
  });

  it('freshet schedule runs until SIGTERM and then exits 0', async () => {
    const file = schedulesFile('daemon', [valid]);
    const cli = spawnCli(['schedule', '--file', file], { ...t.env, LOG_LEVEL: 'info' });
    try {
      await cli.waitFor(/"msg":"scheduler started"/);
    } finally {
      assert.equal(await cli.stop('SIGTERM'), 0, cli.output());
    }
    assert.match(cli.output(), /"msg":"scheduler stopped"/);
  });
});
