import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { getMedia, refreshNames, seedSample, type RefreshNames } from '@freshet/core';
import { startWorker, type WorkerApp } from '@freshet/worker';
import { startRefresh } from '@freshet/control';
import { createTestEnv, type TestEnv } from '../helpers/env.js';

/**
 * The whole refresh on the real Openverse sample: seed, refresh image and audio with a worker,
 * then check what the API and search would serve.
 */
describe('refresh of the Openverse sample, end to end', { timeout: 300_000 }, () => {
  let t: TestEnv;
  let worker: WorkerApp;
  const runs: Record<string, string> = {};
  const names: Record<string, RefreshNames> = {};

  before(async () => {
    t = await createTestEnv({ CHUNK_SIZE_ROWS: '250' });
    await seedSample(t.dbs.catalog, t.media, t.config.FRESHET_SAMPLE_DIR);
    worker = await startWorker(t.config, t.logger);
    for (const media of ['image', 'audio']) {
      runs[media] = await startRefresh(
        { config: t.config, api: t.dbs.api, media: t.media, queues: t.queues },
        { media },
      );
      names[media] = refreshNames(
        getMedia(t.media, media),
        'production',
        runs[media],
        t.config.ELASTICSEARCH_INDEX_PREFIX,
      );
    }
    for (const media of ['image', 'audio']) await t.waitForRunEnd(runs[media] as string);
  });

  after(async () => {
    await worker?.close();
    await t?.close();
  });

  for (const media of ['image', 'audio']) {
    it(`${media}: the run succeeded and every stage is recorded`, async () => {
      const run = await t.store.getRun(runs[media] as string);
      assert.equal(run.status, 'succeeded', run.error ?? '');
      const { rows } = await t.dbs.api.query<{ stage: string; status: string }>(
        'SELECT stage, status FROM freshet.stages WHERE run_id = $1 ORDER BY started_at',
        [run.id],
      );
      assert.deepEqual(rows.map((r) => r.stage).sort(), [
        'finalize',
        'index',
        'preflight',
        'promote',
        'report',
      ]);
      assert.ok(
        rows.every((r) => r.status === 'done'),
        JSON.stringify(rows),
      );
    });

    it(`${media}: the alias count equals the promoted table's rows exactly, and the upstream minus removed and deleted`, async () => {
      const n = names[media] as RefreshNames;
      const table = await t.dbs.api.query<{ n: number; d: number }>(
        `SELECT count(*)::int AS n, count(DISTINCT identifier)::int AS d FROM ${n.table}`,
      );
      const upstream = await t.dbs.catalog.query<{ n: number }>(
        `SELECT count(*)::int AS n FROM ${media} u
          WHERE NOT removed_from_source
            AND NOT EXISTS (SELECT 1 FROM deleted_${media} d WHERE d.identifier = u.identifier)`,
      );
      const rejected = await t.dbs.api.query<{ n: number }>(
        `SELECT coalesce(sum((v ->> 'count')::int), 0)::int AS n FROM freshet.chunks c,
           jsonb_each(coalesce(c.result -> 'pass' -> 'rejected', '{}')) AS r(k, v) WHERE run_id = $1`,
        [runs[media]],
      );
      const docs = (await t.es.count({ index: n.alias })).count;
      assert.equal(table.rows[0]?.n, table.rows[0]?.d, 'no identifier twice in the table');
      assert.equal(docs, table.rows[0]?.n);
      assert.equal((table.rows[0]?.n ?? 0) + (rejected.rows[0]?.n ?? 0), upstream.rows[0]?.n);
      assert.ok(docs > 0);
    });

    it(`${media}: removed and deleted rows are absent from the table and the index`, async () => {
      const n = names[media] as RefreshNames;
      const gone = await t.dbs.catalog.query<{ id: string }>(
        `SELECT identifier::text AS id FROM ${media} WHERE removed_from_source
         UNION ALL SELECT identifier::text FROM deleted_${media}`,
      );
      const ids = gone.rows.map((r) => r.id);
      if (media === 'image')
        assert.ok(ids.length > 500, `expected removed rows in the sample, got ${ids.length}`);
      else assert.ok(ids.length > 0);
      const inTable = await t.dbs.api.query<{ n: number }>(
        `SELECT count(*)::int AS n FROM ${n.table} WHERE identifier = ANY($1::uuid[])`,
        [ids],
      );
      assert.equal(inTable.rows[0]?.n, 0);
      const hits = await t.es.count({ index: n.alias, query: { ids: { values: ids } } });
      assert.equal(hits.count, 0);
    });

    it(`${media}: cleaned fields are cleaned in the table and the documents`, async () => {
      const n = names[media] as RefreshNames;
      const { rows } = await t.dbs.api.query<{
        schemeless: number;
        upper: number;
        low: number;
        malformed: number;
      }>(
        `SELECT
           count(*) FILTER (WHERE url !~ '^https?://' OR foreign_landing_url !~ '^https?://' OR creator_url !~ '^https?://')::int AS schemeless,
           count(*) FILTER (WHERE license <> lower(license))::int AS upper,
           (SELECT count(*) FROM ${n.table} t2, jsonb_array_elements(CASE WHEN jsonb_typeof(t2.tags) = 'array' THEN t2.tags ELSE '[]' END) e
             WHERE (e ->> 'accuracy')::float8 < 0.9)::int AS low,
           (SELECT count(*) FROM ${n.table} t3, jsonb_array_elements(CASE WHEN jsonb_typeof(t3.tags) = 'array' THEN t3.tags ELSE '[]' END) e
             WHERE jsonb_typeof(e) <> 'object' OR jsonb_typeof(e -> 'name') <> 'string')::int AS malformed
         FROM ${n.table}`,
      );
      assert.deepEqual(rows[0], { schemeless: 0, upper: 0, low: 0, malformed: 0 });
      if (media === 'image') {
        // The sample has 50 upper-case CC0 licenses and low-accuracy clarifai tags: cleaning changed them.
        const cc0 = await t.es.count({ index: n.alias, query: { term: { license: 'cc0' } } });
        assert.ok(cc0.count > 0);
        const upper = await t.es.count({ index: n.alias, query: { term: { license: 'CC0' } } });
        assert.equal(upper.count, 0);
        const low = await t.es.count({
          index: n.alias,
          query: { range: { 'tags.accuracy': { lt: 0.9 } } },
        });
        assert.equal(low.count, 0);
      }
    });

    it(`${media}: sensitive documents are absent from the filtered alias only`, async () => {
      const n = names[media] as RefreshNames;
      // An independent oracle: a sensitive term as a whole word (letters, digits and _ are word characters).
      const sensitive = /(^|[^\p{L}\p{N}_])(water|running|bird)($|[^\p{L}\p{N}_])/iu;
      const { rows } = await t.dbs.api.query<{ id: string; text: string }>(
        `SELECT identifier::text AS id, concat_ws(' ', title, meta_data ->> 'description',
           (SELECT string_agg(e ->> 'name', ' ') FROM jsonb_array_elements(
              CASE WHEN jsonb_typeof(tags) = 'array' THEN tags ELSE '[]' END) e)) AS text
         FROM ${n.table}`,
      );
      const expected = new Set(rows.filter((r) => !sensitive.test(r.text)).map((r) => r.id));
      const res = await t.es.search({ index: n.filteredAlias, size: 10_000, _source: false });
      const actual = new Set(res.hits.hits.map((h) => h._id));
      assert.equal(actual.size, expected.size);
      assert.deepEqual(
        [...actual].filter((id) => !expected.has(id as string)),
        [],
      );
      if (media === 'image')
        assert.ok(rows.length - expected.size > 0, 'the image sample has sensitive terms');
      const query = {
        multi_match: { query: 'water running bird', fields: ['title', 'description', 'tags.name'] },
      };
      assert.equal((await t.es.count({ index: n.filteredAlias, query })).count, 0);
      assert.ok(media !== 'image' || (await t.es.count({ index: n.alias, query })).count > 0);
    });

    it(`${media}: the aliases answer searches`, async () => {
      const n = names[media] as RefreshNames;
      const res = await t.es.search({ index: n.alias, size: 3, query: { match_all: {} } });
      assert.equal(res.hits.hits.length, 3);
      assert.ok(res.hits.hits.every((h) => h._index === n.index));
    });
  }

  it('the report has per-source counts for every source, not a top 10', async () => {
    const run = await t.store.getRun(runs.image as string);
    const sources = (run.counts as { sources: Record<string, { before: number; after: number }> })
      .sources;
    const { rows } = await t.dbs.api.query<{ n: number }>(
      `SELECT count(DISTINCT provider)::int AS n FROM ${(names.image as RefreshNames).table}`,
    );
    assert.ok((rows[0]?.n ?? 0) > 10, 'the image sample has more than 10 providers');
    assert.equal(Object.keys(sources).length, rows[0]?.n);
    assert.ok(Object.values(sources).every((s) => s.before === 0 && s.after > 0));
  });
});
