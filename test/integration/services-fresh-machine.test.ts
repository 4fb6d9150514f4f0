import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import {
  chmodSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { repoRoot } from '@freshet/core';

/**
 * scripts/services.sh on a machine without Redis and PostgreSQL: a PATH of a temp dir holding only
 * the few tools the script runs before it installs or stops. `id` and `apt-get` there are small
 * stand-ins (who the user is, and a package manager that records what it was asked and installs
 * nothing), so no test ever installs a package.
 */
describe(
  'services.sh on a fresh machine (no Redis, no PostgreSQL on PATH)',
  { timeout: 60_000 },
  () => {
    let dir = '';
    const which = (tool: string) => {
      const r = spawnSync('bash', ['-c', `command -v ${tool}`], { encoding: 'utf8' });
      assert.equal(r.status, 0, `${tool} is needed by this test`);
      return r.stdout.trim();
    };
    const bash = () => which('bash');

    /** A PATH dir with the real `tools`, and scripts for `fakes` (name -> sh body). */
    function machine(name: string, fakes: Record<string, string>): string {
      const bin = path.join(dir, name, 'bin');
      mkdirSync(bin, { recursive: true });
      for (const tool of ['dirname', 'mkdir']) symlinkSync(which(tool), path.join(bin, tool));
      for (const [fake, body] of Object.entries(fakes)) {
        writeFileSync(path.join(bin, fake), `#!/bin/sh\n${body}\n`);
        chmodSync(path.join(bin, fake), 0o755);
      }
      return bin;
    }

    function services(bin: string, action: string, env: NodeJS.ProcessEnv = {}) {
      const r = spawnSync(bash(), [path.join(repoRoot, 'scripts/services.sh'), action], {
        encoding: 'utf8',
        env: {
          PATH: bin,
          HOME: path.dirname(bin),
          FRESHET_CACHE_DIR: path.join(path.dirname(bin), 'cache'),
          ...env,
        },
      });
      return { status: r.status, stdout: r.stdout, stderr: r.stderr };
    }

    before(() => {
      dir = mkdtempSync(path.join(tmpdir(), 'freshet-fresh-'));
    });
    after(() => {
      if (dir) rmSync(dir, { recursive: true, force: true });
    });

    const allPackages = 'redis-tools redis-server postgresql-client postgresql';

    it('not root: stops with the one command that installs Redis and PostgreSQL', () => {
      const bin = machine('user', { id: 'echo 1000', 'apt-get': 'echo "$@" >>"$0.calls"; exit 0' });
      const r = services(bin, 'up');
      assert.equal(r.status, 1, r.stdout + r.stderr);
      assert.equal(
        r.stderr.trim(),
        `services: FAILED: Redis is not installed: run  sudo apt-get update && sudo apt-get install -y ${allPackages}  (then run this again)`,
      );
      assert.doesNotMatch(r.stdout, /installing/);
      assert.throws(() => readFileSync(path.join(bin, 'apt-get.calls')), /ENOENT/, 'apt-get ran');
    });

    it('root with FRESHET_NO_INSTALL=1: the same command for PostgreSQL, nothing installed', () => {
      const bin = machine('no-install', {
        id: 'echo 0',
        'apt-get': 'echo "$@" >>"$0.calls"; exit 0',
      });
      const r = services(bin, 'postgres', { FRESHET_NO_INSTALL: '1' });
      assert.equal(r.status, 1);
      assert.match(
        r.stderr,
        new RegExp(
          `PostgreSQL is not installed: run {2}sudo apt-get update && sudo apt-get install -y postgresql-client postgresql redis-tools redis-server `,
        ),
      );
      assert.throws(() => readFileSync(path.join(bin, 'apt-get.calls')), /ENOENT/, 'apt-get ran');
    });

    it('root without apt-get: stops with the command too', () => {
      const bin = machine('no-apt', { id: 'echo 0' });
      const r = services(bin, 'redis');
      assert.equal(r.status, 1);
      assert.match(
        r.stderr,
        /Redis is not installed: run {2}sudo apt-get update && sudo apt-get install -y redis-tools redis-server/,
      );
    });

    it("root with apt-get: installs Debian's packages (and checks they arrived)", () => {
      const bin = machine('root', {
        id: 'echo 0',
        'apt-get': 'echo "$DEBIAN_FRONTEND $*" >>"$0.calls"; exit 0',
      });
      const r = services(bin, 'up');
      assert.match(
        r.stdout,
        /^services: installing Debian's redis-tools redis-server for Redis \(output in .*apt\.log\)$/m,
      );
      assert.deepEqual(
        readFileSync(path.join(bin, 'apt-get.calls'), 'utf8').trimEnd().split('\n'),
        [' update -qq', 'noninteractive install -y -qq redis-tools redis-server'],
      );
      // The stand-in installed nothing: the script notices instead of going on without Redis.
      assert.equal(r.status, 1);
      assert.match(
        r.stderr,
        /Redis is still missing after apt-get install -y redis-tools redis-server \(see .*apt\.log\)/,
      );
    });

    it('root with apt-get, a failing install: stops naming the log', () => {
      const bin = machine('apt-fails', {
        id: 'echo 0',
        'apt-get': 'echo "E: Unable to locate package" >&2; exit 100',
      });
      const r = services(bin, 'postgres');
      assert.equal(r.status, 1);
      assert.match(
        r.stderr,
        /apt-get install -y postgresql-client postgresql failed \(see (.*apt\.log)\)/,
      );
      const log = /\(see (.*apt\.log)\)/.exec(r.stderr)?.[1] ?? '';
      assert.match(readFileSync(log, 'utf8'), /Unable to locate package/);
    });
  },
);
