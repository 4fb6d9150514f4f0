import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { ensureCatalogSchema, getMedia, refreshNames } from '@freshet/core';
import { startWorker, type WorkerApp } from '@freshet/worker';
import { startRefresh } from '../../apps/producer/src/refresh.js';
import { createTestEnv, type TestEnv } from '../helpers/env.js';
import { waitForRunStatus } from '../helpers/faults.js';

/** What the shipped rules must do with one tag: keep it, or drop it for this reason. */
type Fate = 'kept' | 'malformed' | 'low-accuracy' | 'denylisted-provider' | 'denylisted';

/** One catalog row's tags: each element with its fate, in order. */
interface Case {
  readonly name: string;
  readonly tags: readonly (readonly [unknown, Fate])[];
}

const kept = (tag: unknown) => [tag, 'kept'] as const;
const drop = (tag: unknown, fate: Exclude<Fate, 'kept'>) => [tag, fate] as const;

/**
 * Openverse's current tag rules (catalog dags/data_refresh/alter_data.py, generate_tag_updates),
 * case by case: first Openverse's own test cases (test_alter_data.py, the same as the ingestion
 * server's test_cleanup.py), then every exact name, every substring, the provider, the accuracy
 * threshold and malformed tags, each with near misses Openverse keeps.
 */
const cases: Case[] = [
  // Openverse's test_generate_tag_updates cases.
  { name: 'openverse: a valid tag is unchanged', tags: [kept({ name: 'valid', accuracy: 0.92 })] },
  {
    name: 'openverse: denylisted tags are filtered',
    tags: [
      drop({ name: 'cc0' }, 'denylisted'),
      drop({ name: ' cc0' }, 'denylisted'),
      kept({ name: 'valid', accuracy: 0.99 }),
      kept({ name: 'valid_no_accuracy' }),
      drop({ name: 'garbage:=metacrap' }, 'denylisted'),
    ],
  },
  {
    name: 'openverse: inaccurate tags are filtered',
    tags: [
      drop({ name: 'inaccurate', accuracy: 0.5 }, 'low-accuracy'),
      kept({ name: 'accurate', accuracy: 0.999 }),
    ],
  },
  {
    name: 'openverse: tags from unvetted providers are filtered',
    tags: [
      kept({ name: 'valid', provider: 'provider1' }),
      drop({ name: 'invalid', provider: 'rekognition' }, 'denylisted-provider'),
    ],
  },
  // Exact names, compared lower-cased; a near miss is kept.
  ...[
    'no person',
    'squareformat',
    'uploaded:by=flickrmobile',
    'uploaded:by=instagram',
    'flickriosapp:filter=flamingo',
    'by',
  ].map((term) => ({
    name: `exact name ${JSON.stringify(term)}`,
    tags: [
      drop({ name: term }, 'denylisted'),
      drop({ name: term.toUpperCase(), provider: 'flickr' }, 'denylisted'),
      kept({ name: 'sunset' }),
    ],
  })),
  {
    name: 'near misses of the exact names are kept',
    tags: [
      kept({ name: 'person' }),
      kept({ name: 'no persons' }),
      kept({ name: 'square format' }),
      kept({ name: 'byzantine' }),
      kept({ name: 'abbey' }),
      kept({ name: 'nobody' }),
      kept({ name: 'by the sea' }),
      kept({ name: 'b y' }),
    ],
  },
  // Substrings, anywhere in the lower-cased name.
  ...(
    [
      ['flickriosapp', 'FlickrIOSApp rocks'],
      ['uploaded', 'photo Uploaded today'],
      [':', 'geo:lat'],
      ['=', 'a=b'],
      ['cc0', 'CC0 public domain'],
      ['by-nc', 'license by-nc 2.0'],
      ['by-nd', 'BY-ND'],
      ['by-sa', 'cc-by-sa-3.0'],
      ['by-nc-nd', 'By-Nc-Nd'],
      ['by-nc-sa', 'by-nc-sa'],
      ['pdm', 'pdm'],
    ] as const
  ).map(([term, name]) => ({
    name: `substring ${JSON.stringify(term)}`,
    tags: [drop({ name, accuracy: 0.95 }, 'denylisted'), kept({ name: 'mountain', accuracy: 1 })],
  })),
  {
    name: 'near misses of the substrings are kept',
    tags: [
      kept({ name: 'upload' }),
      kept({ name: 'cc 0' }),
      kept({ name: 'by nc' }),
      kept({ name: 'by_sa' }),
      kept({ name: 'pd m' }),
      kept({ name: 'flickr ios app' }),
    ],
  },
  // Providers: exactly "rekognition", case-sensitive as in Openverse.
  {
    name: 'the rekognition provider',
    tags: [
      drop({ name: 'dog', accuracy: 0.99, provider: 'rekognition' }, 'denylisted-provider'),
      kept({ name: 'dog', accuracy: 0.99, provider: 'Rekognition' }),
      kept({ name: 'dog', accuracy: 0.99, provider: 'clarifai' }),
      kept({ name: 'cat', provider: 'rekognition-v2' }),
    ],
  },
  // Accuracy: below 0.90 is dropped; 0.90 itself and a tag without one are kept.
  {
    name: 'the accuracy threshold',
    tags: [
      kept({ name: 'at threshold', accuracy: 0.9 }),
      drop({ name: 'just below', accuracy: 0.8999 }, 'low-accuracy'),
      drop({ name: 'zero', accuracy: 0 }, 'low-accuracy'),
      drop({ name: 'negative', accuracy: -1 }, 'low-accuracy'),
      drop({ name: 'as a string', accuracy: '0.5' }, 'low-accuracy'),
      kept({ name: 'string above', accuracy: '0.95' }),
      kept({ name: 'one', accuracy: 1 }),
      kept({ name: 'none' }),
      kept({ name: 'null accuracy', accuracy: null }),
    ],
  },
  // Malformed: no string name (the element not even an object).
  {
    name: 'malformed tags',
    tags: [
      drop({ accuracy: 0.99 }, 'malformed'),
      drop({ name: 5 }, 'malformed'),
      drop({ name: null }, 'malformed'),
      drop({ name: ['a'] }, 'malformed'),
      drop({ name: { en: 'a' } }, 'malformed'),
      drop('a bare string', 'malformed'),
      drop(7, 'malformed'),
      drop(null, 'malformed'),
      kept({ name: '' }),
      kept({ name: 'fine', extra: { nested: [1, 2] } }),
    ],
  },
  // Rules are applied in Openverse's order: a malformed or inaccurate tag is counted as that.
  {
    name: 'the first rule that matches names the reason',
    tags: [
      drop({ name: 'cc0', accuracy: 0.1 }, 'low-accuracy'),
      drop({ name: 'cc0', provider: 'rekognition' }, 'denylisted-provider'),
      drop({ name: 'by', accuracy: 0.5, provider: 'rekognition' }, 'low-accuracy'),
    ],
  },
];

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
