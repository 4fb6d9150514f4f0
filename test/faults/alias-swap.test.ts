import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { createEsClient, type EsClient } from '@freshet/core';
import { startWorker, type WorkerApp } from '@freshet/worker';
import { startRefresh } from '@freshet/control';
import { createTestEnv, type TestEnv } from '../helpers/env.js';
import { startSearchLoad, type SearchLoad } from '../helpers/live-reader.js';
import {
  accounting,
  exactnessProblems,
  faultDefinition,
  seedFaultTable,
  waitForRunStatus,
  writeFaultMedia,
  type Accounting,
} from '../helpers/faults.js';

const PROMOTIONS = 4;

/**
 * Searches run without pause against `<media>` and `<media>-filtered` while the media type is
 * refreshed and promoted again and again, each build a different size. Not one search may fail,
 * and every answer must come from a complete build: its hit count is one of the builds' counts.
 */
describe('alias swaps under a constant search load', { timeout: 180_000 }, () => {
  let t: TestEnv;
  let worker: WorkerApp;
  let searcher: EsClient;
  const builds: Accounting[] = [];
  let load: SearchLoad<'main' | 'filtered'> | undefined;
  let answers: Record<'main' | 'filtered', number[]>;
  let failures: string[];

  before(async () => {
    t = await createTestEnv({
      FRESHET_MEDIA_FILE: writeFaultMedia({ clip: faultDefinition('clip') }),
    });
    // No retries: a search that fails must be seen failing.
    searcher = createEsClient(t.config);
    worker = await startWorker(t.config, t.logger);
    const deps = { config: t.config, api: t.dbs.api, media: t.media, queues: t.queues };
    const alias = `${t.config.ELASTICSEARCH_INDEX_PREFIX}clip`;
    const refresh = async () => {
      const runId = await startRefresh(deps, { media: 'clip' });
      const run = await waitForRunStatus(t.store, runId);
      assert.equal(run.status, 'succeeded', run.error ?? '');
      builds.push(await accounting(t, runId));
    };

    await seedFaultTable(t.dbs.catalog, 'clip', 400);
    await refresh();
    load = startSearchLoad(searcher, [
      ['main', alias],
      ['main', alias],
      ['filtered', `${alias}-filtered`],
    ]);
    ({ answers, failures } = load);
    for (let i = 1; i < PROMOTIONS; i++) {
      // Each build differs in size, so an answer tells which build it came from.
      await seedFaultTable(t.dbs.catalog, 'clip', 50 * i, { from: 1000 * i });
      await refresh();
    }
    await load.stop();
  });

  after(async () => {
    await load?.stop();
    await worker?.close();
    await searcher?.close();
    await t?.close();
  });

  it(`promoted ${PROMOTIONS} builds of different sizes, each exact`, () => {
    assert.equal(builds.length, PROMOTIONS);
    for (const b of builds) assert.deepEqual(exactnessProblems(b), []);
    assert.equal(new Set(builds.map((b) => b.docs)).size, PROMOTIONS);
  });

  it('not one search failed', () => {
    assert.deepEqual(failures, []);
    assert.ok(answers.main.length > 100, `${answers.main.length} searches`);
  });

  it('every answer came from a complete build (the hit count of one of the builds)', () => {
    const main = new Set(builds.map((b) => b.docs));
    const filtered = new Set(builds.map((b) => b.filteredDocs));
    assert.deepEqual(
      [...new Set(answers.main)].filter((n) => !main.has(n)),
      [],
    );
    assert.deepEqual(
      [...new Set(answers.filtered)].filter((n) => !filtered.has(n)),
      [],
    );
    // The load ran across the swaps: it saw every build after the first.
    assert.equal(new Set(answers.main).size, PROMOTIONS);
  });
});
