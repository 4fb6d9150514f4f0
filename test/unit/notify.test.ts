import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { describe, it } from 'node:test';
import { createLogger } from '../../packages/core/src/logger.js';
import {
  approvalHoldOf,
  buildAlertPayload,
  createNotifier,
  type RunEvent,
} from '../../packages/core/src/alerts/index.js';
import { formatDurationWords as formatDuration } from '../../packages/core/src/duration.js';
import { maskSecrets } from '../../packages/core/src/redact.js';
import type { RunRow } from '../../packages/core/src/run-store.js';

const t0 = new Date('2024-05-01T00:00:00.000Z');
const minutes = (n: number) => new Date(t0.getTime() + n * 60_000);

function run(overrides: Partial<RunRow> = {}): RunRow {
  return {
    id: '20240501-000000-abcd',
    prefix: 'freshet',
    media: 'image',
    profile: 'production',
    status: 'running',
    stage: 'index',
    chunk_count: 20,
    plan: null,
    counts: null,
    error: null,
    waiting_reason: null,
    waiting_since: null,
    requested_by: 'cron',
    created_at: t0,
    started_at: minutes(1),
    finished_at: null,
    updated_at: minutes(2),
    ...overrides,
  };
}

/** Every mrkdwn or plain text of the blocks, joined. */
const blockText = (p: ReturnType<typeof buildAlertPayload>) => JSON.stringify(p.blocks);

void describe('buildAlertPayload', () => {
  void it('a run held for approval carries why and the rows per source, largest drops first', () => {
    const counts = {
      shrink: {
        totals: { live: 10000, shadow: 8800, change: -0.12 },
        sources: {
          flickr: { live: 4000, shadow: 2800, change: -0.3 },
          wiki: { live: 5000, shadow: 4990, change: -0.002 },
          nasa: { live: 1000, shadow: 1010, change: 0.01 },
        },
        limits: { maxDrop: 0.1, maxSourceDrop: 0.5, sourceMinRows: 1000 },
        drops: ['total rows drop 12.0% (10000 -> 8800), beyond PROMOTE_MAX_DROP 10%'],
        outcome: 'held',
      },
    };
    const approval = approvalHoldOf(counts);
    assert.deepEqual(approval?.reasons, counts.shrink.drops);
    const held = run({
      status: 'awaiting-approval',
      stage: 'finalize',
      counts,
      error: `held for approval: ${counts.shrink.drops[0]}`,
    });
    const p = buildAlertPayload({
      kind: 'awaiting-approval',
      run: held,
      ...(approval ? { approval } : {}),
    });
    assert.match(p.text, /image \(production\) refresh awaits approval/);
    assert.match(p.text, /Held for approval: total rows drop 12\.0% \(10000 -&gt; 8800\)/);
    assert.match(p.text, /freshet approve 20240501-000000-abcd/);
    assert.deepEqual(p.freshet.approval, approval);
    assert.equal(p.freshet.kind, 'awaiting-approval');
    const text = blockText(p);
    assert.match(text, /10,000 live → 8,800 new \(-1,200\)/);
    assert.ok(
      text.indexOf('`flickr` 4,000 → 2,800') < text.indexOf('`wiki` 5,000 → 4,990'),
      'largest drop first',
    );
    assert.ok(!text.includes('`nasa`'), 'growth is not a drop');
    assert.ok(!text.includes('*Error*'), 'the error repeats the reasons: not shown twice');
    // Other kinds carry no approval.
    assert.equal(buildAlertPayload({ kind: 'failed', run: held, approval }).freshet.approval, null);
    // A shadow build held by its comparison: its reasons, and its rows per source.
    const shadow = approvalHoldOf({
      comparison: {
        ...counts.shrink,
        diffs: [],
        shiftedFields: [],
        withinThresholds: false,
        reasons: ['source flickr changes -30.0% (4000 -> 2800)'],
      },
      shrink: { ...counts.shrink, outcome: 'within-limits', drops: [] },
    });
    assert.deepEqual(shadow?.reasons, ['source flickr changes -30.0% (4000 -> 2800)']);
    assert.equal(approvalHoldOf({}), undefined);
  });

  void it('a failure carries the error, stage and run in text, blocks and fields', () => {
    const p = buildAlertPayload({
      kind: 'failed',
      run: run({
        status: 'failed',
        stage: 'finalize',
        error: 'finalize failed: index has 1999 documents, table has 2000 <rows>',
        finished_at: minutes(31),
      }),
      at: minutes(31),
      url: 'https://freshet.example.org/runs/20240501-000000-abcd',
    });
    assert.match(p.text, /image \(production\) refresh failed/);
    assert.match(p.text, /20240501-000000-abcd/);
    assert.match(p.text, /1999 documents/);
    assert.equal(p.blocks[0]?.type, 'header');
    assert.ok(p.blocks.every((b) => b.type !== 'section' || b.text.text.length <= 3000));
    // mrkdwn escapes what Slack would read as markup.
    assert.match(blockText(p), /&lt;rows&gt;/);
    assert.match(
      blockText(p),
      /<https:\/\/freshet\.example\.org\/runs\/20240501-000000-abcd\|open run>/,
    );
    assert.deepEqual(
      {
        kind: p.freshet.kind,
        runId: p.freshet.runId,
        media: p.freshet.media,
        profile: p.freshet.profile,
        status: p.freshet.status,
        stage: p.freshet.stage,
        durationMs: p.freshet.durationMs,
        sources: p.freshet.sources,
        url: p.freshet.url,
      },
      {
        kind: 'failed',
        runId: '20240501-000000-abcd',
        media: 'image',
        profile: 'production',
        status: 'failed',
        stage: 'finalize',
        durationMs: 30 * 60_000,
        sources: null,
        url: 'https://freshet.example.org/runs/20240501-000000-abcd',
      },
    );
    assert.equal(
      p.freshet.error,
      'finalize failed: index has 1999 documents, table has 2000 <rows>',
    );
  });

  void it('a blocked run says so and names the failing chunk', () => {
    const p = buildAlertPayload({
      kind: 'blocked',
      run: run({ status: 'blocked', error: 'chunk 3 index failed all attempts: mapper_parsing' }),
    });
    assert.match(p.text, /refresh is blocked/);
    assert.match(p.text, /chunk 3 index failed all attempts/);
    assert.equal(p.freshet.kind, 'blocked');
    assert.equal(p.freshet.stage, 'index');
    assert.equal(p.freshet.finishedAt, null);
  });

  void it('a stuck run reports since when, for how long and what is running', () => {
    const p = buildAlertPayload({
      kind: 'stuck',
      run: run({ waiting_reason: 'Elasticsearch disk 91% used', waiting_since: minutes(3) }),
      at: minutes(20),
      lastProgressAt: minutes(2),
      running: [{ step: 'copy', chunk: 7, attempt: 2, worker: 'host:42', startedAt: minutes(2) }],
      runningCount: 3,
    });
    assert.match(p.text, /is stuck/);
    assert.match(p.text, /No progress for 18 min/);
    assert.match(blockText(p), /copy chunk 7/);
    assert.match(blockText(p), /and 2 more/);
    assert.equal(p.freshet.stuckForMs, 18 * 60_000);
    assert.equal(p.freshet.lastProgressAt, minutes(2).toISOString());
    assert.equal(p.freshet.runningCount, 3);
    assert.equal(p.freshet.waitingReason, 'Elasticsearch disk 91% used');
    assert.equal(p.freshet.waitingSince, minutes(3).toISOString());
    assert.match(p.text, /Waiting for headroom since .*: Elasticsearch disk 91% used/);
    assert.deepEqual(p.freshet.running, [
      {
        step: 'copy',
        chunk: 7,
        attempt: 2,
        worker: 'host:42',
        startedAt: minutes(2).toISOString(),
      },
    ]);
  });

  void it('a success lists every source in the fields and the largest changes in the text', () => {
    const sources: Record<string, { before: number; after: number; change: number }> = {};
    for (let i = 0; i < 15; i++) {
      const before = 1000;
      const after = 1000 + (i % 2 ? -i : i) * 10;
      sources[`source-${i}`] = { before, after, change: after - before };
    }
    sources.newcomer = { before: 0, after: 500, change: 500 };
    const event: RunEvent = {
      kind: 'succeeded',
      run: run({ status: 'succeeded', stage: 'report', finished_at: minutes(61) }),
      sources,
      skipped: { deleted: 3 },
      rejected: { 'bad url': 2, 'bad license': 1 },
    };
    const p = buildAlertPayload(event, { topSources: 5 });
    assert.deepEqual(p.freshet.sources, sources);
    assert.equal(Object.keys(p.freshet.sources ?? {}).length, 16);
    const before = 15 * 1000;
    const after = Object.values(sources).reduce((a, s) => a + s.after, 0);
    assert.deepEqual(p.freshet.totals, { before, after, change: after - before, sources: 16 });
    assert.deepEqual(p.freshet.skipped, { deleted: 3 });
    assert.deepEqual(p.freshet.rejected, { 'bad url': 2, 'bad license': 1 });
    assert.equal(p.freshet.durationMs, 60 * 60_000);
    // Largest absolute change first: newcomer +500, then source-14 +140, source-13 -130, ...
    assert.match(p.text, /Largest changes: newcomer \+500, source-14 \+140, source-13 -130/);
    assert.match(p.text, /and 11 more/);
    assert.doesNotMatch(p.text, /source-2 /);
    assert.match(blockText(p), /and 11 more sources/);
    assert.match(blockText(p), /Skipped 3 rows, rejected 3/);
    assert.match(p.text, /15,000 → /);
  });

  void it('a success without per-source counts says so', () => {
    const p = buildAlertPayload({ kind: 'succeeded', run: run({ status: 'succeeded' }) });
    assert.equal(p.freshet.sources, null);
    assert.equal(p.freshet.totals, null);
    assert.match(blockText(p), /No per-source counts/);
  });

  void it('masks passwords quoted in errors', () => {
    const p = buildAlertPayload({
      kind: 'blocked',
      run: run({
        status: 'blocked',
        error: 'cannot reach PostgreSQL at postgres://freshet:hunter2@db:5432/api',
      }),
      detail: 'es at https://elastic:s3cret@es:9200 said no',
    });
    const all = JSON.stringify(p);
    assert.doesNotMatch(all, /hunter2|s3cret/);
    assert.match(p.freshet.error ?? '', /postgres:\/\/freshet:\*\*\*@db:5432\/api/);
    assert.equal(maskSecrets('redis://:pw@h:6379'), 'redis://:***@h:6379');
  });

  void it('formats durations', () => {
    assert.equal(formatDuration(45_000), '45 s');
    assert.equal(formatDuration(16 * 60_000), '16 min');
    assert.equal(formatDuration(125 * 60_000), '2 h 5 min');
  });
});

/** A logger writing into an array of parsed lines. */
function captureLogger() {
  const lines: Record<string, unknown>[] = [];
  const raw: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const line of chunk.toString().split('\n').filter(Boolean)) {
        raw.push(line);
        lines.push(JSON.parse(line) as Record<string, unknown>);
      }
      done();
    },
  });
  return { logger: createLogger({ LOG_LEVEL: 'debug' }, stream), lines, raw };
}

const secretUrl = 'https://hooks.example.org/services/T000/B000/XXXXsecretXXXX';

/** A fetch that answers from a script: a status, or an error to throw. */
function scriptedFetch(script: (number | Error)[]) {
  const calls: { url: string; body: unknown; headers: unknown }[] = [];
  const impl = ((input: string | URL | Request, init?: RequestInit) => {
    calls.push({
      url: input instanceof Request ? input.url : input.toString(),
      body: JSON.parse(init?.body as string) as unknown,
      headers: init?.headers,
    });
    const next = script.shift() ?? 200;
    if (next instanceof Error) return Promise.reject(next);
    return Promise.resolve(
      new Response(next === 200 ? 'ok' : `error ${next} at ${secretUrl}`, {
        status: next,
        headers: next === 429 ? { 'retry-after': '0.01' } : {},
      }),
    );
  }) as typeof fetch;
  return { impl, calls };
}

const failedEvent: RunEvent = { kind: 'failed', run: run({ status: 'failed', error: 'boom' }) };

void describe('createNotifier', () => {
  void it('posts the payload as JSON to the webhook', async () => {
    const { logger } = captureLogger();
    const f = scriptedFetch([200]);
    const n = createNotifier({ ALERT_WEBHOOK_URL: secretUrl }, logger, { fetch: f.impl });
    assert.equal(n.enabled, true);
    assert.equal(await n.notify(failedEvent), 'sent');
    assert.equal(f.calls.length, 1);
    assert.equal(f.calls[0]?.url, secretUrl);
    assert.deepEqual(f.calls[0]?.headers, { 'content-type': 'application/json' });
    assert.equal((f.calls[0]?.body as { freshet: { kind: string } }).freshet.kind, 'failed');
  });

  void it('retries network errors, 5xx and 429, then delivers', async () => {
    const { logger } = captureLogger();
    const f = scriptedFetch([new TypeError('fetch failed'), 503, 429, 200]);
    const n = createNotifier({ ALERT_WEBHOOK_URL: secretUrl }, logger, {
      fetch: f.impl,
      backoffMs: 1,
    });
    await n.notify(failedEvent);
    assert.equal(f.calls.length, 4);
  });

  void it('gives up after its attempts without throwing, and warns without the URL', async () => {
    const { logger, lines, raw } = captureLogger();
    const f = scriptedFetch([500, 500, 500, 500, 500]);
    const n = createNotifier({ ALERT_WEBHOOK_URL: secretUrl }, logger, {
      fetch: f.impl,
      backoffMs: 1,
      attempts: 3,
    });
    assert.equal(await n.notify(failedEvent), 'failed');
    assert.equal(f.calls.length, 3);
    const warning = lines.find((l) => l.msg === 'alert not delivered');
    assert.equal(warning?.status, 500);
    assert.equal(warning?.runId, failedEvent.run.id);
    assert.doesNotMatch(raw.join('\n'), /XXXXsecretXXXX|hooks\.example\.org\/services/);
  });

  void it('does not retry a 4xx other than 429', async () => {
    const { logger, lines } = captureLogger();
    const f = scriptedFetch([404, 200]);
    const n = createNotifier({ ALERT_WEBHOOK_URL: secretUrl }, logger, {
      fetch: f.impl,
      backoffMs: 1,
    });
    await n.notify(failedEvent);
    assert.equal(f.calls.length, 1);
    assert.equal(lines.find((l) => l.msg === 'alert not delivered')?.status, 404);
  });

  void it('never logs the URL from an error that quotes it', async () => {
    const { logger, raw } = captureLogger();
    const f = scriptedFetch([new Error(`connect ECONNREFUSED ${secretUrl}`)]);
    const n = createNotifier({ ALERT_WEBHOOK_URL: secretUrl }, logger, {
      fetch: f.impl,
      attempts: 1,
    });
    await n.notify(failedEvent);
    assert.match(raw.join('\n'), /ECONNREFUSED <webhook>/);
    assert.doesNotMatch(raw.join('\n'), /XXXXsecretXXXX/);
  });

  void it('times out a receiver that never answers', async () => {
    const { logger, lines } = captureLogger();
    const hang = ((_input: string | URL | Request, init?: RequestInit) =>
      new Promise((_resolve, reject) => {
        // A real socket keeps the process alive; AbortSignal.timeout's timer alone does not.
        const socket = setInterval(() => undefined, 1000);
        init?.signal?.addEventListener('abort', () => {
          clearInterval(socket);
          reject(init.signal?.reason as Error);
        });
      })) as typeof fetch;
    const n = createNotifier({ ALERT_WEBHOOK_URL: secretUrl }, logger, {
      fetch: hang,
      attempts: 1,
      timeoutMs: 20,
    });
    await n.notify(failedEvent);
    assert.match(String(lines.find((l) => l.msg === 'alert not delivered')?.reason), /Timeout/);
  });

  void it('sends nothing when no webhook is configured', async () => {
    const { logger } = captureLogger();
    const f = scriptedFetch([]);
    const n = createNotifier({}, logger, { fetch: f.impl });
    assert.equal(n.enabled, false);
    assert.equal(await n.notify(failedEvent), 'disabled');
    await n.notifyRunStatus('20240501-000000-abcd');
    await n.close();
    assert.equal(f.calls.length, 0);
  });
});
