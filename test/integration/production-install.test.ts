import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { repoRoot } from '@freshet/core';

/**
 * What the image does (scripts/docker/Dockerfile), without a Docker engine: the manifests and the
 * sources in a fresh directory, `npm ci --omit=dev`, then the CLI from there.
 */
describe('production install (npm ci --omit=dev)', { timeout: 300_000 }, () => {
  let dir = '';

  const run = (cmd: string, args: string[], env: NodeJS.ProcessEnv = process.env) =>
    spawnSync(cmd, args, { cwd: dir, env, encoding: 'utf8', timeout: 240_000 });

  before(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'freshet-prod-'));
    const workspaces = (
      JSON.parse(readFileSync(path.join(repoRoot, 'package.json'), 'utf8')) as {
        workspaces: string[];
      }
    ).workspaces;
    for (const entry of ['package.json', 'package-lock.json', 'scripts', ...workspaces]) {
      cpSync(path.join(repoRoot, entry), path.join(dir, entry), {
        recursive: true,
        filter: (src) => path.basename(src) !== 'node_modules',
      });
    }
    // From the npm cache when it holds every package (it does after the repo's own install);
    // from the registry otherwise.
    const npmArgs = ['ci', '--omit=dev', '--no-audit', '--no-fund', '--loglevel=error'];
    let install = run('npm', [...npmArgs, '--offline']);
    if (install.status !== 0) install = run('npm', npmArgs);
    assert.equal(install.status, 0, `npm ci --omit=dev failed:\n${install.stderr}`);
  });
  after(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('leaves the dev tools out and keeps the runtime loader', () => {
    // typescript stays: npm keeps a devOptional package (@bull-board/api's valibot names it as an
    // optional peer), though nothing at run time loads it.
    for (const dev of [
      'eslint',
      'typescript-eslint',
      'prettier',
      'playwright-core',
      '@types/node',
    ]) {
      assert.equal(existsSync(path.join(dir, 'node_modules', dev)), false, `${dev} was installed`);
    }
    assert.ok(existsSync(path.join(dir, 'node_modules/tsx/package.json')), 'tsx is missing');
    const du = (p: string) => run('du', ['-sh', p]).stdout.split('\t')[0];
    console.log(
      `node_modules: ${du(path.join(dir, 'node_modules'))} with --omit=dev, ${du(path.join(repoRoot, 'node_modules'))} in the repo (full install)`,
    );
  });

  it('runs `freshet --help` from it with NODE_ENV=production', () => {
    const help = run(process.execPath, ['scripts/freshet.mjs', '--help'], {
      ...process.env,
      NODE_ENV: 'production',
    });
    assert.equal(help.status, 0, help.stderr);
    assert.match(help.stdout, /^Usage: freshet /m);
    for (const command of ['refresh', 'worker', 'dashboard', 'schedule']) {
      assert.match(help.stdout, new RegExp(`^ {2}${command}\\b`, 'm'), command);
    }
  });

  it('loads every app it ships: a worker and the dashboard fail on config, not on a missing module', () => {
    // An invalid setting stops each app at its config check, after every module has loaded.
    for (const command of ['worker', 'dashboard', 'schedule']) {
      const res = run(process.execPath, ['scripts/freshet.mjs', command], {
        ...process.env,
        NODE_ENV: 'production',
        WORKER_CONCURRENCY: 'abc',
      });
      const output = res.stdout + res.stderr;
      assert.notEqual(res.status, 0, `${command}: ${output}`);
      assert.doesNotMatch(output, /ERR_MODULE_NOT_FOUND|Cannot find (module|package)/, command);
      assert.match(output, /WORKER_CONCURRENCY/, `${command}: ${output}`);
    }
  });
});
