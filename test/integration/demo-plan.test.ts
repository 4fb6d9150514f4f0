import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { repoRoot, seedSample } from '@freshet/core';
import { planRefresh } from '@freshet/control';
import { createTestEnv, type TestEnv } from '../helpers/env.js';

/** The default of `${NAME:-value}` in scripts/demo.sh. */
function demoDefault(name: string): string {
  const demo = readFileSync(path.join(repoRoot, 'scripts/demo.sh'), 'utf8');
  const value = new RegExp(`\\$\\{${name}:-(\\d+)\\}`).exec(demo)?.[1];
  assert.ok(value, `scripts/demo.sh sets no default for ${name}`);
  return value;
}

/** The demo's chunk sizes over the Openverse sample: the run view shows a real fan-out. */
describe(
  'the demo plan (scripts/demo.sh settings, the shipped sample)',
  { timeout: 60_000 },
  () => {
    let t: TestEnv;

    before(async () => {
      t = await createTestEnv({ MIN_CHUNK_SIZE_ROWS: demoDefault('MIN_CHUNK_SIZE_ROWS') });
      await seedSample(t.dbs.catalog, t.media, t.config.FRESHET_SAMPLE_DIR);
    });
    after(async () => {
      await t?.close();
    });

    for (const [media, variable, rows, least] of [
      ['image', 'DEMO_IMAGE_CHUNK_ROWS', 1899, 11],
      ['audio', 'DEMO_AUDIO_CHUNK_ROWS', 100, 2],
    ] as const) {
      it(`${media}: the ${rows} sample rows fan out into ${least} chunks or more`, async () => {
        const plan = await planRefresh(
          { config: t.config, catalog: t.dbs.catalog, es: t.es, media: t.media },
          { media, chunkSizeRows: Number(demoDefault(variable)) },
        );
        assert.equal(plan.chunks.upstreamRows, rows);
        assert.ok(plan.chunks.count >= least, `${plan.chunks.count} chunks`);
      });
    }
  },
);
