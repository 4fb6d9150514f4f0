import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { createProducerRedis, getMedia, seedSynthetic } from '@freshet/core';
import { startWorker } from '@freshet/worker';
import { formatPlan, planRefresh, startRefresh } from '@freshet/control';
import { createTestEnv, type TestEnv } from '../helpers/env.js';

/** Everything a refresh could touch, read back: tables and row counts, indices, aliases, Redis keys. */
async function snapshot(t: TestEnv): Promise<string> {
  const tables = async (pool: typeof t.dbs.api) => {
    const { rows } = await pool.query<{ name: string }>(
      `SELECT n.nspname || '.' || c.relname AS name FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE c.relkind IN ('r', 'v', 'i') AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast')
        ORDER BY 1`,
    );
    const counts: string[] = [];
    for (const { name } of rows) {
      const [schema, rel] = name.split('.');
      const kind = await pool.query<{ k: string }>(
        `SELECT c.relkind AS k FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1 AND c.relname = $2`,
        [schema, rel],
      );
      if (kind.rows[0]?.k !== 'r') {
        counts.push(name);
        continue;
      }
      const n = await pool.query<{ n: number; h: string | null }>(
        `SELECT count(*)::int AS n, md5(string_agg(t::text, ',' ORDER BY t::text)) AS h FROM "${schema}"."${rel}" t`,
      );
      counts.push(`${name}=${n.rows[0]?.n}:${n.rows[0]?.h}`);
    }
    return counts;
  };
  const redis = createProducerRedis(t.config);
  const keys = (await redis.keys(`${t.config.FRESHET_QUEUE_PREFIX}:*`)).sort();
  const values = await Promise.all(keys.map(async (k) => `${k}:${await redis.type(k)}`));
  redis.disconnect();
  const indices = await t.es.cat.indices({
    index: `${t.config.ELASTICSEARCH_INDEX_PREFIX}*`,
    format: 'json',
    h: 'index,docs.count',
  });
  const aliases = await t.es.cat.aliases({
    name: `${t.config.ELASTICSEARCH_INDEX_PREFIX}*`,
    format: 'json',
    h: 'alias,index',
  });
  return JSON.stringify({
    catalog: await tables(t.dbs.catalog),
    api: await tables(t.dbs.api),
    redis: values,
    indices: indices.map((i) => `${i.index}=${i['docs.count']}`).sort(),
    aliases: aliases.map((a) => `${a.alias}->${a.index}`).sort(),
  });
}

describe('a dry run', { timeout: 120_000 }, () => {
  let t: TestEnv;
  let liveIndex: string;

  before(async () => {
    t = await createTestEnv();
    await seedSynthetic(t.dbs.catalog, getMedia(t.media, 'image'), { rows: 2000, seed: 11 });
    // A live build first, so the plan has aliases to move and tables to swap.
    const worker = await startWorker(t.config, t.logger);
    const runId = await startRefresh(
      { config: t.config, api: t.dbs.api, media: t.media, queues: t.queues },
      { media: 'image' },
    );
    await t.waitForRunEnd(runId);
    await worker.close();
    liveIndex = `${t.config.ELASTICSEARCH_INDEX_PREFIX}image-${runId}`;
  });

  after(async () => {
    await t?.close();
  });

  it('prints the plan and leaves PostgreSQL, Elasticsearch and Redis exactly as they were', async () => {
    const before = await snapshot(t);
    const deps = { config: t.config, catalog: t.dbs.catalog, es: t.es, media: t.media };
    const plan = await planRefresh(deps, { media: 'image', chunkSizeRows: 300 });
    const staging = await planRefresh(deps, {
      media: 'image',
      profile: 'staging',
      chunkSizeRows: 100,
      shadow: true,
    });
    const after = await snapshot(t);
    assert.equal(after, before);

    assert.equal(plan.chunks.count, 7);
    assert.equal(plan.chunks.upstreamRows, 2000);
    assert.deepEqual(
      plan.stages,
      ['preflight', 'index', 'finalize', 'compare', 'promote', 'report'].filter(
        (s) => s !== 'compare',
      ),
    );
    // image is in `alias` mode (the default): one new index, the filtered alias a filter over it.
    const prefix = t.config.ELASTICSEARCH_INDEX_PREFIX;
    assert.equal(plan.filtered, 'alias');
    assert.deepEqual(plan.indices, { main: `${prefix}image-<runId>`, filtered: null });
    assert.deepEqual(
      plan.aliases.map((a) => [a.alias, a.from, a.to, a.filter]),
      [
        [`${prefix}image`, [liveIndex], `${prefix}image-<runId>`, undefined],
        [
          `${prefix}image-filtered`,
          [liveIndex],
          `${prefix}image-<runId>`,
          { term: { sensitive: false } },
        ],
      ],
    );
    assert.equal(staging.tables.live, 'staging_image');
    assert.match(staging.aliases[0]?.alias ?? '', /staging-image$/);
    assert.deepEqual(staging.aliases[0]?.from, [], 'staging never touches production aliases');
    assert.ok(staging.stages.some((s) => s.startsWith('compare')));
    const text = formatPlan(plan);
    assert.match(text, /chunks: {2}7 of ~300 rows over 2000 of 2000 upstream rows/);
    assert.match(text, /#0 \[-inf, /);
    assert.match(text, /#6 \[[0-9a-f-]+, \+inf\)/);
    assert.match(text, /indices: \S+image-<runId> \(filtered: alias, no second index\)/);
    assert.match(
      text,
      /alias: {3}\S+image-filtered: \S+ -> \S+image-<runId> with filter \{"term":\{"sensitive":false\}\}/,
    );
  });
});
