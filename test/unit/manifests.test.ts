import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { pathToFileURL } from 'node:url';
import { ESLint, type Linter } from 'eslint';
import tseslint from 'typescript-eslint';
import { repoRoot } from '@freshet/core';

const rule = 'import-x/no-extraneous-dependencies';

/** The repo's own lint block that checks imports against the manifests (eslint.config.js). */
async function manifestBlock(): Promise<Linter.Config> {
  const url = pathToFileURL(path.join(repoRoot, 'eslint.config.js')).href;
  const config = ((await import(url)) as { default: Linter.Config[] }).default;
  const block = config.find((c) => c.rules?.[rule] !== undefined);
  assert.ok(block, `eslint.config.js has no block enabling ${rule}`);
  return block;
}

/** The import-check messages for `source` as if it were the file `file` (repo-relative). */
async function importProblems(file: string, source: string): Promise<string[]> {
  const eslint = new ESLint({
    cwd: repoRoot,
    overrideConfigFile: true,
    overrideConfig: [
      { files: ['**/*.ts'], languageOptions: { parser: tseslint.parser } },
      await manifestBlock(),
    ],
  });
  const [result] = await eslint.lintText(source, { filePath: path.join(repoRoot, file) });
  assert.ok(result);
  return result.messages.map((m) => {
    assert.equal(m.ruleId, rule, m.message);
    return m.message;
  });
}

void describe('lint: every workspace declares what it imports', () => {
  void it('fails on a package the workspace does not declare', async () => {
    // commander is declared by apps/producer (and so installed), not by apps/worker.
    const problems = await importProblems(
      'apps/worker/src/fixture.ts',
      "import { Command } from 'commander';\nexport const c = Command;\n",
    );
    assert.equal(problems.length, 1);
    assert.match(problems[0] ?? '', /'commander' should be listed in the project's dependencies/);
  });

  void it("fails on a workspace package's import of a root devDependency", async () => {
    const problems = await importProblems(
      'apps/dashboard/src/fixture.ts',
      "import { chromium } from 'playwright-core';\nexport const c = chromium;\n",
    );
    assert.equal(problems.length, 1);
    assert.match(problems[0] ?? '', /'playwright-core'/);
  });

  void it('fails on an undeclared workspace package (resolved through its exports)', async () => {
    const problems = await importProblems(
      'packages/core/src/fixture.ts',
      "import { startWorker } from '@freshet/worker';\nexport const s = startWorker;\n",
    );
    assert.equal(problems.length, 1);
    assert.match(problems[0] ?? '', /'@freshet\/worker'/);
  });

  void it('passes declared imports, type-only imports, and dev tools in tests', async () => {
    assert.deepEqual(
      await importProblems(
        'apps/worker/src/fixture.ts',
        [
          "import { Queue } from 'bullmq';",
          "import { repoRoot } from '@freshet/core';",
          "import type { Command } from 'commander';",
          'export const q: [unknown, string, Command?] = [Queue, repoRoot];',
        ].join('\n'),
      ),
      [],
    );
    assert.deepEqual(
      await importProblems(
        'test/unit/fixture.test.ts',
        "import { chromium } from 'playwright-core';\nexport const c = chromium;\n",
      ),
      [],
    );
  });

  void it('keeps node-cron and pg-cursor out of packages/core, and dev tools out of production', () => {
    const manifest = (file: string) =>
      JSON.parse(readFileSync(path.join(repoRoot, file), 'utf8')) as {
        dependencies?: Record<string, string>;
        devDependencies?: Record<string, string>;
      };
    const core = manifest('packages/core/package.json').dependencies ?? {};
    assert.equal(core['node-cron'], undefined);
    assert.equal(core['pg-cursor'], undefined);
    const root = manifest('package.json');
    // The bin's loader is a runtime dependency: `npm ci --omit=dev` keeps it.
    assert.ok(root.dependencies?.tsx, 'tsx must be a dependency of the root (scripts/freshet.mjs)');
    for (const tool of ['typescript', 'eslint', 'prettier', 'playwright-core']) {
      assert.equal(root.dependencies?.[tool], undefined, `${tool} is a dev tool`);
    }
  });
});
