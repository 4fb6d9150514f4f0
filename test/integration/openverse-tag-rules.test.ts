import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { ensureCatalogSchema, getMedia, refreshNames } from '@freshet/core';
import { startWorker, type WorkerApp } from '@freshet/worker';
import { startRefresh } from '@freshet/control';
import { createTestEnv, type TestEnv } from '../helpers/env.js';
import { waitForRunStatus } from '../helpers/faults.js';
import { openverseTagCases as cases } from '../helpers/openverse-tag-cases.js';

const key = (i: number) => `00000000-0000-4000-8000-${String(i + 1).padStart(12, '0')}`;

describe(
  "the shipped image and audio definitions apply Openverse's tag rules",
  {
    timeout: 180_000,
  },
  () => {
    let t: TestEnv;
    let worker: WorkerApp;
    const runs: Record<string, string> = {};

    before(async () => {
      t = await createTestEnv();
      for (const media of ['image', 'audio']) {
        await ensureCatalogSchema(t.dbs.catalog, getMedia(t.media, media));
        for (const [i, c] of cases.entries()) {
          await t.dbs.catalog.query(
            `INSERT INTO ${media} (identifier, created_on, updated_on, provider, url, license,
             removed_from_source, title, tags)
           VALUES ($1, now(), now(), 'flickr', $2, 'by', false, $3, $4::jsonb)`,
            [
              key(i),
              `https://example.org/${media}/${i}`,
              c.name,
              JSON.stringify(c.tags.map((x) => x[0])),
            ],
          );
        }
      }
      worker = await startWorker(t.config, t.logger);
      const deps = { config: t.config, api: t.dbs.api, media: t.media, queues: t.queues };
      for (const media of ['image', 'audio']) runs[media] = await startRefresh(deps, { media });
      for (const media of ['image', 'audio']) {
        const run = await waitForRunStatus(t.store, runs[media] as string);
        assert.equal(run.status, 'succeeded', run.error ?? '');
      }
    });

    after(async () => {
      await worker?.close();
      await t?.close();
    });

    for (const media of ['image', 'audio']) {
      it(`${media}: each row keeps exactly the tags Openverse keeps, in the table and the index`, async () => {
        const def = getMedia(t.media, media);
        const prefix = t.config.ELASTICSEARCH_INDEX_PREFIX;
        const names = refreshNames(def, 'production', runs[media] as string, prefix);
        const { rows } = await t.dbs.api.query<{ id: string; tags: unknown }>(
          `SELECT identifier::text AS id, tags FROM ${media} ORDER BY identifier`,
        );
        assert.equal(rows.length, cases.length);
        const docs = await t.es.mget<{ tags: unknown }>({
          index: names.alias,
          ids: cases.map((_, i) => key(i)),
        });
        for (const [i, c] of cases.entries()) {
          const expected = c.tags.filter(([, fate]) => fate === 'kept').map(([tag]) => tag);
          const row = rows.find((r) => r.id === key(i));
          assert.deepEqual(row?.tags, expected, c.name);
          const doc = docs.docs[i] as { found?: boolean; _source?: { tags: unknown } };
          assert.deepEqual(doc._source?.tags, expected, `${c.name} (document)`);
        }
      });

      it(`${media}: dropped tags are counted by reason`, async () => {
        const expected: Record<string, number> = {};
        for (const c of cases) {
          for (const [, fate] of c.tags) {
            if (fate !== 'kept') expected[fate] = (expected[fate] ?? 0) + 1;
          }
        }
        const { rows } = await t.dbs.api.query<{ k: string; n: number }>(
          `SELECT k, sum(v::int)::int AS n FROM freshet.chunks,
           jsonb_each_text(result -> 'pass' -> 'tagsDropped') AS d(k, v)
          WHERE run_id = $1 GROUP BY k ORDER BY k`,
          [runs[media]],
        );
        assert.deepEqual(Object.fromEntries(rows.map((r) => [r.k, r.n])), expected);
        const changed = await t.dbs.api.query<{ n: number }>(
          `SELECT sum((result -> 'pass' -> 'changed' ->> 'tags-filtered')::int)::int AS n
           FROM freshet.chunks WHERE run_id = $1`,
          [runs[media]],
        );
        assert.equal(
          changed.rows[0]?.n,
          cases.filter((c) => c.tags.some(([, fate]) => fate !== 'kept')).length,
        );
      });
    }
  },
);
