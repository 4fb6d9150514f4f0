import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { repoRoot } from '@freshet/core';
import { startWorker, type WorkerApp } from '@freshet/worker';
import { startRefresh } from '@freshet/control';
import { createTestEnv, type TestEnv } from '../helpers/env.js';
import {
  accounting,
  exactnessProblems,
  faultDefinition,
  seedFaultTable,
  waitForRunStatus,
  writeFaultMedia,
  type Accounting,
} from '../helpers/faults.js';

const BIG_TITLE = 'lorem ipsum '.repeat(200_000); // 2.4 MB
const BIG_TAGS = 20_000;

/**
 * Hostile rows in a catalog table without a primary key. Each row says what must become of it:
 * `kept` (indexed, maybe changed) or rejected with a reason. PostgreSQL (a UTF8 database) refuses
 * invalid UTF-8 and NUL in text and jsonb, lone surrogates in jsonb, and invalid JSON in json and
 * jsonb, at insert: the catalog cannot hold them, so they cannot reach a refresh. What it can
 * hold: control characters in text, and \u0000 or lone surrogate escapes inside a `json` (not
 * jsonb) column, which jsonb refuses — the definition below reads two json columns.
 */
const rows: { id: string | null; fate: string; sql: string }[] = [
  { id: '-9223372036854775808', fate: 'kept', sql: `'bigint min'` },
  { id: '9223372036854775807', fate: 'kept', sql: `'bigint max'` },
  { id: '0', fate: 'kept', sql: `'zero'` },
  { id: null, fate: 'null-key', sql: `'a null key'` },
  { id: null, fate: 'null-key', sql: `'another null key'` },
  { id: '42', fate: 'duplicate-key', sql: `'duplicate a'` },
  { id: '42', fate: 'duplicate-key', sql: `'duplicate b'` },
  { id: '1', fate: 'kept', sql: `E'control \\x01\\x02\\x1f\\x7f tab\\tnewline\\ncr\\r end'` },
  { id: '2', fate: 'kept', sql: `repeat('lorem ipsum ', 200000)` },
  { id: '3', fate: 'kept', sql: `'gigantic tags'` },
  { id: '4', fate: 'kept', sql: `'tags with a lone surrogate escape'` },
  { id: '5', fate: 'kept', sql: `'tags with a NUL escape'` },
  { id: '6', fate: 'kept', sql: `'tags that are not an array'` },
  { id: '7', fate: 'kept', sql: `'meta with a lone surrogate'` },
  { id: '8', fate: 'kept', sql: `'meta with a NUL escape'` },
  { id: '9', fate: 'invalid-url', sql: `'javascript url'` },
  { id: '10', fate: 'invalid-url', sql: `'empty url'` },
  { id: '11', fate: 'invalid-url', sql: `'blank url'` },
  { id: '12', fate: 'invalid-url', sql: `'scheme only'` },
  { id: '13', fate: 'invalid-url', sql: `'protocol-relative url'` },
  { id: '14', fate: 'invalid-url', sql: `'space in host'` },
  { id: '15', fate: 'invalid-url', sql: `'ftp url'` },
  { id: '16', fate: 'kept', sql: `'url without scheme'` },
  { id: '17', fate: 'kept', sql: `'thumbnail not a url'` },
  { id: '18', fate: 'missing-license', sql: `'empty license'` },
  { id: '19', fate: 'kept', sql: `'padded upper-case license'` },
  { id: '20', fate: 'kept', sql: `'emoji 😀 and RTL שלום'` },
  { id: '21', fate: 'kept', sql: `'a tag name too long'` },
];

describe('hostile and malformed input', { timeout: 240_000 }, () => {
  let t: TestEnv;
  let worker: WorkerApp;
  let stopped = false;
  const runs: Record<string, string> = {};
  const acc: Record<string, Accounting> = {};
  const statuses: Record<string, { status: string; error: string | null }> = {};

  before(async () => {
    t = await createTestEnv({
      FRESHET_MEDIA_FILE: writeFaultMedia({
        // Four rows per chunk: the chunk bounds are spread across the whole bigint range.
        rawclip: { ...faultDefinition('rawclip', { hostile: true }), chunkSizeRows: 4 },
        emptyclip: faultDefinition('emptyclip'),
        oneclip: faultDefinition('oneclip'),
      }),
    });
    const c = t.dbs.catalog;
    await seedFaultTable(c, 'rawclip', 0, { hostile: true });
    for (const r of rows) {
      await c.query(
        `INSERT INTO rawclip (id, title, provider, license, url, thumbnail, tags, meta)
         VALUES ($1::bigint, ${r.sql}, 'p1', 'by', 'https://example.org/' || coalesce($1::text, 'null'),
                 NULL, '[{"name": "ok", "accuracy": 0.95}]', '{"description": "fine"}')`,
        [r.id],
      );
    }
    const set = (id: string, assignment: string) =>
      c.query(`UPDATE rawclip SET ${assignment} WHERE id = ${id}`);
    await set(
      '3',
      `tags = (SELECT jsonb_agg(jsonb_build_object('name', 'tag' || i, 'accuracy', 0.95))::text::json FROM generate_series(1, ${BIG_TAGS}) i)`,
    );
    await set('4', `tags = '[{"name": "a\\ud800b", "accuracy": 0.99}]'`);
    await set('5', `tags = '[{"name": "a\\u0000b", "accuracy": 0.99}]'`);
    await set('6', `tags = '{"a": 1}'`);
    await set('7', `meta = '{"description": "lone \\ud800 surrogate"}'`);
    await set('8', `meta = '{"description": "nul \\u0000 char"}'`);
    await set('9', `url = 'javascript:alert(1)'`);
    await set('10', `url = ''`);
    await set('11', `url = '   '`);
    await set('12', `url = 'http://'`);
    await set('13', `url = '//evil.example'`);
    await set('14', `url = 'http://exa mple.org/x'`);
    await set('15', `url = 'ftp://example.org/x'`);
    await set('16', `url = 'example.org/ok'`);
    await set('17', `thumbnail = 'not a url'`);
    await set('18', `license = ''`);
    await set('19', `license = '  BY  '`);
    await set('21', `tags = '[{"name": "${'x'.repeat(300)}", "accuracy": 0.99}, {"name": "ok"}]'`);
    await seedFaultTable(c, 'emptyclip', 0);
    await seedFaultTable(c, 'oneclip', 1);

    worker = await startWorker(t.config, t.logger);
    const deps = { config: t.config, api: t.dbs.api, media: t.media, queues: t.queues };
    for (const media of ['rawclip', 'emptyclip', 'oneclip']) {
      runs[media] = await startRefresh(deps, { media });
    }
    for (const media of Object.keys(runs)) {
      const run = await waitForRunStatus(t.store, runs[media] as string);
      statuses[media] = { status: run.status, error: run.error };
      if (run.status === 'succeeded') acc[media] = await accounting(t, runs[media] as string);
    }
  });

  after(async () => {
    if (!stopped) await worker?.close();
    await t?.close();
  });

  it('the hostile table refreshes (nothing crashes) with exact counts', () => {
    assert.deepEqual(statuses.rawclip, { status: 'succeeded', error: null });
    assert.deepEqual(exactnessProblems(acc.rawclip as Accounting), []);
  });

  it('null and duplicate identifiers are rejected with a reason, never dropped or doubled', () => {
    const expected: Record<string, number> = {};
    for (const r of rows) if (r.fate !== 'kept') expected[r.fate] = (expected[r.fate] ?? 0) + 1;
    assert.deepEqual(acc.rawclip?.rejected, expected);
    assert.equal(acc.rawclip?.tableRows, rows.filter((r) => r.fate === 'kept').length);
  });

  it('ids at the bigint limits, control characters, emoji and gigantic values are indexed intact', async () => {
    const index = (acc.rawclip as Accounting).names.index;
    const got = await t.es.mget<{ title: string; tags: unknown[] }>({
      index,
      ids: ['-9223372036854775808', '9223372036854775807', '0', '1', '2', '3', '20'],
    });
    const docs = got.docs as {
      _id: string;
      found: boolean;
      _source?: { title: string; tags: unknown[] };
    }[];
    assert.deepEqual(
      docs.filter((d) => !d.found).map((d) => d._id),
      [],
    );
    const source = (id: string) => docs.find((d) => d._id === id)?._source;
    assert.equal(source('1')?.title, 'control \x01\x02\x1f\x7f tab\tnewline\ncr\r end');
    assert.equal(source('2')?.title.length, BIG_TITLE.length);
    assert.equal(source('3')?.tags.length, BIG_TAGS);
    assert.equal(source('20')?.title, 'emoji 😀 and RTL שלום');
    const hits = await t.es.count({ index, query: { match: { title: 'ipsum' } } });
    assert.equal(hits.count, 1);
  });

  it('JSON PostgreSQL cannot read as jsonb is set to NULL and counted; bad URLs and tags are cleaned', async () => {
    const { rows: table } = await t.dbs.api.query<{
      id: string;
      tags: unknown;
      meta: string | null;
      url: string;
      thumbnail: string | null;
      license: string;
    }>(`SELECT id::text, tags, meta::text AS meta, url, thumbnail, license FROM rawclip
         WHERE id IN (4, 5, 6, 7, 8, 16, 17, 19, 21) ORDER BY id`);
    const by = Object.fromEntries(table.map((r) => [r.id, r]));
    assert.equal(by['4']?.tags, null);
    assert.equal(by['5']?.tags, null);
    assert.equal(by['6']?.tags, null);
    assert.equal(by['7']?.meta, null);
    assert.equal(by['8']?.meta, null);
    assert.equal(by['16']?.url, 'https://example.org/ok');
    assert.equal(by['17']?.thumbnail, null);
    assert.equal(by['19']?.license, 'by');
    assert.deepEqual(by['21']?.tags, [{ name: 'ok' }]);
    const { rows: changed } = await t.dbs.api.query<{ k: string; n: number }>(
      `SELECT k, sum(v::int)::int AS n FROM freshet.chunks,
         jsonb_each_text(result -> 'pass' -> 'changed') AS c(k, v) WHERE run_id = $1 GROUP BY k`,
      [runs.rawclip],
    );
    const counts = Object.fromEntries(changed.map((r) => [r.k, r.n]));
    assert.equal(counts['invalid-json-nulled'], 4, JSON.stringify(counts));
    assert.equal(counts['tags-not-array-nulled'], 1, JSON.stringify(counts));
    assert.equal(counts['invalid-url-nulled'], 1, JSON.stringify(counts));
  });

  it('an empty table refreshes to an empty index; a table of one row to one document', () => {
    assert.deepEqual(statuses.emptyclip, { status: 'succeeded', error: null });
    assert.deepEqual(exactnessProblems(acc.emptyclip as Accounting), []);
    assert.equal(acc.emptyclip?.docs, 0);
    assert.deepEqual(statuses.oneclip, { status: 'succeeded', error: null });
    assert.deepEqual(exactnessProblems(acc.oneclip as Accounting), []);
    assert.equal(acc.oneclip?.docs, 1);
  });

  describe('bad CLI arguments, unknown media types and invalid configuration', () => {
    let snapshot: string;

    /** What a failed command must not have touched: runs, queue keys, indices. */
    const footprint = async () =>
      JSON.stringify([
        (await t.dbs.api.query('SELECT id, status FROM freshet.runs ORDER BY id')).rows,
        // (stalled-check keys expire by themselves)
        (await t.queues.redis.keys(`${t.config.FRESHET_QUEUE_PREFIX}:*`))
          .filter((k) => !k.endsWith(':stalled-check'))
          .sort(),
        (
          await t.es.cat.indices({
            index: `${t.config.ELASTICSEARCH_INDEX_PREFIX}*`,
            h: 'index',
            format: 'json',
          })
        )
          .map((i) => i.index)
          .sort(),
      ]);

    const cli = (args: string[], env: Record<string, string> = {}) =>
      new Promise<{ code: number | null; out: string }>((resolve, reject) => {
        const child = spawn(
          process.execPath,
          [path.join(repoRoot, 'scripts/freshet.mjs'), ...args],
          { env: { ...t.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'], timeout: 60_000 },
        );
        let out = '';
        child.stdout.on('data', (d: Buffer) => (out += d.toString()));
        child.stderr.on('data', (d: Buffer) => (out += d.toString()));
        child.on('error', reject);
        child.on('close', (code) => resolve({ code, out }));
      });

    interface Refusal {
      readonly name: string;
      readonly args: string[];
      readonly env?: Record<string, string>;
      readonly code: number;
      readonly message: RegExp;
    }
    const evil = () => path.join(path.dirname(t.config.FRESHET_MEDIA_FILE), 'evil.json');
    const refusals: Refusal[] = [
      {
        name: 'a missing media argument exits 2',
        args: ['refresh'],
        code: 2,
        message: /missing required argument 'media'/,
      },
      {
        name: 'an unknown media type exits 1 naming the known ones',
        args: ['refresh', 'video'],
        code: 1,
        message: /unknown media type "video"; known types: rawclip, emptyclip, oneclip/,
      },
      {
        name: 'a media argument carrying SQL is just an unknown media type',
        args: ['refresh', 'rawclip; DROP TABLE rawclip'],
        code: 1,
        message: /unknown media type "rawclip; DROP TABLE rawclip"/,
      },
      ...['0', '-5', 'abc', '1e3', '2.5'].map((size) => ({
        name: `--chunk-size ${size} exits 2`,
        args: ['refresh', 'rawclip', '--chunk-size', size],
        code: 2,
        message: /--chunk-size must be a positive integer/,
      })),
      {
        name: 'an unknown profile exits 2',
        args: ['refresh', 'rawclip', '--profile', 'prod'],
        code: 2,
        message: /unknown profile "prod"/,
      },
      {
        name: 'an unknown command exits 2',
        args: ['frobnicate'],
        code: 2,
        message: /unknown command 'frobnicate'/,
      },
      {
        name: 'an unknown option exits 2',
        args: ['runs', '--bogus'],
        code: 2,
        message: /unknown option '--bogus'/,
      },
      {
        name: 'retry of a run that does not exist exits 4',
        args: ['retry', 'not-a-run'],
        code: 4,
        message: /no run with id "not-a-run"/,
      },
      {
        name: 'invalid settings exit 1, every bad variable named in one message',
        args: ['refresh', 'rawclip'],
        env: { WORKER_CONCURRENCY: 'abc', LOG_LEVEL: 'loud' },
        code: 1,
        message:
          /^freshet: invalid configuration: (?=.*WORKER_CONCURRENCY must be a positive integer, got "abc")(?=.*LOG_LEVEL .*got "loud")/,
      },
      {
        name: 'a worker with invalid settings exits 1 before connecting anywhere',
        args: ['worker'],
        env: { REDIS_URL: 'http://127.0.0.1:6379' },
        code: 1,
        message: /REDIS_URL must be a URL like redis:/,
      },
      {
        name: 'a media definition whose table carries SQL is refused at load (refresh)',
        args: ['refresh', 'rawclip'],
        env: { FRESHET_MEDIA_FILE: 'evil' },
        code: 1,
        message: /upstreamTable: .*got "rawclip; DROP TABLE rawclip"/,
      },
      {
        name: 'a media definition whose table carries SQL is refused at load (worker)',
        args: ['worker'],
        env: { FRESHET_MEDIA_FILE: 'evil' },
        code: 1,
        message: /media type rawclip is invalid/,
      },
      {
        name: 'a missing media definitions file is a clear error',
        args: ['refresh', 'rawclip'],
        env: { FRESHET_MEDIA_FILE: '/nonexistent/media.json' },
        code: 1,
        message: /cannot read media definitions \/nonexistent\/media.json/,
      },
    ];
    const results = new Map<string, { code: number | null; out: string }>();

    before(async () => {
      // The worker stops first, so that nothing else writes while the footprint is compared.
      await worker.close();
      stopped = true;
      snapshot = await footprint();
      writeFileSync(
        evil(),
        JSON.stringify({
          rawclip: { ...faultDefinition('rawclip'), upstreamTable: 'rawclip; DROP TABLE rawclip' },
        }),
      );
      // Four at a time: each is a Node start-up.
      const queue = [...refusals];
      await Promise.all(
        Array.from({ length: 4 }, async () => {
          for (let r = queue.shift(); r; r = queue.shift()) {
            const env = { ...r.env };
            if (env.FRESHET_MEDIA_FILE === 'evil') env.FRESHET_MEDIA_FILE = evil();
            results.set(r.name, await cli(r.args, env));
          }
        }),
      );
    });

    for (const r of refusals) {
      it(r.name, () => {
        const got = results.get(r.name);
        assert.ok(got, 'ran');
        assert.equal(got.code, r.code, `${r.args.join(' ')}: ${got.out}`);
        assert.match(got.out, r.message);
        assert.doesNotMatch(got.out, /\n\s+at .+:\d+:\d+/, 'no stack trace');
      });
    }

    it('nothing was written by any refused command', async () => {
      assert.equal(await footprint(), snapshot);
      const { rows: left } = await t.dbs.catalog.query<{ n: number }>(
        'SELECT count(*)::int AS n FROM rawclip',
      );
      assert.equal(left[0]?.n, rows.length);
    });
  });
});
