// Runs the real `freshet check` against the real services: a bad setting or an unreachable service
// must end the CLI quickly, with one line on stderr that names the setting to fix.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createServer } from 'node:net';
import path from 'node:path';
import { before, describe, it } from 'node:test';
import type { FilteredMode } from '@freshet/core';
import { repoRoot } from '../../packages/core/src/config.js';
import { writeImageMedia } from '../helpers/filtered-media.js';
import { runCli, type CliResult } from '../helpers/processes.js';

/** A fail-fast bound, not a benchmark: a connect timeout of a few seconds plus Node's start-up. */
const FAIL_FAST_MS = 15_000;
const CLI_TIMEOUT_MS = 60_000;

/** A `freshet check` run, with how long it took. */
type CheckResult = CliResult & { readonly elapsedMs: number };

/** Runs `node scripts/freshet.mjs check` from the repository root with `overrides` on the env. */
async function runCheck(overrides: Record<string, string> = {}): Promise<CheckResult> {
  const started = performance.now();
  const result = await runCli(['check'], { ...process.env, ...overrides }, CLI_TIMEOUT_MS);
  return { ...result, elapsedMs: performance.now() - started };
}

/** A TCP port on 127.0.0.1 that nothing listens on: bound by the OS, then released. */
function closedPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => {
        if (address && typeof address === 'object') resolve(address.port);
        else reject(new Error(`unexpected server address ${String(address)}`));
      });
    });
  });
}

/** Asserts a failed run printed exactly one stderr line, naming `setting`, within the bound. */
function assertOneLineFailure(result: CheckResult, setting: string): string {
  const shown = JSON.stringify(result);
  assert.equal(result.signal, null, `the CLI was killed after ${CLI_TIMEOUT_MS} ms: ${shown}`);
  assert.notEqual(result.code, 0, `the CLI exited 0: ${shown}`);
  const lines = result.stderr.trimEnd().split('\n');
  assert.equal(lines.length, 1, `expected one line on stderr, got ${lines.length}: ${shown}`);
  const [line = ''] = lines;
  assert.ok(line.includes(setting), `the stderr line does not name ${setting}: ${line}`);
  assert.ok(!result.stdout.includes('configuration valid'), shown);
  assert.ok(
    result.elapsedMs < FAIL_FAST_MS,
    `took ${Math.round(result.elapsedMs)} ms, more than ${FAIL_FAST_MS} ms: ${line}`,
  );
  return line;
}

void describe('freshet check fails fast', { timeout: 5 * 60_000 }, () => {
  before(() => {
    // Idempotent: starts whichever of Redis, PostgreSQL and Elasticsearch is not answering.
    const up = spawnSync('bash', [path.join(repoRoot, 'scripts/services.sh'), 'up'], {
      cwd: repoRoot,
      encoding: 'utf8',
      timeout: 4 * 60_000,
    });
    assert.equal(up.status, 0, `scripts/services.sh up failed:\n${up.stdout}${up.stderr}`);
  });

  void it('exits 0 when the settings are valid and every service answers', async () => {
    const result = await runCheck();
    assert.equal(result.code, 0, JSON.stringify(result));
    assert.match(result.stdout, /configuration valid/);
    // One line per media type: how its filtered view is served and where its aliases are now.
    assert.match(result.stdout, /^image \(filtered: alias\): /m);
    assert.match(result.stdout, /^audio \(filtered: alias\): /m);
    assert.equal(result.stderr, '');
  });

  void it('rejects a media definition whose filtered mode is neither alias nor index', async () => {
    const file = writeImageMedia({ image: 'both' as FilteredMode });
    const result = await runCheck({ FRESHET_MEDIA_FILE: file });
    const shown = JSON.stringify(result);
    assert.notEqual(result.code, 0, shown);
    assert.equal(result.stderr.trimEnd().split('\n').length, 1, shown);
    assert.match(
      result.stderr,
      /media type image is invalid: filtered: must be "alias" .* or "index" .*, got "both"/,
    );
    assert.ok(!result.stdout.includes('configuration valid'), shown);
  });

  void it('rejects a malformed ELASTICSEARCH_URL, naming the expected form', async () => {
    const result = await runCheck({ ELASTICSEARCH_URL: 'not-a-url' });
    const line = assertOneLineFailure(result, 'ELASTICSEARCH_URL');
    assert.ok(line.includes('http://127.0.0.1:9200'), `no expected form in: ${line}`);
    assert.ok(line.includes('"not-a-url"'), `no value seen in: ${line}`);
  });

  void it('reports the settings before trying any service', async () => {
    // REDIS_URL is well-formed but unreachable: only the malformed settings may be reported.
    const result = await runCheck({
      ELASTICSEARCH_URL: 'not-a-url',
      WORKER_CONCURRENCY: 'abc',
      REDIS_URL: `redis://127.0.0.1:${await closedPort()}`,
    });
    const line = assertOneLineFailure(result, 'ELASTICSEARCH_URL');
    assert.ok(line.includes('WORKER_CONCURRENCY'), `one error lists every bad setting: ${line}`);
    assert.ok(!line.includes('REDIS_URL'), `a connection was tried before validation: ${line}`);
  });

  const unreachable: [setting: string, url: (port: number) => string][] = [
    ['REDIS_URL', (port) => `redis://127.0.0.1:${port}`],
    ['CATALOG_DATABASE_URL', (port) => `postgres://postgres@127.0.0.1:${port}/freshet_catalog`],
    ['API_DATABASE_URL', (port) => `postgres://postgres@127.0.0.1:${port}/freshet_api`],
    ['ELASTICSEARCH_URL', (port) => `http://127.0.0.1:${port}`],
  ];
  for (const [setting, url] of unreachable) {
    void it(`names ${setting} when nothing listens on its port`, async () => {
      const port = await closedPort();
      const line = assertOneLineFailure(await runCheck({ [setting]: url(port) }), setting);
      assert.ok(line.includes(`127.0.0.1:${port}`), `the line does not say where: ${line}`);
    });
  }
});
