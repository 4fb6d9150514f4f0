import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import {
  formatLiveViews,
  getMedia,
  liveViews,
  parseSensitiveTerms,
  refreshNames,
  seedSample,
  type FilteredMode,
  type FinalizeResult,
  type MediaDefinition,
  type RefreshNames,
} from '@freshet/core';
import { startWorker, type WorkerApp } from '@freshet/worker';
import { startRefresh } from '@freshet/control';
import { createTestEnv, type TestEnv } from '../helpers/env.js';
import { openCheckpoints, waitForRunStatus } from '../helpers/faults.js';
import { keysBySensitivity, writeImageMedia } from '../helpers/filtered-media.js';

type Keys = Awaited<ReturnType<typeof keysBySensitivity>>;

/** The ids of every hit of a search (the sample is far below 10,000 documents). */
async function ids(
  t: TestEnv,
  index: string,
  query: Record<string, unknown> = { match_all: {} },
): Promise<string[]> {
  const res = await t.es.search({ index, size: 10_000, _source: false, query });
  assert.ok(res.hits.hits.length < 10_000, 'more hits than one page');
  return res.hits.hits.map((h) => h._id as string).sort();
}

/**
 * The Openverse image sample refreshed twice from the same upstream rows: `image` with the
 * filtered view as a filtered alias over its one index, `image_index` with a second index. Both
 * must show every document through `<media>` and exactly the rows `sensitiveExpression` marks
 * non-sensitive through `<media>-filtered`, verified before promotion, and the same documents
 * through either filtered view.
 */
describe('the filtered view as a filtered alias or a second index', { timeout: 300_000 }, () => {
  const modes: Record<string, FilteredMode> = { image: 'alias', image_index: 'index' };
  let t: TestEnv;
  let worker: WorkerApp;
  let terms: string[];
  const runs: Record<string, string> = {};
  const names: Record<string, RefreshNames> = {};
  const keys: Record<string, Keys> = {};
  const deps = () => ({ config: t.config, api: t.dbs.api, media: t.media, queues: t.queues });

  before(async () => {
    t = await createTestEnv({ FRESHET_MEDIA_FILE: writeImageMedia(modes), CHUNK_SIZE_ROWS: '250' });
    terms = parseSensitiveTerms(readFileSync(t.config.SENSITIVE_TERMS_FILE, 'utf8'));
    await seedSample(t.dbs.catalog, t.media, t.config.FRESHET_SAMPLE_DIR);
    worker = await startWorker(t.config, t.logger);
    for (const media of Object.keys(modes)) {
      runs[media] = await startRefresh(deps(), { media });
      names[media] = refreshNames(
        getMedia(t.media, media),
        'production',
        runs[media],
        t.config.ELASTICSEARCH_INDEX_PREFIX,
      );
    }
    for (const media of Object.keys(modes)) {
      await t.waitForRunEnd(runs[media] as string);
      const n = names[media] as RefreshNames;
      keys[media] = await keysBySensitivity(t.dbs.api, t.media, media, n.table, terms);
    }
  });

  after(async () => {
    await worker?.close();
    await t?.close();
  });

  it('both builds read the same rows, some of them with sensitive terms', () => {
    const [a, b] = [keys.image as Keys, keys.image_index as Keys];
    assert.deepEqual(a, b);
    assert.ok(a.all.length > 1000, `${a.all.length} rows`);
    assert.ok(a.sensitive.length > 10, `${a.sensitive.length} sensitive rows`);
    assert.ok(a.clean.length > 10, `${a.clean.length} rows without sensitive terms`);
  });

  for (const [media, mode] of Object.entries(modes)) {
    it(`${media} (${mode}): finalize verified the filtered count before promotion`, async () => {
      const run = await t.store.getRun(runs[media] as string);
      assert.equal(run.status, 'succeeded', run.error ?? '');
      const { rows } = await t.dbs.api.query<{
        stage: string;
        started_at: Date;
        finished_at: Date;
        result: unknown;
      }>('SELECT stage, started_at, finished_at, result FROM freshet.stages WHERE run_id = $1', [
        run.id,
      ]);
      const stage = (name: string) => rows.find((r) => r.stage === name);
      const finalize = stage('finalize');
      const promote = stage('promote');
      assert.ok(finalize && promote, JSON.stringify(rows));
      assert.ok(finalize.finished_at <= promote.started_at, 'finalize ended before promotion');
      const k = keys[media] as Keys;
      const result = finalize.result as FinalizeResult;
      assert.equal(result.filtered, mode);
      assert.equal(result.indexDocs, k.all.length);
      assert.equal(result.filteredRows, k.clean.length);
      assert.equal(result.filteredDocs, k.clean.length);
      assert.equal(result.nonSensitiveDocs, k.clean.length);
    });

    it(`${media} (${mode}): ${mode === 'alias' ? 'one index; the filtered alias filters it' : 'two indices, one per alias'}`, async () => {
      const n = names[media] as RefreshNames;
      const built = await t.es.cat.indices({ index: `${n.alias}-*`, format: 'json', h: 'index' });
      assert.deepEqual(
        built.map((i) => i.index).sort(),
        mode === 'alias' ? [n.index] : [n.index, `${n.index}-filtered`],
      );
      const aliases = await t.es.indices.getAlias({ name: [n.alias, n.filteredAlias] });
      const view = Object.entries(aliases)
        .map(([index, a]) => [index, a.aliases])
        .sort();
      assert.deepEqual(
        view,
        mode === 'alias'
          ? [
              [
                n.index,
                { [n.alias]: {}, [n.filteredAlias]: { filter: { term: { sensitive: false } } } },
              ],
            ]
          : [
              [n.index, { [n.alias]: {} }],
              [`${n.index}-filtered`, { [n.filteredAlias]: {} }],
            ].sort(),
      );
    });

    it(`${media} (${mode}): the main alias shows every document, each with its sensitive flag`, async () => {
      const n = names[media] as RefreshNames;
      const k = keys[media] as Keys;
      assert.deepEqual(await ids(t, n.alias), k.all);
      const res = await t.es.search<{ sensitive: boolean }>({
        index: n.alias,
        size: 10_000,
        _source: ['sensitive'],
      });
      const flagged = res.hits.hits.filter((h) => h._source?.sensitive === true).map((h) => h._id);
      const unflagged = res.hits.hits.filter((h) => h._source?.sensitive === false);
      assert.deepEqual(flagged.sort(), k.sensitive);
      assert.equal(unflagged.length, k.clean.length, 'every document has a boolean sensitive');
    });

    it(`${media} (${mode}): the filtered alias shows exactly the rows without sensitive terms`, async () => {
      const n = names[media] as RefreshNames;
      const k = keys[media] as Keys;
      assert.deepEqual(await ids(t, n.filteredAlias), k.clean);
      assert.equal((await t.es.count({ index: n.filteredAlias })).count, k.clean.length);
      // Openverse's API learns which hits are sensitive with a terms query through the view.
      const all = await ids(t, n.filteredAlias, { terms: { identifier: k.all } });
      assert.deepEqual(all, k.clean);
      const some = await ids(t, n.filteredAlias, { terms: { identifier: k.sensitive } });
      assert.deepEqual(some, []);
    });
  }

  it('searches through <media>-filtered return the same documents in both modes', async () => {
    const [a, b] = [names.image as RefreshNames, names.image_index as RefreshNames];
    const queries: Record<string, unknown>[] = [
      { match_all: {} },
      { multi_match: { query: 'dog cat tree', fields: ['title', 'description', 'tags.name'] } },
      { match: { title: 'water' } },
      { term: { provider: 'flickr' } },
      { terms: { identifier: (keys.image as Keys).all.slice(0, 500) } },
    ];
    let hits = 0;
    for (const query of queries) {
      const [x, y] = [await ids(t, a.filteredAlias, query), await ids(t, b.filteredAlias, query)];
      assert.deepEqual(x, y, JSON.stringify(query));
      hits += x.length;
    }
    assert.ok(hits > 0);
    // And the documents themselves are the same, `sensitive` included.
    const sample = (keys.image as Keys).all.filter((_, i) => i % 7 === 0);
    const sources = async (index: string) =>
      (await t.es.mget<Record<string, unknown>>({ index, ids: sample })).docs.map((d) =>
        '_source' in d && d._source !== undefined ? d._source : null,
      );
    const [sa, sb] = [await sources(a.alias), await sources(b.alias)];
    assert.ok(sa.every((s) => s !== null && typeof s.sensitive === 'boolean'));
    assert.deepEqual(sa, sb);
  });

  it('alias mode: GET by id through the filtered alias is not filtered; searches and counts are', async () => {
    const id = (keys.image as Keys).sensitive[0] as string;
    const a = names.image as RefreshNames;
    const b = names.image_index as RefreshNames;
    const got = await t.es.get({ index: a.filteredAlias, id });
    assert.equal(got.found, true, 'a filtered alias does not filter GET by id');
    assert.equal(
      (await t.es.count({ index: a.filteredAlias, query: { ids: { values: [id] } } })).count,
      0,
    );
    // The second index of `index` mode does not hold the document at all.
    const missing = await t.es.get({ index: b.filteredAlias, id }, { ignore: [404] });
    assert.equal(missing.found, false);
  });

  it('the report counts the documents each filtered view shows', async () => {
    for (const [media, mode] of Object.entries(modes)) {
      const run = await t.store.getRun(runs[media] as string);
      const counts = run.counts as { filtered?: { mode: string; docs: number } };
      assert.deepEqual(counts.filtered, { mode, docs: (keys[media] as Keys).clean.length });
    }
  });

  it("freshet check shows each media type's views and says when the next refresh switches modes", async () => {
    const prefix = t.config.ELASTICSEARCH_INDEX_PREFIX;
    const line = async (def: MediaDefinition) =>
      formatLiveViews(await liveViews(t.es, def, 'production', prefix));
    const [a, b] = [names.image as RefreshNames, names.image_index as RefreshNames];
    const image = getMedia(t.media, 'image');
    assert.equal(
      await line(image),
      `image (filtered: alias): ${a.alias} -> ${a.index}; ${a.filteredAlias} -> ${a.index} filter {"term":{"sensitive":false}}`,
    );
    assert.equal(
      await line(getMedia(t.media, 'image_index')),
      `image_index (filtered: index): ${b.alias} -> ${b.index}; ${b.filteredAlias} -> ${b.index}-filtered`,
    );
    assert.match(
      await line({ ...image, filtered: 'index' }),
      /; live in alias mode, the next refresh switches it to index mode$/,
    );
    const unknown = { ...image, name: 'nothing_here' };
    assert.equal(await line(unknown), 'nothing_here (filtered: alias): not promoted yet');
  });

  it('alias mode: a document whose flag disagrees with its row fails finalize; the live build stays', async () => {
    const checkpoints = await openCheckpoints(t.config.API_DATABASE_URL);
    try {
      // The next finalize attempt of any run waits at its start; the index is complete by then.
      const hold = await checkpoints.arm(
        'freshet.attempts',
        'INSERT',
        `NEW.job_id LIKE '%.finalize'`,
      );
      const runId = await startRefresh(deps(), { media: 'image' });
      const n = refreshNames(
        getMedia(t.media, 'image'),
        'production',
        runId,
        t.config.ELASTICSEARCH_INDEX_PREFIX,
      );
      await hold.reached();
      const clean = (keys.image as Keys).clean[0] as string;
      await t.es.update({ index: n.index, id: clean, doc: { sensitive: true } });
      await hold.release();
      const run = await waitForRunStatus(t.store, runId);
      assert.equal(run.status, 'failed');
      assert.equal(run.stage, 'finalize');
      const expected = (keys.image as Keys).clean.length;
      assert.match(
        run.error ?? '',
        new RegExp(
          `${n.filteredAlias} would show ${expected - 1} documents of ${n.index} \\(filter sensitive: false\\) but ${expected} rows have no sensitive terms`,
        ),
      );
      const live = names.image as RefreshNames;
      const holders = await t.es.indices.getAlias({ name: [live.alias, live.filteredAlias] });
      assert.deepEqual(Object.keys(holders), [live.index], 'the aliases did not move');
      assert.deepEqual(await ids(t, live.filteredAlias), (keys.image as Keys).clean);
    } finally {
      await checkpoints.close();
    }
  });
});
