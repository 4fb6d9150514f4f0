import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import {
  createEsClient,
  getMedia,
  loadMediaCatalog,
  seedSynthetic,
  type EsClient,
  type FilteredMode,
} from '@freshet/core';
import { startWorker } from '@freshet/worker';
import { startRefresh } from '@freshet/control';
import { createTestEnv, type TestEnv } from '../helpers/env.js';
import {
  accounting,
  exactnessProblems,
  waitForRunStatus,
  type Accounting,
} from '../helpers/faults.js';
import { writeImageMedia } from '../helpers/filtered-media.js';

/** The modes of the successive builds: index -> alias -> index -> alias. */
const PHASES: readonly FilteredMode[] = ['index', 'alias', 'index', 'alias'];

interface Build {
  readonly mode: FilteredMode;
  readonly acc: Accounting;
}

/** What one `GET _alias/<main>,<filtered>` saw: each alias's holders, with the filter. */
type AliasState = string;

/**
 * A seeded image media type switched from `index` mode to `alias` mode and back across
 * successive refreshes (each build a different size), while searches run without pause against
 * `<media>` and `<media>-filtered` and a watcher reads both aliases in one request again and
 * again. No search may fail or come back empty, every answer must be a complete build's count,
 * and every state of the aliases the watcher sees must be one build's: both aliases on the same
 * build, in that build's mode. A promotion that moved the two aliases in two requests, or removed
 * one before adding it, would show a state of no build.
 */
describe(
  'switching the filtered view between index and alias mode under search load',
  {
    timeout: 300_000,
  },
  () => {
    let t: TestEnv;
    let searcher: EsClient;
    const files: Record<FilteredMode, string> = {
      index: writeImageMedia({ image: 'index' }),
      alias: writeImageMedia({ image: 'alias' }),
    };
    const builds: Build[] = [];
    const answers = { main: [] as number[], filtered: [] as number[] };
    const states = new Map<AliasState, number>();
    const failures: string[] = [];
    let searching = true;
    const indicesAfter: string[][] = [];

    before(async () => {
      t = await createTestEnv({ FRESHET_MEDIA_FILE: files.index, CHUNK_SIZE_ROWS: '400' });
      // No retries: a search that fails must be seen failing.
      searcher = createEsClient(t.config);
      const alias = `${t.config.ELASTICSEARCH_INDEX_PREFIX}image`;
      const filteredAlias = `${alias}-filtered`;
      const listIndices = async () =>
        (await t.es.cat.indices({ index: `${alias}-*`, format: 'json', h: 'index' }))
          .map((i) => i.index ?? '')
          .sort();
      const refresh = async (mode: FilteredMode) => {
        // A worker and a producer that read the definitions in this mode, as after a deploy.
        const media = loadMediaCatalog(files[mode]);
        const worker = await startWorker(
          { ...t.config, FRESHET_MEDIA_FILE: files[mode] },
          t.logger,
        );
        try {
          const runId = await startRefresh(
            { config: t.config, api: t.dbs.api, media, queues: t.queues },
            { media: 'image' },
          );
          const run = await waitForRunStatus(t.store, runId);
          assert.equal(run.status, 'succeeded', run.error ?? '');
          builds.push({ mode, acc: await accounting(t, runId, media) });
          indicesAfter.push(await listIndices());
        } finally {
          await worker.close();
        }
      };

      const def = getMedia(t.media, 'image');
      await seedSynthetic(t.dbs.catalog, def, { rows: 1500, seed: 21 });
      await refresh(PHASES[0] as FilteredMode);

      const count = async (index: string) => {
        const res = await searcher.search(
          { index, size: 0, track_total_hits: true, query: { match_all: {} } },
          { maxRetries: 0 },
        );
        const total = res.hits.total;
        return typeof total === 'number' ? total : (total?.value ?? -1);
      };
      const search = (kind: 'main' | 'filtered', index: string) =>
        (async () => {
          while (searching) {
            try {
              answers[kind].push(await count(index));
            } catch (err) {
              failures.push(`${kind}: ${(err as Error).message}`);
            }
          }
        })();
      const watch = async () => {
        while (searching) {
          try {
            const res = await searcher.indices.getAlias(
              { name: [alias, filteredAlias] },
              { maxRetries: 0 },
            );
            const state = JSON.stringify(
              Object.entries(res)
                .map(([index, a]) => [index, a.aliases])
                .sort(),
            );
            states.set(state, (states.get(state) ?? 0) + 1);
          } catch (err) {
            failures.push(`aliases: ${(err as Error).message}`);
          }
        }
      };
      const loops = [
        search('main', alias),
        search('filtered', filteredAlias),
        search('filtered', filteredAlias),
        watch(),
      ];
      for (const [i, mode] of PHASES.entries()) {
        if (i === 0) continue;
        // Each build differs in size, so an answer tells which build it came from.
        await seedSynthetic(t.dbs.catalog, def, { rows: 100 * i, seed: 21 + i, truncate: false });
        await refresh(mode);
      }
      searching = false;
      await Promise.all(loops);
    });

    after(async () => {
      searching = false;
      await searcher?.close();
      await t?.close();
    });

    it(`promoted ${PHASES.length} builds (${PHASES.join(' -> ')}), each exact, each in its mode`, () => {
      assert.deepEqual(
        builds.map((b) => b.mode),
        PHASES,
      );
      for (const b of builds) {
        assert.deepEqual(exactnessProblems(b.acc), [], b.mode);
        assert.equal(b.acc.names.indices.length, b.mode === 'alias' ? 1 : 2);
        assert.ok(b.acc.filteredDocs > 0 && b.acc.filteredDocs < b.acc.docs, JSON.stringify(b.acc));
      }
      assert.equal(new Set(builds.map((b) => b.acc.docs)).size, PHASES.length);
      assert.equal(new Set(builds.map((b) => b.acc.filteredDocs)).size, PHASES.length);
    });

    it('not one search failed or came back empty', () => {
      assert.deepEqual(failures, []);
      assert.ok(answers.main.length > 100, `${answers.main.length} main searches`);
      assert.ok(answers.filtered.length > 100, `${answers.filtered.length} filtered searches`);
      const empty = [...answers.main, ...answers.filtered].filter((n) => n <= 0);
      assert.deepEqual(empty, [], 'a search found nothing');
    });

    it('every answer is the count of one complete build', () => {
      const main = new Set(builds.map((b) => b.acc.docs));
      const filtered = new Set(builds.map((b) => b.acc.filteredDocs));
      assert.deepEqual(
        [...new Set(answers.main)].filter((n) => !main.has(n)),
        [],
      );
      assert.deepEqual(
        [...new Set(answers.filtered)].filter((n) => !filtered.has(n)),
        [],
      );
      // The load ran across every swap.
      assert.equal(new Set(answers.main).size, PHASES.length);
      assert.equal(new Set(answers.filtered).size, PHASES.length);
    });

    it('both aliases always moved together: every state seen is one build, in its mode', () => {
      const expected = new Map(
        builds.map((b) => {
          const [main, filtered] = b.acc.names.aliases;
          const holders: Record<string, Record<string, unknown>> = {};
          for (const a of [main, filtered]) {
            holders[a.index] = {
              ...holders[a.index],
              [a.alias]: a.filter === undefined ? {} : { filter: a.filter },
            };
          }
          return [JSON.stringify(Object.entries(holders).sort()), b.mode] as const;
        }),
      );
      const strays = [...states.keys()].filter((s) => !expected.has(s));
      assert.deepEqual(strays, [], 'a state of the aliases that is no build');
      // The watcher saw every build after the first one (the load began after it).
      assert.equal(states.size, PHASES.length);
      assert.ok([...states.values()].every((n) => n > 0));
    });

    it('keeps the build before the live one (in whichever mode it was) and deletes older ones', () => {
      for (const [i, b] of builds.entries()) {
        const previous = builds[i - 1]?.acc.names.indices ?? [];
        assert.deepEqual(
          indicesAfter[i],
          [...b.acc.names.indices, ...previous].sort(),
          `after build ${i} (${b.mode})`,
        );
      }
    });
  },
);
