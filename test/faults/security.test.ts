import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import {
  checkColumnType,
  checkIdentifier,
  ident,
  keyLiteral,
  literal,
  loadConfig,
  loadMediaCatalog,
  parseMediaDefinition,
  rangePredicate,
  repoRoot,
  runIdPattern,
} from '@freshet/core';
import { createTestEnv, type TestEnv } from '../helpers/env.js';
import {
  faultDefinition,
  freePort,
  leakedSecrets,
  seedFaultTable,
  startRedisServer,
  writeFaultMedia,
  type RedisServer,
} from '../helpers/faults.js';
import { spawnCli, type CliProcess } from '../helpers/processes.js';

/** Strings that try to break out of an identifier, a literal or a name. */
const injections = [
  'image; DROP TABLE x',
  'image"; DROP TABLE x; --',
  "image'; DROP TABLE x; --",
  'Image',
  '1image',
  'image-x',
  'image x',
  'image\nx',
  'image\0',
  'pg_catalog.pg_class',
  'imagé',
  '',
  'x'.repeat(64),
];

describe('SQL identifiers from configuration and requests', () => {
  it('checkIdentifier and ident accept only [a-z_][a-z0-9_]{0,62}, and quote', () => {
    for (const ok of ['image', '_x', 'a1_b', 'x'.repeat(63)]) {
      assert.equal(checkIdentifier(ok), ok);
      assert.equal(ident(ok), `"${ok}"`);
    }
    for (const bad of [...injections, 42 as unknown as string, null as unknown as string]) {
      assert.throws(() => checkIdentifier(bad), /must be lower-case letters, digits or _/);
      assert.throws(() => ident(bad));
    }
  });

  it('column types come from an allowlist', () => {
    assert.equal(checkColumnType('varchar(40)'), 'varchar(40)');
    for (const bad of [
      'text); DROP TABLE x; --',
      'text DEFAULT pg_sleep(10)',
      'varchar(1) COLLATE "C"',
    ])
      assert.throws(() => checkColumnType(bad), /column type must be one of/);
  });

  it('key bounds are validated before they reach SQL text', () => {
    assert.throws(() => keyLiteral('bigint', '1; DROP TABLE x'), /not an integer key/);
    assert.throws(
      () => keyLiteral('uuid', "00000000-0000-0000-0000-000000000000'::uuid; --"),
      /not a canonical uuid/,
    );
    assert.throws(() => rangePredicate('bigint', '"id"', { start: '0) OR (1=1', end: null }));
  });

  it('run ids match only their own shape', () => {
    assert.match('20261124-082712-96b1', runIdPattern);
    for (const bad of [
      '20261124-082712-96b1; DROP',
      "20261124-082712-96b1' OR '1'='1",
      '20261124-082712-96b1\n',
      '../20261124-082712-96b1',
      '20261124-082712-96B1',
      '20261124-082712-96b1.c0.copy',
    ])
      assert.doesNotMatch(bad, runIdPattern);
  });

  it('a media definition with an injected table, column, name or field is refused at load', () => {
    const dir = path.dirname(writeFaultMedia({}));
    const base = faultDefinition('clip');
    const variants: [string, unknown][] = [
      ['clip', { ...base, upstreamTable: 'image; DROP TABLE x' }],
      ['clip', { ...base, downstreamTable: 'image"; DROP TABLE x; --' }],
      ['clip', { ...base, deletedTable: "x'; DROP TABLE x; --" }],
      ['clip', { ...base, key: { column: 'id; DROP TABLE x', type: 'bigint' } }],
      ['clip', { ...base, key: { column: 'id', type: 'bigint; DROP TABLE x' } }],
      ['clip', { ...base, columns: [...base.columns, { name: 'x"y', type: 'text' }] }],
      ['clip', { ...base, columns: [...base.columns, { name: 'z', type: 'text; DROP TABLE x' }] }],
      [
        'clip',
        {
          ...base,
          document: {
            ...base.document,
            fields: { d: { column: 'meta', key: "a'); DROP TABLE x; --" } },
          },
        },
      ],
      ['clip; DROP TABLE x', base],
      ['Clip', base],
    ];
    for (const [name, input] of variants) {
      assert.throws(() => parseMediaDefinition(name, input, dir), /media type|refers to/, name);
    }
    const file = path.join(dir, 'evil.json');
    writeFileSync(
      file,
      JSON.stringify({ clip: { ...base, upstreamTable: 'image; DROP TABLE x' } }),
    );
    assert.throws(() => loadMediaCatalog(file), /upstreamTable: .*got "image; DROP TABLE x"/);
  });

  it('a mapping path must stay inside the media folder (.., absolute, symbolic links)', () => {
    const dir = path.dirname(writeFaultMedia({}));
    const base = faultDefinition('clip');
    const outside = path.join(mkdtempSync(path.join(tmpdir(), 'freshet-outside-')), 'm.json');
    writeFileSync(outside, readFileSync(path.join(dir, 'fault.json')));
    symlinkSync(outside, path.join(dir, 'link.json'));
    const withMapping = (mapping: string) => ({
      ...base,
      document: { ...base.document, mapping },
    });
    for (const mapping of [
      '../fault.json',
      outside,
      'sub/../../fault.json',
      'link.json',
      '.',
      '',
    ]) {
      assert.throws(
        () => parseMediaDefinition('clip', withMapping(mapping), dir),
        /document\.mapping must be a file inside the media folder|media type clip is invalid/,
        mapping,
      );
    }
    for (const mapping of [
      'fault.json',
      './fault.json',
      'sub/../fault.json',
      path.join(dir, 'fault.json'),
    ]) {
      assert.equal(parseMediaDefinition('clip', withMapping(mapping), dir).name, 'clip', mapping);
    }
  });

  it('literals for SQL text survive a round trip through PostgreSQL unchanged', async () => {
    const t = await createTestEnv();
    try {
      for (const value of [
        "O'Brien",
        "'); DROP TABLE freshet.runs; --",
        "back\\slash \\' quote",
        '$$ dollar $$',
        'emoji 😀 \t\n',
      ]) {
        const { rows } = await t.dbs.api.query<{ v: string }>(`SELECT ${literal(value)} AS v`);
        assert.equal(rows[0]?.v, value);
      }
      assert.throws(() => literal('nul \0'), /NUL/);
      const { rows } = await t.dbs.api.query<{ n: number }>(
        `SELECT count(*)::int AS n FROM freshet.runs`,
      );
      assert.equal(rows[0]?.n, 0, 'freshet.runs is still there');
    } finally {
      await t.close();
    }
  });

  it('prefixes from the environment are validated', () => {
    for (const [name, value] of [
      ['ELASTICSEARCH_INDEX_PREFIX', 'Bad*,_all-'],
      ['ELASTICSEARCH_INDEX_PREFIX', '../x-'],
      ['FRESHET_QUEUE_PREFIX', 'a:b'],
      ['FRESHET_QUEUE_PREFIX', 'x y'],
    ] as const) {
      assert.throws(() => loadConfig({ [name]: value }), new RegExp(name));
    }
  });
});

/**
 * Secrets (a Redis password, an Elasticsearch password, database passwords, the dashboard tokens,
 * the alert webhook URL) set on a worker and on producer commands, on success paths and on error
 * paths: none may appear in anything they print, or in the run store.
 */
describe('secrets never appear in logs or error messages', { timeout: 180_000 }, () => {
  const secrets = {
    redis: 'redis-s3cret-Pw!9',
    es: 'es-s3cret-Pw-7',
    esKey: 'es-api-key-s3cret-5',
    db: 'db-s3cret-Pw-3',
    operator: 'operator-token-s3cret-1-0a1b2c',
    viewer: 'viewer-token-s3cret-2-3d4e5f',
    webhook: 'hook-s3cret-path-8',
    query: 'query-s3cret-Pw-4',
  };
  // Passwords with an unescaped @ or /: a URL parser cuts them there, so each half is scanned for.
  const halves = ['at-s3cret-a', 'at-s3cret-b', 'slash-s3cret-a', 'slash-s3cret-b'];
  const all = [...Object.values(secrets), ...halves];
  let redis: RedisServer;
  let t: TestEnv;
  let worker: CliProcess | undefined;
  const outputs: { what: string; out: string; ms: number; code: number | null }[] = [];

  const withPassword = (url: string, password: string) => {
    const u = new URL(url);
    u.username = u.username || 'postgres';
    u.password = password;
    return u.toString();
  };
  const run = (what: string, args: string[], env: NodeJS.ProcessEnv, timeout = 60_000) =>
    new Promise<number | null>((resolve, reject) => {
      const started = Date.now();
      const child = spawn(process.execPath, [path.join(repoRoot, 'scripts/freshet.mjs'), ...args], {
        env,
        stdio: ['ignore', 'pipe', 'pipe'],
        timeout,
      });
      let out = '';
      child.stdout.on('data', (d: Buffer) => (out += d.toString()));
      child.stderr.on('data', (d: Buffer) => (out += d.toString()));
      child.on('error', reject);
      child.on('close', (code) => {
        outputs.push({ what, out, ms: Date.now() - started, code });
        resolve(code);
      });
    });

  before(async () => {
    redis = await startRedisServer({ password: secrets.redis });
    const closed = await freePort();
    t = await createTestEnv({
      REDIS_URL: redis.url,
      FRESHET_MEDIA_FILE: writeFaultMedia({ clip: faultDefinition('clip') }),
    });
    await seedFaultTable(t.dbs.catalog, 'clip', 300);
    const env: NodeJS.ProcessEnv = {
      ...t.env,
      LOG_LEVEL: 'debug',
      CATALOG_DATABASE_URL: withPassword(t.config.CATALOG_DATABASE_URL, secrets.db),
      API_DATABASE_URL: withPassword(t.config.API_DATABASE_URL, secrets.db),
      ELASTICSEARCH_USERNAME: 'elastic',
      ELASTICSEARCH_PASSWORD: secrets.es,
      FRESHET_OPERATOR_TOKEN: secrets.operator,
      FRESHET_VIEWER_TOKEN: secrets.viewer,
      // Nothing listens there: every alert fails to be delivered, and is logged as failing.
      ALERT_WEBHOOK_URL: `http://127.0.0.1:${closed}/services/${secrets.webhook}`,
    };

    worker = spawnCli(['worker'], env);
    await worker.waitFor(/worker started/);
    assert.equal(await run('refresh --wait', ['refresh', 'clip', '--wait'], env), 0);
    assert.equal(await run('runs', ['runs', '--json'], env), 0);
    assert.equal(await run('check', ['check'], env), 0);
    // Error paths: wrong or unreachable services, bad settings next to secrets.
    const failures: [string, string[], NodeJS.ProcessEnv][] = [
      [
        'unreachable Redis',
        ['check'],
        { ...env, REDIS_URL: `redis://:${secrets.redis}@127.0.0.1:${closed}` },
      ],
      [
        'unreachable Elasticsearch with credentials in the URL',
        ['check'],
        { ...env, ELASTICSEARCH_URL: `http://elastic:${secrets.es}@127.0.0.1:${closed}` },
      ],
      [
        'unreachable Elasticsearch with an API key',
        ['check'],
        {
          ...env,
          ELASTICSEARCH_API_KEY: secrets.esKey,
          ELASTICSEARCH_URL: `http://127.0.0.1:${closed}`,
        },
      ],
      [
        'unreachable database',
        ['check'],
        { ...env, API_DATABASE_URL: `postgres://postgres:${secrets.db}@127.0.0.1:${closed}/x` },
      ],
      [
        'a Redis password in a password= parameter',
        ['check'],
        { ...env, REDIS_URL: `redis://127.0.0.1:${closed}/0?password=${secrets.query}` },
      ],
      [
        'a database password in an sslpassword= parameter',
        ['check'],
        {
          ...env,
          API_DATABASE_URL: `postgres://postgres@127.0.0.1:${closed}/x?sslpassword=${secrets.query}`,
        },
      ],
      [
        'a Redis password with an unescaped @',
        ['check'],
        { ...env, REDIS_URL: `redis://:${halves[0]}@${halves[1]}@127.0.0.1:${closed}` },
      ],
      [
        'a database password with an unescaped /',
        ['check'],
        {
          ...env,
          CATALOG_DATABASE_URL: `postgres://postgres:${halves[2]}/${halves[3]}@127.0.0.1:${closed}/x`,
        },
      ],
      [
        'invalid settings beside secrets',
        ['check'],
        {
          ...env,
          FRESHET_OPERATOR_TOKEN: 'short',
          REDIS_URL: `http://:${secrets.redis}@127.0.0.1:${redis.port}`,
          ALERT_WEBHOOK_URL: `not a url ${secrets.webhook}`,
          ELASTICSEARCH_URL: `ftp://elastic:${secrets.es}@host`,
          WORKER_CONCURRENCY: 'x',
        },
      ],
    ];
    for (const [what, args, e] of failures) {
      assert.notEqual(await run(what, args, e), 0, what);
    }
    // A wrong password must not hang the producer (it once waited forever): bounded at 15 s.
    await run(
      'wrong Redis password',
      ['refresh', 'clip'],
      { ...env, REDIS_URL: `redis://:${secrets.redis}x@127.0.0.1:${redis.port}` },
      15_000,
    );
    // Nor the worker, whose Redis connections retried forever.
    await run(
      'wrong Redis password (worker)',
      ['worker'],
      { ...env, REDIS_URL: `redis://:${secrets.redis}x@127.0.0.1:${redis.port}` },
      15_000,
    );
    // The worker's startup line, with the (wrong) password in the query string.
    await run(
      'a Redis password in a password= parameter (worker)',
      ['worker'],
      { ...env, REDIS_URL: `redis://127.0.0.1:${redis.port}/0?password=${secrets.query}` },
      15_000,
    );
    await worker.stop();
    outputs.push({ what: 'worker', out: worker.output(), ms: 0, code: null });
  });

  after(async () => {
    await worker?.stop('SIGKILL');
    await t?.close();
    await redis?.close();
  });

  it('the worker and every command ran (and printed something to scan)', () => {
    assert.ok(outputs.length >= 10);
    assert.match(outputs.find((o) => o.what === 'worker')?.out ?? '', /"msg":"worker started"/);
    assert.match(outputs.find((o) => o.what === 'refresh --wait')?.out ?? '', /succeeded/);
  });

  for (const what of [
    'worker',
    'refresh --wait',
    'runs',
    'check',
    'wrong Redis password',
    'wrong Redis password (worker)',
    'unreachable Redis',
    'unreachable Elasticsearch with credentials in the URL',
    'unreachable Elasticsearch with an API key',
    'unreachable database',
    'a Redis password in a password= parameter',
    'a Redis password in a password= parameter (worker)',
    'a database password in an sslpassword= parameter',
    'a Redis password with an unescaped @',
    'a database password with an unescaped /',
    'invalid settings beside secrets',
  ]) {
    it(`no secret in the output of: ${what}`, (c) => {
      const o = outputs.find((x) => x.what === what);
      assert.ok(o, `${what} ran`);
      c.diagnostic(`${what}: exit ${o.code} after ${o.ms} ms`);
      assert.deepEqual(leakedSecrets(o.out, all), [], o.out.slice(-3000));
    });
  }

  for (const what of [
    'wrong Redis password',
    'wrong Redis password (worker)',
    'a Redis password in a password= parameter (worker)',
  ]) {
    it(`${what}: fails the command at once, with one line naming REDIS_URL`, () => {
      const o = outputs.find((x) => x.what === what);
      assert.equal(o?.code, 1, o?.out);
      assert.match(o?.out ?? '', /REDIS_URL/);
    });
  }

  it('masked URLs still say where: host, port, path and the parameter name', () => {
    const out = (what: string) => outputs.find((o) => o.what === what)?.out ?? '';
    assert.match(
      out('a Redis password in a password= parameter'),
      /cannot reach Redis at redis:\/\/127\.0\.0\.1:\d+\/0\?password=\*\*\* \(REDIS_URL\)/,
    );
    assert.match(
      out('a Redis password in a password= parameter (worker)'),
      /freshet: cannot reach Redis at redis:\/\/127\.0\.0\.1:\d+\/0\?password=\*\*\* \(REDIS_URL\)/,
    );
    assert.match(
      out('a database password in an sslpassword= parameter'),
      /postgres:\/\/postgres@127\.0\.0\.1:\d+\/x\?sslpassword=\*\*\*/,
    );
    assert.match(
      out('a Redis password with an unescaped @'),
      /cannot reach Redis at redis:\/\/:\*\*\*@127\.0\.0\.1:\d+ \(REDIS_URL\)/,
    );
    // A URL parser cuts that password at the /: the setting is refused, printed masked whole.
    assert.match(
      out('a database password with an unescaped /'),
      /CATALOG_DATABASE_URL must be a URL like .*, got "postgres:\/\/postgres:\*\*\*@127\.0\.0\.1:\d+\/x"/,
    );
  });

  it('no secret in the run store (runs, attempts, logs, audit, alerts)', async () => {
    let dump = '';
    for (const table of ['runs', 'stages', 'chunks', 'attempts', 'logs', 'audit', 'alerts']) {
      const { rows } = await t.dbs.api.query<{ t: string | null }>(
        `SELECT to_regclass($1)::text AS t`,
        [`freshet.${table}`],
      );
      if (!rows[0]?.t) continue;
      const all = await t.dbs.api.query<{ row: string }>(
        `SELECT x::text AS row FROM freshet.${table} x`,
      );
      dump += all.rows.map((r) => r.row).join('\n');
    }
    assert.ok(dump.length > 1000, 'the run store holds the run');
    assert.deepEqual(leakedSecrets(dump, all), []);
  });

  it('the secrets were really in use (the scans can find them)', () => {
    const probe = `redis://:${encodeURIComponent(secrets.redis)}@host ${secrets.es}`;
    assert.equal(leakedSecrets(probe, all).length, 2);
  });
});
