// The dashboard's HTTP surface on the real Redis and PostgreSQL: authentication and roles on
// every changing route (Freshet's own and Bull Board's), the REST API's statuses, health
// probes, metrics, dry runs, the waiting reason, the stuck-run monitor, and that no token
// reaches the logs. No worker runs here: started runs stay queued, which is all the conflict
// and control checks need (test/integration/dashboard-shadow.test.ts runs a worker).
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import {
  aliasFilters,
  CHUNK_QUEUE,
  createProducerRedis,
  createQueues,
  RedisUnavailableError,
  getMedia,
  loadConfig,
  nonSensitiveQuery,
  repoRoot,
  seedSynthetic,
  STAGE_QUEUE,
  stageOrder,
  UserError,
} from '@freshet/core';
import { startDashboard } from '@freshet/dashboard';
import { openProducer, ScheduleStore, startRefresh } from '@freshet/control';
import { createDashboardWorld, type As, type DashboardWorld } from '../helpers/dashboard.js';
import { startRedisServer, type RedisServer } from '../helpers/faults.js';

const unknownRun = '20000101-000000-abcd';
const TEST_MS = 60_000;
/** Rows of the image catalog the dry runs plan over. */
const CATALOG_ROWS = 600;

/** Writes a schedules file (FRESHET_SCHEDULES_FILE) with `schedules`; returns its path. */
function writeSchedules(schedules: unknown[]): string {
  const file = path.join(mkdtempSync(path.join(tmpdir(), 'freshet-schedules-')), 'schedules.json');
  writeFileSync(file, JSON.stringify({ schedules }));
  return file;
}

/** A webhook receiver on 127.0.0.1 that hands out the JSON bodies POSTed to it. */
interface Receiver {
  readonly url: string;
  /** Every body received so far. */
  readonly received: readonly Record<string, unknown>[];
  /** The first body received (or to be received) for which `match` is true. */
  next(match: (body: Record<string, unknown>) => boolean): Promise<Record<string, unknown>>;
  close(): Promise<void>;
}

async function startReceiver(): Promise<Receiver> {
  const bodies: Record<string, unknown>[] = [];
  const waiters: {
    match: (b: Record<string, unknown>) => boolean;
    resolve: (b: Record<string, unknown>) => void;
  }[] = [];
  const server: Server = createServer((req, res) => {
    let text = '';
    req.setEncoding('utf8').on('data', (c: string) => (text += c));
    req.on('end', () => {
      res.writeHead(200).end('ok');
      const body = JSON.parse(text) as Record<string, unknown>;
      bodies.push(body);
      for (const w of [...waiters]) {
        if (w.match(body)) {
          waiters.splice(waiters.indexOf(w), 1);
          w.resolve(body);
        }
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/hook`,
    received: bodies,
    next(match) {
      const found = bodies.find(match);
      if (found) return Promise.resolve(found);
      return new Promise((resolve) => waiters.push({ match, resolve }));
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** The queue prefix's Redis keys with their types: what a dry run must leave as it was. */
async function redisKeys(w: DashboardWorld): Promise<string[]> {
  const redis = createProducerRedis(w.t.config);
  try {
    const keys = (await redis.keys(`${w.t.config.FRESHET_QUEUE_PREFIX}:*`)).sort();
    return await Promise.all(keys.map(async (k) => `${k}:${await redis.type(k)}`));
  } finally {
    redis.disconnect();
  }
}

/** Rows of the run store tables (runs, audit, stages, chunks, attempts, logs). */
async function storeCounts(w: DashboardWorld): Promise<Record<string, number>> {
  const counts: Record<string, number> = {};
  for (const table of ['runs', 'audit', 'stages', 'chunks', 'attempts', 'logs']) {
    const { rows } = await w.t.dbs.api.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM freshet.${table}`,
    );
    counts[table] = rows[0]?.n ?? -1;
  }
  return counts;
}

/** Parses a JSON response body, asserting it is exactly `{ error: string }` with no stack. */
async function errorBody(res: Response): Promise<string> {
  const body = (await res.json()) as Record<string, unknown>;
  assert.deepEqual(Object.keys(body), ['error'], JSON.stringify(body));
  assert.equal(typeof body.error, 'string');
  assert.doesNotMatch(body.error as string, /\n\s+at |node_modules|\.ts:\d+/);
  return body.error as string;
}

/** One value of a metric series in Prometheus text, or undefined. */
function metric(text: string, series: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

describe('dashboard REST API, auth and metrics', { timeout: 180_000 }, () => {
  let w: DashboardWorld;
  /** A run started by the operator; stays queued (no worker). */
  let runId: string;

  /** Every route that changes something, with a run id and job id to aim at. */
  const changingRoutes = (id: string) => ({
    freshet: [
      ['POST', '/api/runs', { media: 'audio' }],
      ['POST', `/api/runs/${id}/pause`, undefined],
      ['POST', `/api/runs/${id}/resume`, undefined],
      ['POST', `/api/runs/${id}/cancel`, undefined],
      ['POST', `/api/runs/${id}/retry`, undefined],
      ['POST', `/api/runs/${id}/approve`, undefined],
      ['POST', `/api/runs/${id}/discard`, undefined],
      ['POST', '/api/runs', { media: 'image', dryRun: true }],
      ['POST', '/api/runs', { media: 'audio', shadow: true }],
      ['POST', '/api/media/audio/rollback', undefined],
    ] as const,
    board: [
      ['PUT', '/queues/api/queues/pause'],
      ['PUT', '/queues/api/queues/resume'],
      ...[STAGE_QUEUE, CHUNK_QUEUE].flatMap(
        (q) =>
          [
            ['PUT', `/queues/api/queues/${q}/pause`],
            ['PUT', `/queues/api/queues/${q}/resume`],
            ['PUT', `/queues/api/queues/${q}/retry/failed`],
            ['PUT', `/queues/api/queues/${q}/retry/completed`],
            ['PUT', `/queues/api/queues/${q}/clean/completed`],
            ['PUT', `/queues/api/queues/${q}/promote`],
            ['PUT', `/queues/api/queues/${q}/empty`],
            ['PUT', `/queues/api/queues/${q}/obliterate`],
            ['PUT', `/queues/api/queues/${q}/concurrency`],
            ['POST', `/queues/api/queues/${q}/add`],
          ] as const,
      ),
      ['PUT', `/queues/api/queues/${STAGE_QUEUE}/${id}.preflight/retry`],
      ['PUT', `/queues/api/queues/${STAGE_QUEUE}/${id}.preflight/clean`],
      ['PUT', `/queues/api/queues/${STAGE_QUEUE}/${id}.preflight/promote`],
      ['PATCH', `/queues/api/queues/${STAGE_QUEUE}/${id}.preflight/update-data`],
    ] as const,
  });

  /** Nothing a refused request could have changed has changed. */
  async function assertUntouched(): Promise<void> {
    for (const q of w.t.queues.all()) assert.equal(await q.isPaused(), false, `${q.name} paused`);
    const run = await w.t.store.getRun(runId);
    assert.equal(run.status, 'queued');
    const job = await w.t.queues.stage.getJob(`${runId}.preflight`);
    assert.ok(job, 'the preflight job is still there');
    assert.deepEqual(Object.keys(job.data as object).sort(), ['media', 'profile', 'runId']);
    const { rows } = await w.t.dbs.api.query<{ n: number }>(
      'SELECT count(*)::int AS n FROM freshet.runs',
    );
    assert.equal(rows[0]?.n, 1, 'no other run was started');
  }

  before(async () => {
    w = await createDashboardWorld({
      FRESHET_SCHEDULES_FILE: writeSchedules([
        {
          id: 'image-nightly',
          media: 'image',
          cron: '0 3 * * *',
          timezone: 'Europe/Berlin',
          jitter: '30m',
        },
        { id: 'audio-weekly', media: 'audio', cron: '0 4 * * 1', enabled: false },
      ]),
    });
    await seedSynthetic(w.t.dbs.catalog, getMedia(w.t.media, 'image'), { rows: CATALOG_ROWS });
    const res = await w.request('/api/runs', {
      as: 'operator',
      method: 'POST',
      json: { media: 'image' },
    });
    assert.equal(res.status, 202, await res.clone().text());
    runId = ((await res.json()) as { runId: string }).runId;
  });

  after(async () => {
    await w?.close();
  });

  it('answers /healthz and /readyz without credentials', { timeout: TEST_MS }, async () => {
    const health = await w.request('/healthz');
    assert.equal(health.status, 200);
    assert.deepEqual(await health.json(), { status: 'ok' });
    const ready = await w.request('/readyz');
    assert.equal(ready.status, 200);
    assert.deepEqual(await ready.json(), {
      status: 'ready',
      checks: { redis: 'ok', api: 'ok' },
    });
  });

  it(
    'asks for credentials everywhere else, with a Basic challenge',
    { timeout: TEST_MS },
    async () => {
      for (const p of [
        '/',
        `/runs/${runId}`,
        '/api/runs',
        `/api/runs/${runId}`,
        '/api/schedules',
        '/queues/',
        '/queues/api/queues',
        '/metrics',
        '/assets/app.js',
        '/nope',
      ]) {
        const res = await w.request(p);
        assert.equal(res.status, 401, p);
        assert.equal(res.headers.get('www-authenticate'), 'Basic realm="freshet"', p);
        await errorBody(res);
      }
      const wrong: Record<string, string>[] = [
        { authorization: 'Bearer not-the-token' },
        { authorization: `Bearer ${w.tokens.operator}x` },
        { authorization: `Basic ${Buffer.from(`viewer:${w.tokens.operator}`).toString('base64')}` },
        { authorization: `Basic ${Buffer.from(`admin:${w.tokens.operator}`).toString('base64')}` },
        { authorization: `Basic ${Buffer.from(w.tokens.operator).toString('base64')}` },
        { authorization: `Token ${w.tokens.operator}` },
        { authorization: w.tokens.operator },
      ];
      for (const headers of wrong) {
        const res = await w.request('/api/runs', { headers });
        assert.equal(res.status, 401, headers.authorization);
      }
    },
  );

  it(
    'answers 401 to every changing route without credentials, and changes nothing',
    { timeout: TEST_MS },
    async () => {
      const routes = changingRoutes(runId);
      for (const [method, p, json] of routes.freshet) {
        const res = await w.request(p, { method, ...(json ? { json } : {}) });
        assert.equal(res.status, 401, `${method} ${p}`);
        assert.equal(res.headers.get('www-authenticate'), 'Basic realm="freshet"');
      }
      for (const [method, p] of routes.board) {
        const res = await w.request(p, { method, json: {} });
        assert.equal(res.status, 401, `${method} ${p}`);
      }
      await assertUntouched();
    },
  );

  it('lets the viewer read everything', { timeout: TEST_MS }, async () => {
    for (const as of ['viewer', 'viewer-basic'] as As[]) {
      for (const p of [
        '/',
        `/runs/${runId}`,
        '/api/runs',
        `/api/runs/${runId}`,
        '/api/session',
        '/api/schedules',
        '/queues/',
        '/queues/api/queues',
        `/queues/api/queues/${STAGE_QUEUE}/${runId}.preflight`,
        '/metrics',
        '/assets/app.js',
        '/assets/style.css',
      ]) {
        const res = await w.request(p, { as });
        assert.equal(res.status, 200, `${as} GET ${p}`);
        await res.arrayBuffer();
      }
    }
    const session = (await (await w.request('/api/session', { as: 'viewer' })).json()) as Record<
      string,
      unknown
    >;
    assert.equal(session.role, 'viewer');
    assert.equal(session.canOperate, false);
    const board = (await (await w.request('/queues/api/queues', { as: 'viewer' })).json()) as {
      queues: { name: string; readOnlyMode: boolean }[];
    };
    assert.deepEqual(board.queues.map((q) => q.name).sort(), [CHUNK_QUEUE, STAGE_QUEUE].sort());
    assert.ok(
      board.queues.every((q) => q.readOnlyMode),
      'the viewer board is read-only',
    );
  });

  it(
    'answers the viewer 403 on Freshet changes and 405 on Bull Board writes',
    { timeout: TEST_MS },
    async () => {
      const routes = changingRoutes(runId);
      for (const as of ['viewer', 'viewer-basic'] as As[]) {
        for (const [method, p, json] of routes.freshet) {
          const res = await w.request(p, { as, method, ...(json ? { json } : {}) });
          assert.equal(res.status, 403, `${as} ${method} ${p}`);
          assert.match(await errorBody(res), /viewer/);
        }
        for (const [method, p] of routes.board) {
          const res = await w.request(p, { as, method, json: {} });
          assert.equal(res.status, 405, `${as} ${method} ${p}`);
        }
      }
      await assertUntouched();
    },
  );

  it('shows the operator a full board whose writes work', { timeout: TEST_MS }, async () => {
    const board = (await (await w.request('/queues/api/queues', { as: 'operator' })).json()) as {
      queues: { name: string; readOnlyMode: boolean; allowRetries: boolean }[];
    };
    assert.equal(board.queues.length, 2);
    assert.ok(board.queues.every((q) => !q.readOnlyMode && q.allowRetries));
    const html = await (await w.request('/queues/', { as: 'operator-basic' })).text();
    assert.match(html, /Freshet queues/);

    const pause = await w.request(`/queues/api/queues/${CHUNK_QUEUE}/pause`, {
      as: 'operator',
      method: 'PUT',
    });
    assert.equal(pause.status, 200);
    assert.equal(await w.t.queues.chunk.isPaused(), true);
    const text = await (await w.request('/metrics', { as: 'operator' })).text();
    assert.equal(metric(text, `freshet_queue_paused{queue="${CHUNK_QUEUE}"}`), 1);
    assert.equal(metric(text, `freshet_queue_depth{queue="${CHUNK_QUEUE}"}`), 0);
    const resume = await w.request(`/queues/api/queues/${CHUNK_QUEUE}/resume`, {
      as: 'operator',
      method: 'PUT',
    });
    assert.equal(resume.status, 200);
    assert.equal(await w.t.queues.chunk.isPaused(), false);
  });

  it(
    'refuses changing requests a browser sends from another site',
    { timeout: TEST_MS },
    async () => {
      const crossSite: Record<string, string>[] = [
        { origin: 'http://evil.example' },
        { 'sec-fetch-site': 'cross-site' },
        { 'sec-fetch-site': 'same-site', origin: 'http://sub.example' },
      ];
      for (const headers of crossSite) {
        const start = await w.request('/api/runs', {
          as: 'operator',
          method: 'POST',
          json: { media: 'audio' },
          headers,
        });
        assert.equal(start.status, 403, JSON.stringify(headers));
        const board = await w.request(`/queues/api/queues/${STAGE_QUEUE}/pause`, {
          as: 'operator',
          method: 'PUT',
          headers,
        });
        assert.equal(board.status, 403, JSON.stringify(headers));
      }
      await assertUntouched();
    },
  );

  it(
    'wants JSON or X-Requested-With on a changing POST, and an Origin of the same scheme, host and port',
    { timeout: TEST_MS },
    async () => {
      const raw = (p: string, method: string, headers: Record<string, string>, body?: string) =>
        fetch(`${w.dashboard.url}${p}`, {
          method,
          headers: { ...w.auth('operator'), ...headers },
          ...(body !== undefined ? { body } : {}),
        });
      // What a cross-site form can send: a POST with a text or form body, no custom header.
      for (const [p, body] of [
        ['/api/runs', '{"media":"audio"}'],
        [`/api/runs/${runId}/cancel`, ''],
        [`/queues/api/queues/${STAGE_QUEUE}/add`, '{"name":"x","data":{}}'],
      ] as const) {
        for (const type of [
          'text/plain',
          'application/x-www-form-urlencoded',
          'multipart/form-data; boundary=x',
        ]) {
          const res = await raw(p, 'POST', { 'content-type': type }, body || 'x=1');
          assert.equal(res.status, 415, `${type} ${p}`);
          assert.match(await errorBody(res), /Content-Type: application\/json/);
        }
        const bare = await raw(p, 'POST', {});
        assert.equal(bare.status, 403, `POST ${p} without a body or header`);
        assert.match(await errorBody(bare), /X-Requested-With/);
      }
      // Origins: a scheme, port or host other than the request's is cross-site; "null" too.
      const port = new URL(w.dashboard.url).port;
      for (const origin of [
        `https://127.0.0.1:${port}`,
        `http://127.0.0.1:${Number(port) + 1}`,
        `http://localhost:${port}`,
        'null',
        'not a url',
      ]) {
        const res = await raw(`/api/runs/${runId}/pause`, 'POST', {
          origin,
          'x-requested-with': 'test',
        });
        assert.equal(res.status, 403, origin);
      }
      await assertUntouched();
      // The same origin, JSON or the header pass the check (approve then answers 409 here:
      // the run is not awaiting approval; nothing changes). So do Bull Board's bodiless PUTs.
      for (const [headers, body] of [
        [{ origin: w.dashboard.url, 'x-requested-with': 'test' }, undefined],
        [{ 'content-type': 'application/json' }, '{}'],
        [{ 'content-type': 'application/json; charset=utf-8', origin: w.dashboard.url }, '{}'],
      ] as const) {
        const res = await raw(`/api/runs/${runId}/approve`, 'POST', headers, body);
        assert.equal(res.status, 409, JSON.stringify(headers));
      }
      const put = await raw(`/queues/api/queues/${STAGE_QUEUE}/pause`, 'PUT', {
        origin: w.dashboard.url,
      });
      assert.equal(put.status, 200);
      assert.equal((await raw(`/queues/api/queues/${STAGE_QUEUE}/resume`, 'PUT', {})).status, 200);
      await assertUntouched();
    },
  );

  it(
    'answers 400 to bad input, 413 to a big body, 415 to a non-JSON body',
    { timeout: TEST_MS },
    async () => {
      const post = (body: string, contentType = 'application/json') =>
        w.request('/api/runs', {
          as: 'operator',
          method: 'POST',
          body,
          headers: { 'content-type': contentType },
        });
      const bad = await post('{"media": "image"');
      assert.equal(bad.status, 400);
      assert.match(await errorBody(bad), /not valid JSON/);
      for (const [body, pattern] of [
        ['{}', /media is required/],
        ['[]', /JSON object/],
        ['"image"', /JSON object/],
        ['{"media": 3}', /media is required/],
        ['{"media": "video"}', /unknown media type "video"; known types: .*image/],
        [
          '{"media": "image", "profile": "prod"}',
          /unknown profile "prod"; expected one of production, staging/,
        ],
        ['{"media": "image", "chunkSizeRows": -5}', /chunkSizeRows must be a positive integer/],
        ['{"media": "image", "admin": true}', /unknown field\(s\) "admin"/],
      ] as const) {
        const res = await post(body);
        assert.equal(res.status, 400, body);
        assert.match(await errorBody(res), pattern, body);
      }
      const big = await post(JSON.stringify({ media: 'image', pad: 'x'.repeat(20_000) }));
      assert.equal(big.status, 413);
      assert.match(await errorBody(big), /larger than 16 kB/);
      const form = await post('media=image', 'application/x-www-form-urlencoded');
      assert.equal(form.status, 415);
      await errorBody(form);
      const badControl = await w.request(`/api/runs/${runId}/pause`, {
        as: 'operator',
        method: 'POST',
        body: '{',
        headers: { 'content-type': 'application/json' },
      });
      assert.equal(badControl.status, 400);
      await assertUntouched();
    },
  );

  it(
    'answers 400 to a malformed run id and 404 to an unknown one',
    { timeout: TEST_MS },
    async () => {
      for (const id of ['nope', '2026-01-01', `${runId}x`, '..%2F..%2Fetc']) {
        const res = await w.request(`/api/runs/${id}`, { as: 'viewer' });
        assert.equal(res.status, 400, id);
        assert.match(await errorBody(res), /not a run id/);
        const ctl = await w.request(`/api/runs/${id}/pause`, { as: 'operator', method: 'POST' });
        assert.equal(ctl.status, 400, id);
      }
      const res = await w.request(`/api/runs/${unknownRun}`, { as: 'viewer' });
      assert.equal(res.status, 404);
      assert.match(await errorBody(res), new RegExp(`no run with id "${unknownRun}"`));
      for (const action of ['pause', 'resume', 'cancel', 'retry', 'approve', 'discard']) {
        const ctl = await w.request(`/api/runs/${unknownRun}/${action}`, {
          as: 'operator',
          method: 'POST',
        });
        assert.equal(ctl.status, 404, action);
      }
      const route = await w.request('/api/nothing-here', { as: 'viewer' });
      assert.equal(route.status, 404);
      await errorBody(route);
    },
  );

  it(
    'lists and details the started run, with the operator as its actor',
    { timeout: TEST_MS },
    async () => {
      const list = (await (await w.request('/api/runs', { as: 'viewer' })).json()) as {
        runs: {
          id: string;
          status: string;
          media: string;
          active: boolean;
          requested_by: string;
        }[];
      };
      const listed = list.runs.find((r) => r.id === runId);
      assert.ok(listed, JSON.stringify(list));
      assert.deepEqual(
        {
          status: listed.status,
          media: listed.media,
          active: listed.active,
          by: listed.requested_by,
        },
        { status: 'queued', media: 'image', active: true, by: 'operator' },
      );
      const filtered = (await (
        await w.request('/api/runs?media=audio', { as: 'viewer' })
      ).json()) as { runs: unknown[] };
      assert.equal(filtered.runs.length, 0);
      assert.equal((await w.request('/api/runs?limit=0', { as: 'viewer' })).status, 400);

      const d = (await (await w.request(`/api/runs/${runId}`, { as: 'viewer' })).json()) as {
        run: { id: string; status: string };
        stages: { stage: string; status: string }[];
        chunks: { total: number; grid: string[] };
        pace: { basis: string; etaSeconds: number | null };
        audit: { actor: string; action: string }[];
        attempts: unknown[];
        logs: unknown[];
        sources: unknown[];
        rejected: unknown[];
        timeline: { bars: unknown[] };
      };
      assert.equal(d.run.id, runId);
      assert.deepEqual(
        d.stages.map((s) => `${s.stage}:${s.status}`),
        stageOrder.map((s) => `${s}:pending`),
      );
      assert.equal(d.chunks.total, 0);
      assert.deepEqual(d.chunks.grid, []);
      assert.equal(d.pace.basis, 'none');
      assert.deepEqual(
        d.audit.map((a) => [a.actor, a.action]),
        [['operator', 'start']],
      );
      for (const key of ['attempts', 'logs', 'sources', 'rejected'] as const)
        assert.deepEqual(d[key], []);
      assert.deepEqual(d.timeline.bars, []);
    },
  );

  it(
    'answers 409 to a second refresh of the same media while one is queued',
    { timeout: TEST_MS },
    async () => {
      const res = await w.request('/api/runs', {
        as: 'operator-basic',
        method: 'POST',
        json: { media: 'image' },
      });
      assert.equal(res.status, 409);
      const message = await errorBody(res);
      assert.match(message, new RegExp(`already queued \\(run ${runId}\\)`));
      await assertUntouched();
    },
  );

  it(
    'answers a dry run with the plan and changes nothing anywhere',
    { timeout: TEST_MS },
    async () => {
      const was = { store: await storeCounts(w), redis: await redisKeys(w) };
      const prefix = w.t.config.ELASTICSEARCH_INDEX_PREFIX;
      const res = await w.request('/api/runs', {
        as: 'operator',
        method: 'POST',
        json: { media: 'image', dryRun: true, shadow: true, chunkSizeRows: 100 },
      });
      assert.equal(res.status, 200, await res.clone().text());
      assert.equal(res.headers.get('location'), null);
      const plan = (await res.json()) as {
        media: string;
        profile: string;
        shadow: boolean;
        stages: string[];
        chunks: { count: number; chunkSizeRows: number; upstreamRows: number; ranges: string[] };
        tables: { live: string; temp: string };
        filtered: string;
        indices: { main: string; filtered: string | null };
        aliases: { alias: string; from: string[]; to: string; filter?: unknown }[];
      };
      assert.deepEqual(
        { media: plan.media, profile: plan.profile, shadow: plan.shadow },
        { media: 'image', profile: 'production', shadow: true },
      );
      assert.ok(
        plan.stages.some((st) => st.startsWith('compare')),
        plan.stages.join(' -> '),
      );
      assert.equal(plan.chunks.upstreamRows, CATALOG_ROWS);
      assert.equal(plan.chunks.chunkSizeRows, 100);
      assert.equal(plan.chunks.count, CATALOG_ROWS / 100);
      assert.ok(plan.chunks.ranges.length > 0);
      assert.deepEqual(plan.tables, { live: 'image', temp: 'temp_import_image' });
      assert.equal(plan.filtered, 'alias');
      assert.deepEqual(plan.indices, { main: `${prefix}image-<runId>`, filtered: null });
      assert.deepEqual(
        plan.aliases.map((a) => [a.alias, a.from, a.to, a.filter]),
        [
          [`${prefix}image`, [], `${prefix}image-<runId>`, undefined],
          [`${prefix}image-filtered`, [], `${prefix}image-<runId>`, { term: { sensitive: false } }],
        ],
      );
      // Staging: the row cap, no compare stage without shadow.
      const staging = await w.request('/api/runs', {
        as: 'operator-basic',
        method: 'POST',
        json: { media: 'image', profile: 'staging', dryRun: true },
      });
      assert.equal(staging.status, 200);
      const sp = (await staging.json()) as typeof plan & { chunks: { rowCap: number | null } };
      assert.equal(sp.profile, 'staging');
      assert.equal(sp.shadow, false);
      assert.equal(sp.chunks.rowCap, w.t.config.STAGING_ROW_CAP);
      assert.ok(!sp.stages.some((st) => st.startsWith('compare')));

      for (const [json, status, pattern] of [
        [
          { media: 'audio', dryRun: true },
          409,
          /cannot plan a refresh of audio: its upstream table/,
        ],
        [{ media: 'image', dryRun: 'yes' }, 400, /dryRun must be true or false/],
        [{ media: 'image', shadow: 1 }, 400, /shadow must be true or false/],
        [{ media: 'video', dryRun: true }, 400, /unknown media type "video"/],
      ] as const) {
        const bad = await w.request('/api/runs', { as: 'operator', method: 'POST', json });
        assert.equal(bad.status, status, JSON.stringify(json));
        assert.match(await errorBody(bad), pattern, JSON.stringify(json));
      }

      assert.deepEqual(await storeCounts(w), was.store, 'the run store is unchanged');
      assert.deepEqual(await redisKeys(w), was.redis, 'Redis is unchanged');
      const indices = await w.t.es.cat.indices({ index: `${prefix}*`, format: 'json' });
      assert.deepEqual(indices, [], 'no index was created');
      await assertUntouched();
    },
  );

  it(
    'answers 409 to approve and discard of a run that is not awaiting approval',
    { timeout: TEST_MS },
    async () => {
      for (const action of ['approve', 'discard']) {
        const res = await w.request(`/api/runs/${runId}/${action}`, {
          as: 'operator',
          method: 'POST',
        });
        assert.equal(res.status, 409, action);
        assert.match(
          await errorBody(res),
          new RegExp(`run ${runId} is queued, not awaiting approval`),
        );
      }
      const { rows } = await w.t.dbs.api.query<{ action: string }>(
        'SELECT action FROM freshet.audit WHERE run_id = $1 ORDER BY id',
        [runId],
      );
      assert.deepEqual(
        rows.map((r) => r.action),
        ['start'],
      );
      await assertUntouched();
    },
  );

  it(
    'rolls back through the API: 409 when nothing is kept or a refresh is active, 200 for the operator',
    { timeout: TEST_MS },
    async () => {
      const rollback = (media: string, json?: unknown) =>
        w.request(`/api/media/${media}/rollback`, {
          as: 'operator',
          method: 'POST',
          ...(json === undefined ? {} : { json }),
        });
      let res = await rollback('audio');
      assert.equal(res.status, 409);
      assert.match(await errorBody(res), /^nothing to roll back to for audio \(production\)/);
      res = await rollback('image');
      assert.equal(res.status, 409);
      assert.match(
        await errorBody(res),
        new RegExp(`^cannot roll back image \\(production\\): run ${runId} of it is queued`),
      );
      res = await rollback('nope');
      assert.equal(res.status, 400);
      res = await rollback('audio', { profile: 'staging', force: true });
      assert.equal(res.status, 400);
      assert.match(await errorBody(res), /unknown field\(s\) "force"/);

      // Two builds of audio as promotion leaves them: B live and on both aliases, A kept.
      const [a, b] = ['20261201-100000-aaaa', '20261201-110000-bbbb'];
      const base = `${w.t.config.ELASTICSEARCH_INDEX_PREFIX}audio`;
      for (const [table, run] of [
        ['audio', b],
        ['audio_previous', a],
      ] as const) {
        await w.t.dbs.api.query(`CREATE TABLE ${table} (identifier uuid)`);
        await w.t.dbs.api.query(`COMMENT ON TABLE ${table} IS 'freshet run ${run}'`);
        await w.t.es.indices.create({
          index: `${base}-${run}`,
          // As a build is once finalized: green on one node.
          settings: { index: { number_of_replicas: 0 } },
          mappings: { properties: { sensitive: { type: 'boolean' } } },
        });
      }
      await w.t.es.indices.updateAliases({
        actions: [
          { add: { index: `${base}-${b}`, alias: base } },
          {
            add: { index: `${base}-${b}`, alias: `${base}-filtered`, filter: nonSensitiveQuery() },
          },
        ],
      });
      res = await rollback('audio', { profile: 'production' });
      assert.equal(res.status, 200, await res.clone().text());
      const body = (await res.json()) as { runId: string; replacedRunId: string };
      assert.equal(body.runId, a);
      assert.equal(body.replacedRunId, b);
      const holders = async (alias: string) =>
        (await aliasFilters(w.t.es, alias)).map((x) => [x.index, x.filter]);
      assert.deepEqual(await holders(base), [[`${base}-${a}`, null]]);
      assert.deepEqual(await holders(`${base}-filtered`), [[`${base}-${a}`, nonSensitiveQuery()]]);

      // The viewer sees the builds and the history, and may not roll back.
      const view = await w.request('/api/builds', { as: 'viewer' });
      assert.equal(view.status, 200);
      const { builds } = (await view.json()) as {
        builds: {
          media: string;
          profile: string;
          liveRun: string | null;
          keptRun: string | null;
          rollbackRefusal: string | null;
          history: { action: string; run_id: string; actor: string }[];
        }[];
      };
      const audio = builds.find((x) => x.media === 'audio' && x.profile === 'production');
      assert.equal(audio?.liveRun, a);
      assert.equal(audio?.keptRun, b);
      assert.equal(audio?.rollbackRefusal, null);
      assert.deepEqual(
        audio?.history.map((h) => [h.action, h.run_id, h.actor]),
        [['rollback', a, 'operator']],
      );
      const image = builds.find((x) => x.media === 'image' && x.profile === 'production');
      assert.match(image?.rollbackRefusal ?? '', new RegExp(`run ${runId} of it is queued`));
      assert.ok(
        w.logs.some((l) => l.includes('"msg":"rolled back"') && l.includes('"actor":"operator"')),
      );
      // Put audio back as it was for the tests that follow.
      res = await rollback('audio');
      assert.equal(res.status, 200);
      await w.t.es.indices.delete({ index: `${base}-${a},${base}-${b}` });
      await w.t.dbs.api.query('DROP TABLE audio, audio_previous');
    },
  );

  it(
    'shows why a run waits, and since when, in the list and the details',
    { timeout: TEST_MS },
    async () => {
      const reason =
        'Elasticsearch cluster health is red (2 of 3 shards unassigned); heavy steps wait';
      await w.t.store.setWaiting(runId, reason);
      try {
        const { rows } = await w.t.dbs.api.query<{ since: Date }>(
          'SELECT waiting_since AS since FROM freshet.runs WHERE id = $1',
          [runId],
        );
        const since = rows[0]?.since.toISOString();
        assert.ok(since);
        const list = (await (await w.request('/api/runs', { as: 'viewer' })).json()) as {
          runs: { id: string; waiting_reason: string | null; waiting_since: string | null }[];
        };
        const listed = list.runs.find((r) => r.id === runId);
        assert.deepEqual(
          { reason: listed?.waiting_reason, since: listed?.waiting_since },
          { reason, since },
        );
        const d = (await (await w.request(`/api/runs/${runId}`, { as: 'viewer' })).json()) as {
          run: { waiting_reason: string | null; waiting_since: string | null };
        };
        assert.equal(d.run.waiting_reason, reason);
        assert.equal(d.run.waiting_since, since);
      } finally {
        await w.t.store.setWaiting(runId, null);
      }
      const d = (await (await w.request(`/api/runs/${runId}`, { as: 'viewer' })).json()) as {
        run: { waiting_reason: string | null; waiting_since: string | null };
      };
      assert.deepEqual([d.run.waiting_reason, d.run.waiting_since], [null, null]);
    },
  );

  it(
    'lists the schedules with their next fire times and latest slot',
    { timeout: TEST_MS },
    async () => {
      type View = {
        file: string;
        problems: string[];
        schedules: {
          id: string;
          media: string;
          profile: string;
          cron: string;
          timezone: string;
          jitter: string;
          offsetMs: number;
          enabled: boolean;
          next: { slotUtc: string; fireUtc: string; fireLocal: string }[];
          lastSlot: { outcome: string; runId: string | null; fireAt: string } | null;
        }[];
      };
      const get = async (query = '') => {
        const res = await w.request(`/api/schedules${query}`, { as: 'viewer' });
        assert.equal(res.status, 200);
        return (await res.json()) as View;
      };
      const started = Date.now();
      const v = await get();
      assert.equal(v.file, w.t.config.FRESHET_SCHEDULES_FILE);
      assert.deepEqual(v.problems, []);
      const [nightly, weekly] = v.schedules;
      assert.ok(nightly && weekly, JSON.stringify(v));
      assert.deepEqual(
        [nightly.id, nightly.media, nightly.profile, nightly.cron, nightly.timezone],
        ['image-nightly', 'image', 'production', '0 3 * * *', 'Europe/Berlin'],
      );
      assert.equal(nightly.jitter, '30m');
      assert.ok(nightly.offsetMs >= 0 && nightly.offsetMs <= 30 * 60_000);
      assert.equal(nightly.next.length, 3);
      let previous = started;
      for (const n of nightly.next) {
        const fire = Date.parse(n.fireUtc);
        assert.ok(fire > previous, `${n.fireUtc} after the one before`);
        assert.equal(fire - Date.parse(n.slotUtc), nightly.offsetMs);
        assert.match(n.fireLocal, /T03:\d\d:\d\d\+0[12]:00$/, 'at 03:xx Berlin time');
        previous = fire;
      }
      assert.equal(nightly.lastSlot, null, 'no slot came due yet');
      assert.deepEqual([weekly.enabled, weekly.next], [false, []]);
      assert.equal((await get('?count=5')).schedules[0]?.next.length, 5);
      assert.equal((await get('?count=100000')).schedules[0]?.next.length, 20, 'clamped to 20');
      for (const bad of ['?count=0', '?count=-1', '?count=x', '?count=1e3']) {
        const res = await w.request(`/api/schedules${bad}`, { as: 'viewer' });
        assert.equal(res.status, 400, bad);
        assert.match(await errorBody(res), /count must be a positive integer \(at most 20/);
      }

      // A slot the scheduler claimed and started shows as the latest one.
      const store = new ScheduleStore(w.t.dbs.api, w.t.config.FRESHET_QUEUE_PREFIX);
      const first = nightly.next[0];
      assert.ok(first);
      const slot = { slotTime: new Date(first.slotUtc), fireAt: new Date(first.fireUtc) };
      const now = new Date();
      assert.ok(
        await store.claim(
          { id: 'image-nightly', media: 'image', profile: 'production' },
          slot,
          runId,
          'test',
          now,
        ),
      );
      await store.decide('image-nightly', slot.slotTime, 'started', null, now);
      const after = (await get()).schedules[0]?.lastSlot;
      assert.deepEqual(after, {
        slotTime: first.slotUtc,
        fireAt: first.fireUtc,
        outcome: 'started',
        runId,
        reason: null,
        decidedAt: now.toISOString(),
      });
    },
  );

  it('shows why a schedules file cannot be used', { timeout: TEST_MS }, async () => {
    const bad = await startDashboard(
      loadConfig({
        ...w.t.env,
        DASHBOARD_PORT: '0',
        FRESHET_SCHEDULES_FILE: writeSchedules([
          { id: 'broken', media: 'video', cron: '61 * * * *' },
        ]),
      }),
      w.logger,
      { host: '127.0.0.1' },
    );
    try {
      const res = await fetch(`${bad.url}/api/schedules`, { headers: w.auth('viewer') });
      assert.equal(res.status, 200);
      const v = (await res.json()) as { schedules: unknown[]; problems: string[] };
      assert.deepEqual(v.schedules, []);
      assert.ok(v.problems.some((p) => /schedule "broken".*cron "61 \* \* \* \*"/.test(p)));
      assert.ok(v.problems.some((p) => /unknown media type "video"/.test(p)));
    } finally {
      await bad.close();
    }
  });

  it('exposes queue depth and job counts per state in /metrics', { timeout: TEST_MS }, async () => {
    const res = await w.request('/metrics', { as: 'viewer' });
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /^text\/plain/);
    const text = await res.text();
    // The queued run's flow: preflight waits, the stages above it wait for their children.
    assert.equal(metric(text, `freshet_queue_depth{queue="${STAGE_QUEUE}"}`), 1);
    assert.equal(metric(text, `freshet_queue_depth{queue="${CHUNK_QUEUE}"}`), 0);
    assert.equal(metric(text, `freshet_queue_jobs{queue="${STAGE_QUEUE}",state="waiting"}`), 1);
    assert.ok(
      (metric(text, `freshet_queue_jobs{queue="${STAGE_QUEUE}",state="waiting-children"}`) ?? 0) >=
        4,
    );
    // Every state of every queue, as BullMQ itself counts it.
    for (const queue of w.t.queues.all()) {
      const counts = await queue.getJobCounts(
        'waiting',
        'prioritized',
        'active',
        'delayed',
        'failed',
        'completed',
        'waiting-children',
      );
      for (const [state, n] of Object.entries(counts)) {
        assert.equal(
          metric(text, `freshet_queue_jobs{queue="${queue.name}",state="${state}"}`),
          n,
          `${queue.name} ${state}`,
        );
      }
      assert.equal(metric(text, `freshet_queue_jobs{queue="${queue.name}",state="paused"}`), 0);
    }
    assert.equal(metric(text, `freshet_queue_paused{queue="${STAGE_QUEUE}"}`), 0);
    assert.equal(metric(text, 'freshet_runs{media="image",status="queued"}'), 1);
    assert.match(text, /^# TYPE freshet_stage_last_duration_seconds gauge$/m);
    assert.match(text, /^# TYPE freshet_chunks gauge$/m);
    assert.match(text, /^# TYPE freshet_rows_indexed gauge$/m);
    assert.match(text, /^freshet_dashboard_process_cpu_seconds_total /m);
  });

  it(
    'pauses, resumes and cancels a run as the operator, recording the actor',
    { timeout: TEST_MS },
    async () => {
      const act = (action: string, as: As = 'operator') =>
        w.request(`/api/runs/${runId}/${action}`, { as, method: 'POST' });
      const paused = await act('pause');
      assert.equal(paused.status, 200);
      assert.deepEqual(await paused.json(), { runId, status: 'paused' });
      assert.equal((await act('pause')).status, 409, 'a paused run cannot be paused again');
      const resumed = await act('resume', 'operator-basic');
      assert.equal(resumed.status, 200);
      // It never started (no worker here), so it is queued again.
      assert.equal(((await resumed.json()) as { status: string }).status, 'queued');
      const retry = await act('retry');
      assert.equal(retry.status, 409);
      assert.match(await errorBody(retry), /no failed job/);
      const cancelled = await act('cancel');
      assert.equal(cancelled.status, 200);
      assert.equal(((await cancelled.json()) as { status: string }).status, 'cancelled');
      assert.equal((await act('cancel')).status, 409);
      assert.equal((await act('resume')).status, 409);

      const { rows } = await w.t.dbs.api.query<{ actor: string; action: string }>(
        'SELECT actor, action FROM freshet.audit WHERE run_id = $1 ORDER BY id',
        [runId],
      );
      assert.deepEqual(
        rows.map((r) => `${r.actor}:${r.action}`),
        ['operator:start', 'operator:pause', 'operator:resume', 'operator:cancel'],
      );
      // The lock is released: the same media can be refreshed again.
      const again = await w.request('/api/runs', {
        as: 'operator',
        method: 'POST',
        json: { media: 'image', profile: 'production' },
      });
      assert.equal(again.status, 202);
      const { runId: second } = (await again.json()) as { runId: string };
      assert.equal(
        (await w.request(`/api/runs/${second}/cancel`, { as: 'operator', method: 'POST' })).status,
        200,
      );
    },
  );

  it(
    'runs the stuck-run monitor: a run without progress is alerted once, with its link',
    { timeout: TEST_MS },
    async () => {
      const receiver = await startReceiver();
      const publicUrl = 'https://freshet.example.org/dash';
      const monitored = await startDashboard(
        loadConfig({
          ...w.t.env,
          ALERT_WEBHOOK_URL: receiver.url,
          DASHBOARD_PUBLIC_URL: `${publicUrl}/`,
          STUCK_AFTER_MS: '1',
          MONITOR_INTERVAL_MS: '50',
          DASHBOARD_PORT: '0',
        }),
        w.logger,
        { host: '127.0.0.1' },
      );
      let stuckRun: string | undefined;
      try {
        // A queued run that no worker takes (none runs here) makes no progress: it is stuck.
        const started = await fetch(`${monitored.url}/api/runs`, {
          method: 'POST',
          headers: { ...w.auth('operator'), 'content-type': 'application/json' },
          body: JSON.stringify({ media: 'audio' }),
        });
        assert.equal(started.status, 202);
        stuckRun = ((await started.json()) as { runId: string }).runId;
        const id = stuckRun;
        const body = await receiver.next((b) => {
          const f = b.freshet as { kind?: string; runId?: string } | undefined;
          return f?.kind === 'stuck' && f.runId === id;
        });
        const fields = body.freshet as { url: string; status: string; media: string };
        assert.equal(fields.url, `${publicUrl}/runs/${id}`);
        assert.deepEqual([fields.status, fields.media], ['queued', 'audio']);
        assert.match(body.text as string, /is stuck/);
      } finally {
        // Stops the monitor and waits for the alert being sent before the pools close.
        await monitored.close();
        await receiver.close();
        if (stuckRun) {
          const res = await w.request(`/api/runs/${stuckRun}/cancel`, {
            as: 'operator',
            method: 'POST',
          });
          assert.equal(res.status, 200);
        }
      }
      const { rows } = await w.t.dbs.api.query<{ n: number }>(
        `SELECT count(*)::int AS n FROM freshet.alerts WHERE run_id = $1 AND kind = 'stuck' AND sent_at IS NOT NULL`,
        [stuckRun],
      );
      assert.equal(rows[0]?.n, 1, 'recorded as sent');
      const sent = receiver.received.filter(
        (b) => (b.freshet as { runId?: string } | undefined)?.runId === stuckRun,
      );
      assert.equal(sent.length, 1, 'sent once for this stuck episode, however many ticks ran');
      assert.ok(w.logs.some((l) => l.includes('"msg":"run stuck"') && l.includes(stuckRun ?? '?')));
      assert.ok(!w.logs.join('\n').includes(receiver.url), 'the webhook URL is never logged');
    },
  );

  it('sends pages with a strict content security policy', { timeout: TEST_MS }, async () => {
    const res = await w.request('/', { as: 'viewer' });
    assert.match(res.headers.get('content-type') ?? '', /^text\/html/);
    assert.match(res.headers.get('content-security-policy') ?? '', /script-src 'self'/);
    assert.equal(res.headers.get('x-content-type-options'), 'nosniff');
    assert.equal(res.headers.get('x-powered-by'), null);
    assert.match(await res.text(), /<script type="module" src="\/assets\/app.js">/);
    assert.equal((await w.request('/assets/tsconfig.json', { as: 'viewer' })).status, 404);
  });

  it(
    'serves Bull Board with a content security policy and no font from outside',
    { timeout: TEST_MS },
    async () => {
      const res = await w.request('/queues/', { as: 'viewer' });
      assert.equal(res.status, 200);
      const csp = res.headers.get('content-security-policy') ?? '';
      assert.match(csp, /default-src 'none'/);
      assert.match(csp, /script-src 'self'(;|$)/);
      assert.match(csp, /font-src 'self'/);
      const html = await res.text();
      assert.match(html, /<script defer src="static\/js\/main\.[0-9a-f]+\.js">/);
      assert.doesNotMatch(html, /fonts\.googleapis|fonts\.gstatic/);
      // Nothing the page loads by itself comes from another origin.
      const loads = [...html.matchAll(/<(?:link|script)\b[^>]*\b(?:href|src)="([^"]+)"/g)].map(
        (m) => m[1] ?? '',
      );
      assert.ok(loads.length >= 4, loads.join(' '));
      assert.deepEqual(
        loads.filter((u) => /^(https?:)?\/\//.test(u)),
        [],
      );
      const api = await w.request('/queues/api/queues', { as: 'viewer' });
      assert.match(api.headers.get('content-security-policy') ?? '', /default-src 'none'/);
    },
  );

  it('never writes a token to the logs', { timeout: TEST_MS }, () => {
    assert.ok(w.logs.length > 20, `expected request logs, got ${w.logs.length} lines`);
    assert.ok(w.logs.some((l) => l.includes('"msg":"request"') && l.includes('"status":401')));
    const all = w.logs.join('\n');
    for (const token of [w.tokens.operator, w.tokens.viewer]) {
      assert.equal(all.includes(token), false, 'a token is in the logs');
      assert.equal(all.includes(Buffer.from(token).toString('base64').slice(0, 16)), false);
    }
    assert.doesNotMatch(all, /authorization/i);
  });

  it(
    'throttles failed logins per address: 429 past the limit, the right token after the window',
    { timeout: TEST_MS },
    async () => {
      const failures = 5;
      const throttled = await startDashboard(
        loadConfig({
          ...w.t.env,
          DASHBOARD_PORT: '0',
          DASHBOARD_LOGIN_FAILURES: String(failures),
          DASHBOARD_LOGIN_WINDOW_MS: '1500',
        }),
        w.logger,
        { host: '127.0.0.1' },
      );
      const logsBefore = w.logs.length;
      const get = (headers: Record<string, string>, p = '/api/session') =>
        fetch(`${throttled.url}${p}`, { headers });
      const wrong = { authorization: 'Bearer wrong-guess-0123456789abcdef' };
      try {
        // Requests without credentials (a browser's first) and signed-in ones never count.
        for (let i = 0; i < failures + 3; i++) {
          assert.equal((await get({})).status, 401);
          assert.equal((await get(w.auth('viewer'))).status, 200);
        }
        for (let i = 0; i < failures; i++) {
          const res = await get(wrong);
          assert.equal(res.status, 401, `failure ${i + 1}`);
        }
        const over = await get(wrong);
        assert.equal(over.status, 429);
        const retryAfter = Number(over.headers.get('retry-after'));
        assert.ok(retryAfter >= 1 && retryAfter <= 2, `Retry-After ${retryAfter}`);
        assert.match(await errorBody(over), /too many failed logins from this address/);
        // Past the limit nothing is even compared: the right token is refused too, everywhere.
        for (const p of ['/api/session', '/queues/api/queues', '/metrics', '/']) {
          assert.equal((await get(w.auth('operator'), p)).status, 429, p);
        }
        assert.equal((await get(w.auth('viewer-basic'))).status, 429);
        assert.equal((await fetch(`${throttled.url}/healthz`)).status, 200);

        // The window is time itself: wait it out, as Retry-After says.
        await delay(retryAfter * 1000);
        const back = await get(w.auth('operator'));
        assert.equal(back.status, 200, 'the right token gets in once the window has passed');
        assert.equal((await get(wrong)).status, 401, 'a new window counts from zero');
      } finally {
        await throttled.close();
      }
      const lines = w.logs.slice(logsBefore).map((l) => JSON.parse(l) as Record<string, unknown>);
      const failed = lines.filter((l) => l.msg === 'login failed');
      assert.equal(failed.length, failures + 2, 'each counted failure is logged');
      assert.ok(failed.every((l) => l.level === 40 && l.scheme === 'bearer' && l.client));
      const refused = lines.filter((l) => String(l.msg).startsWith('login throttled'));
      assert.ok(refused.length >= 6 && refused.every((l) => l.level === 40));
      const text = w.logs.slice(logsBefore).join('\n');
      for (const secret of [wrong.authorization.slice(7), w.tokens.operator, w.tokens.viewer]) {
        assert.ok(!text.includes(secret), 'a credential is in the log');
      }
    },
  );

  it(
    'clamps every list: Bull Board pages to 200 jobs, runs to 500',
    { timeout: TEST_MS },
    async () => {
      const chunk = w.t.queues.chunk;
      await chunk.addBulk(
        Array.from({ length: 250 }, (_, i) => ({
          name: 'probe',
          data: { i },
          opts: { jobId: `probe-${i}` },
        })),
      );
      try {
        const list = async (query: string) => {
          const res = await w.request(`/queues/api/queues?activeQueue=${CHUNK_QUEUE}&${query}`, {
            as: 'viewer',
          });
          assert.equal(res.status, 200, `${query}: ${await res.clone().text()}`);
          const body = (await res.json()) as {
            queues: { name: string; jobs: unknown[]; pagination: { range: { end: number } } }[];
          };
          const q = body.queues.find((x) => x.name === CHUNK_QUEUE);
          assert.ok(q);
          return q;
        };
        const all = await list('status=waiting&jobsPerPage=100000');
        assert.equal(all.jobs.length, 200, 'at most the clamp');
        assert.equal(all.pagination.range.end, 199);
        assert.equal(
          (await list('status=waiting&jobsPerPage=%31%30%30%30%30%30')).jobs.length,
          200,
        );
        assert.equal((await list('status=latest&jobsPerPage=5000')).jobs.length, 200);
        assert.equal((await list('status=waiting&jobsPerPage=50')).jobs.length, 50);
        // A page far past the end is an empty page, not a Redis range error (a 500 before).
        assert.equal((await list('status=waiting&page=100000000000000000000')).jobs.length, 0);
        for (const bad of ['jobsPerPage=abc', 'jobsPerPage=0', 'page=-1']) {
          const res = await w.request(`/queues/api/queues?activeQueue=${CHUNK_QUEUE}&${bad}`, {
            as: 'viewer',
          });
          assert.equal(res.status, 400, bad);
        }
      } finally {
        await chunk.drain();
      }
      assert.equal(await chunk.getWaitingCount(), 0);
      const runs = await w.request('/api/runs?limit=100000', { as: 'viewer' });
      assert.equal(runs.status, 200);
      assert.ok(((await runs.json()) as { runs: unknown[] }).runs.length <= 500);
      for (const bad of ['?limit=0', '?limit=x', '?limit=-3']) {
        const res = await w.request(`/api/runs${bad}`, { as: 'viewer' });
        assert.equal(res.status, 400, bad);
        assert.match(await errorBody(res), /limit must be a positive integer \(at most 500/);
      }
    },
  );

  it(
    'answers 400 to NUL and other control characters in query parameters',
    { timeout: TEST_MS },
    async () => {
      for (const [p, name] of [
        ['/api/runs?media=%00', 'media'],
        ['/api/runs?status=%01running', 'status'],
        ['/api/runs?media=image%0Ax', 'media'],
        ['/api/runs?limit=5&x%7F=1', 'x\u007f'],
        [`/api/runs/${runId}?v=%C2%85`, 'v'],
        ['/api/schedules?count=3%00', 'count'],
        [`/queues/api/queues?activeQueue=${STAGE_QUEUE}&status=%00`, 'status'],
        [`/queues/api/queues?activeQueue=${STAGE_QUEUE}%00`, 'activeQueue'],
        ['/metrics?x=%1b[2J', 'x'],
      ] as const) {
        const res = await w.request(p, { as: 'viewer' });
        assert.equal(res.status, 400, p);
        assert.equal(
          await errorBody(res),
          `query parameter ${JSON.stringify(JSON.parse(`"${name}"`))} holds a control character; send printable text`,
          p,
        );
      }
      for (const p of ['/api/runs?media=%zz', '/api/runs?media=%C3%28']) {
        const res = await w.request(p, { as: 'viewer' });
        assert.equal(res.status, 400, p);
        assert.match(await errorBody(res), /malformed percent-escape/);
      }
      // Printable text, other scripts and spaces stay fine.
      for (const p of ['/api/runs?media=imag%C3%A9', '/api/runs?media=a+b&status=x%20y']) {
        const res = await w.request(p, { as: 'viewer' });
        assert.equal(res.status, 200, p);
        assert.deepEqual(((await res.json()) as { runs: unknown[] }).runs, []);
      }
    },
  );

  it('reports not ready (503) when Redis does not answer', { timeout: TEST_MS }, async () => {
    const config = loadConfig({
      ...w.t.env,
      REDIS_URL: 'redis://127.0.0.1:1',
      DASHBOARD_PORT: '0',
    });
    const broken = await startDashboard(config, w.logger, { host: '127.0.0.1' });
    try {
      const res = await fetch(`${broken.url}/readyz`);
      assert.equal(res.status, 503);
      assert.deepEqual(await res.json(), {
        status: 'not ready',
        checks: { redis: 'down', api: 'ok' },
      });
      assert.equal((await fetch(`${broken.url}/healthz`)).status, 200);
    } finally {
      await broken.close();
    }
  });

  it(
    'refuses to start without any token, naming both variables',
    { timeout: TEST_MS },
    async () => {
      const env = { ...w.t.env, FRESHET_OPERATOR_TOKEN: '', FRESHET_VIEWER_TOKEN: '' };
      await assert.rejects(startDashboard(loadConfig(env), w.logger), (err: Error) => {
        assert.ok(err instanceof UserError);
        assert.match(err.message, /FRESHET_OPERATOR_TOKEN/);
        assert.match(err.message, /FRESHET_VIEWER_TOKEN/);
        return true;
      });
      const child = spawn(
        process.execPath,
        [path.join(repoRoot, 'scripts/freshet.mjs'), 'dashboard'],
        {
          cwd: repoRoot,
          env: { ...env, DASHBOARD_PORT: '0' },
          stdio: ['ignore', 'pipe', 'pipe'],
          timeout: 30_000,
        },
      );
      let stderr = '';
      child.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c));
      child.stdout.resume();
      const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
      assert.equal(code, 2, stderr);
      assert.match(stderr, /^freshet: .*FRESHET_OPERATOR_TOKEN.*FRESHET_VIEWER_TOKEN/);
    },
  );
});

/**
 * The dashboard on a Redis of the test's own (with a password), which is shut down: every
 * request that needs Redis answers 503 naming it (password masked) well within 5 s, changes
 * nothing and leaves no run behind; once Redis is back, a refresh is accepted.
 */
describe('dashboard while Redis is away', { timeout: 180_000 }, () => {
  const password = 'away-s3cret-Pw-77';
  let redis: RedisServer;
  let w: DashboardWorld;
  /** A run started while Redis was up; stays queued (no worker). */
  let runId: string;
  /** The 503 message: the URL masked, then the connection's error. */
  let unreachable: RegExp;

  const runRows = async () =>
    (
      await w.t.dbs.api.query<{ id: string; media: string; status: string }>(
        'SELECT id, media, status FROM freshet.runs ORDER BY created_at',
      )
    ).rows;

  before(async () => {
    redis = await startRedisServer({ password });
    w = await createDashboardWorld({ REDIS_URL: redis.url });
    unreachable = new RegExp(
      `^Redis at redis://:\\*\\*\\*@127\\.0\\.0\\.1:${redis.port} is unreachable: .+`,
    );
    const res = await w.request('/api/runs', {
      as: 'operator',
      method: 'POST',
      json: { media: 'image' },
    });
    assert.equal(res.status, 202, await res.clone().text());
    runId = ((await res.json()) as { runId: string }).runId;
    await redis.shutdown();
  });

  after(async () => {
    await w?.close();
    await redis?.close();
  });

  it(
    'answers 503 within 5 s to every request that needs Redis, and changes nothing',
    { timeout: 120_000 },
    async () => {
      const requests: [string, string, As, unknown][] = [
        ['GET', '/metrics', 'viewer', undefined],
        ['GET', '/queues/api/queues', 'viewer', undefined],
        [
          'GET',
          `/queues/api/queues?activeQueue=${STAGE_QUEUE}&status=waiting`,
          'operator',
          undefined,
        ],
        ['PUT', `/queues/api/queues/${STAGE_QUEUE}/pause`, 'operator', {}],
        ['POST', '/api/runs', 'operator', { media: 'audio' }],
        ['POST', '/api/runs', 'operator', { media: 'audio', shadow: true }],
        ...['pause', 'resume', 'cancel', 'retry', 'approve', 'discard'].map(
          (action) =>
            ['POST', `/api/runs/${runId}/${action}`, 'operator', undefined] as [
              string,
              string,
              As,
              unknown,
            ],
        ),
      ];
      // Twice: right after the shutdown (the connection may not know yet) and once it knows.
      for (const round of [1, 2]) {
        for (const [method, p, as, json] of requests) {
          const started = performance.now();
          const res = await w.request(p, { as, method, ...(json ? { json } : {}) });
          const ms = performance.now() - started;
          const what = `round ${round}: ${method} ${p}`;
          assert.equal(res.status, 503, `${what}: ${await res.clone().text()}`);
          assert.ok(ms < 5_000, `${what} took ${Math.round(ms)} ms`);
          const message = await errorBody(res);
          assert.match(message, unreachable, what);
          assert.ok(!message.includes(password), `${what}: the password is shown`);
        }
      }
      assert.deepEqual(
        (await runRows()).map((r) => [r.id, r.status]),
        [[runId, 'queued']],
        'no run was added, the queued one is untouched',
      );
      // What needs only PostgreSQL still answers; readiness says Redis is down.
      assert.equal((await w.request('/api/runs', { as: 'viewer' })).status, 200);
      assert.equal((await w.request(`/api/runs/${runId}`, { as: 'viewer' })).status, 200);
      const ready = await w.request('/readyz');
      assert.equal(ready.status, 503);
      assert.deepEqual(((await ready.json()) as { checks: unknown }).checks, {
        redis: 'down',
        api: 'ok',
      });
      // A dry run reads only the catalog: it needs no Redis (409 here: no upstream table).
      const dry = await w.request('/api/runs', {
        as: 'operator',
        method: 'POST',
        json: { media: 'audio', dryRun: true },
      });
      assert.equal(dry.status, 409);
      assert.ok(!w.logs.join('\n').includes(password), 'the password is in the log');
    },
  );

  it(
    'startRefresh refuses at once, with nothing recorded, on a connection that never reached Redis',
    { timeout: 60_000 },
    async () => {
      // No gate in front here, and BullMQ alone would wait for the connection without a bound.
      const producer = openProducer(w.t.config);
      try {
        await assert.rejects(startRefresh(producer, { media: 'audio' }), (err: Error) => {
          assert.ok(err instanceof RedisUnavailableError, String(err));
          assert.match(err.message, unreachable);
          assert.match(err.message, /the refresh was not started$/);
          assert.ok(!err.message.includes(password));
          return true;
        });
      } finally {
        await producer.close();
      }
      assert.deepEqual(
        (await runRows()).map((r) => r.media),
        ['image'],
      );
    },
  );

  it(
    'accepts a refresh once Redis is back, with its flow in Redis',
    { timeout: 60_000 },
    async () => {
      await redis.start();
      await w.t.reconnected();
      // The dashboard's own connection reconnects on its backoff (at most 2 s a try).
      const deadline = Date.now() + 20_000;
      while ((await w.request('/readyz')).status !== 200) {
        assert.ok(Date.now() < deadline, 'the dashboard did not see Redis again within 20 s');
        await delay(100);
      }
      const res = await w.request('/api/runs', {
        as: 'operator',
        method: 'POST',
        json: { media: 'audio' },
      });
      assert.equal(res.status, 202, await res.clone().text());
      const { runId: audio } = (await res.json()) as { runId: string };
      const redisConn = createProducerRedis(w.t.config);
      const queues = createQueues(w.t.config, redisConn);
      try {
        assert.ok(await queues.stage.getJob(`${audio}.preflight`), 'the flow is in Redis');
      } finally {
        await queues.close();
        redisConn.disconnect();
      }
      assert.equal((await w.request('/metrics', { as: 'viewer' })).status, 200);
      const controls = await w.request(`/api/runs/${runId}/cancel`, {
        as: 'operator',
        method: 'POST',
      });
      assert.equal(controls.status, 200);
    },
  );

  it(
    'takes a run back when Redis refuses its flow (maxmemory reached): no phantom queued run',
    { timeout: 60_000 },
    async () => {
      const admin = createProducerRedis(w.t.config);
      try {
        // noeviction and a full memory: Redis answers, but refuses every write with OOM.
        await admin.config('SET', 'maxmemory', '1');
        const before = await runRows();
        const res = await w.request('/api/runs', {
          as: 'operator',
          method: 'POST',
          json: { media: 'image', profile: 'staging' },
        });
        assert.equal(res.status, 500, await res.clone().text());
        assert.deepEqual(await runRows(), before, 'the run was recorded, then deleted again');
        assert.ok(
          w.logs.some(
            (l) =>
              l.includes('could not enqueue the refresh') && l.includes('the run was not recorded'),
          ),
        );
        await admin.config('SET', 'maxmemory', '0');
        const again = await w.request('/api/runs', {
          as: 'operator',
          method: 'POST',
          json: { media: 'image', profile: 'staging' },
        });
        assert.equal(again.status, 202, 'the media is free: nothing blocks it');
      } finally {
        await admin.config('SET', 'maxmemory', '0');
        admin.disconnect();
      }
    },
  );
});
