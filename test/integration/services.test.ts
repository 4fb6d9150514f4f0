import assert from 'node:assert/strict';
import { pipeline } from 'node:stream/promises';
import { after, before, describe, it } from 'node:test';
import { from as copyFrom, to as copyTo } from 'pg-copy-streams';
import { createProducerRedis } from '@freshet/core';
import { createTestEnv, type TestEnv } from '../helpers/env.js';

/** The three real services answer the way Freshet uses them. */
describe('real services', { timeout: 60_000 }, () => {
  let t: TestEnv;

  before(async () => {
    t = await createTestEnv();
  });
  after(async () => {
    await t?.close();
  });

  it('Elasticsearch: create an index, bulk documents, search them', async () => {
    const index = `${t.config.ELASTICSEARCH_INDEX_PREFIX}smoke`;
    await t.es.indices.create({
      index,
      mappings: { properties: { title: { type: 'text' }, provider: { type: 'keyword' } } },
    });
    const docs = [
      { id: 'a', title: 'a red bicycle', provider: 'flickr' },
      { id: 'b', title: 'a blue boat', provider: 'wikimedia' },
      { id: 'c', title: 'red sunset over water', provider: 'flickr' },
    ];
    const res = await t.es.bulk({
      refresh: true,
      operations: docs.flatMap(({ id, ...doc }) => [{ index: { _index: index, _id: id } }, doc]),
    });
    assert.equal(res.errors, false);
    const hits = await t.es.search<{ title: string }>({
      index,
      query: { match: { title: 'red' } },
    });
    assert.deepEqual(hits.hits.hits.map((h) => h._id).sort(), ['a', 'c']);
    const agg = await t.es.search({
      index,
      size: 0,
      aggs: { p: { terms: { field: 'provider' } } },
    });
    const buckets = (agg.aggregations?.p as { buckets: { key: string; doc_count: number }[] })
      .buckets;
    assert.deepEqual(
      buckets.map((b) => [b.key, b.doc_count]),
      [
        ['flickr', 2],
        ['wikimedia', 1],
      ],
    );
  });

  it('PostgreSQL: copy rows from the catalog database to the API database by binary COPY', async () => {
    await t.dbs.catalog.query(
      `CREATE TABLE src AS SELECT gen_random_uuid() AS id, 'row ' || i AS title FROM generate_series(1, 10000) i`,
    );
    await t.dbs.api.query('CREATE TABLE dst (id uuid, title text)');
    const source = await t.dbs.catalog.connect();
    const target = await t.dbs.api.connect();
    try {
      const sink = target.query(copyFrom('COPY dst FROM STDIN (FORMAT binary)'));
      await pipeline(source.query(copyTo('COPY src TO STDOUT (FORMAT binary)')), sink);
      assert.equal(sink.rowCount, 10000);
    } finally {
      source.release();
      target.release();
    }
    const a = await t.dbs.catalog.query<{ h: string }>(
      `SELECT md5(string_agg(id::text || title, ',' ORDER BY id)) AS h FROM src`,
    );
    const b = await t.dbs.api.query<{ h: string }>(
      `SELECT md5(string_agg(id::text || title, ',' ORDER BY id)) AS h FROM dst`,
    );
    assert.equal(b.rows[0]?.h, a.rows[0]?.h);
  });

  it('Redis: answers with noeviction, as BullMQ requires', async () => {
    const redis = createProducerRedis(t.config);
    const policy = await redis.config('GET', 'maxmemory-policy');
    redis.disconnect();
    assert.equal(policy[1], 'noeviction');
  });
});
