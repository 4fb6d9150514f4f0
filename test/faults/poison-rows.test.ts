import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type pg from 'pg';
import { startWorker, type WorkerApp } from '@freshet/worker';
import { startRefresh } from '@freshet/control';
import { seeded } from '../helpers/hostile-values.js';
import { createTestEnv, type TestEnv } from '../helpers/env.js';
import {
  accounting,
  exactnessProblems,
  faultDefinition,
  faultMapping,
  waitForRunStatus,
  writeFaultMedia,
  type Accounting,
} from '../helpers/faults.js';

/**
 * Poison rows: values a catalog can hold that once blocked every refresh of their media type
 * (a tag whose provider is an object, refused by Elasticsearch; an accuracy of 1e400, which
 * failed the clean step's float cast), and a fuzzed set of hostile tag and meta values generated
 * from a fixed seed. Each generated value carries the fate the rules give it, so the counts are
 * predicted exactly: a tag the clean step drops (by reason), a column it sets to NULL, or a row
 * whose document Elasticsearch refuses (rejected `es-refused:<type>`, gone from table and index).
 */

const SEED = Number(process.env.FRESHET_FUZZ_SEED ?? 20_261_201);

/** The fate of one tag element: kept, dropped for a reason, or kept but refused with its row. */
type TagFate = 'kept' | 'malformed' | 'low-accuracy' | 'denylisted-provider' | 'denylisted';
/** A tag element as JSON text (so values JavaScript cannot hold, like 1e400, stay exact). */
type Atom = readonly [json: string, fate: TagFate | 'refused'];

const q = JSON.stringify;
const nest = (depth: number, inner: string) => '['.repeat(depth) + inner + ']'.repeat(depth);
const objNest = (depth: number) => '{"a":'.repeat(depth) + '[1,true,null,"x"]' + '}'.repeat(depth);
const words = ['sunset', 'mountain', 'harbour', 'portrait', 'forest', 'market', 'snow', 'dune'];
const tag = (fields: string) => `{"name":"sunset",${fields}}`;

/**
 * Every hostile tag element this test knows, with its fate under the fault definition's rules
 * (min accuracy 0.9, provider `badprovider`, name `no person`, substring `uploaded:by`, names of
 * at most 255 characters). One field of an otherwise good tag is replaced at a time.
 */
const atoms: Record<string, Atom> = {
  // The element itself.
  'element number': ['5', 'malformed'],
  'element 1e400': ['1e400', 'malformed'],
  'element string': ['"sunset"', 'malformed'],
  'element null': ['null', 'malformed'],
  'element true': ['true', 'malformed'],
  'element false': ['false', 'malformed'],
  'element empty array': ['[]', 'malformed'],
  'element array': ['[1,"a",{"name":"x"}]', 'malformed'],
  'element nested 3000 deep': [nest(3000, '1'), 'malformed'],
  'element empty object': ['{}', 'malformed'],
  'element object nested 200 deep, no name': [objNest(200), 'malformed'],
  // The name.
  'name missing': ['{"accuracy":0.99}', 'malformed'],
  'name number': ['{"name":5}', 'malformed'],
  'name 1e400': ['{"name":1e400}', 'malformed'],
  'name true': ['{"name":true}', 'malformed'],
  'name false': ['{"name":false}', 'malformed'],
  'name null': ['{"name":null}', 'malformed'],
  'name object': ['{"name":{"en":"sunset"}}', 'malformed'],
  'name array': ['{"name":["sunset"]}', 'malformed'],
  'name 256 characters': [`{"name":${q('n'.repeat(256))}}`, 'malformed'],
  'name 5000 characters': [`{"name":${q('n'.repeat(5000))}}`, 'malformed'],
  'name 255 characters': [`{"name":${q('n'.repeat(255))}}`, 'kept'],
  'name emoji and RTL': [`{"name":${q('emoji 😀 שלום')}}`, 'kept'],
  'name control characters': [`{"name":${q('tab\there\nnew\u0001line')}}`, 'kept'],
  'name blank': ['{"name":""}', 'kept'],
  // The accuracy.
  'accuracy 1e400': [tag('"accuracy":1e400'), 'malformed'],
  'accuracy -1e400': [tag('"accuracy":-1e400'), 'malformed'],
  'accuracy 1e39 (beyond float)': [tag('"accuracy":1e39'), 'malformed'],
  'accuracy "1e39"': [tag('"accuracy":"1e39"'), 'malformed'],
  'accuracy 400 digits': [tag(`"accuracy":${'9'.repeat(400)}`), 'malformed'],
  'accuracy string of 400 digits': [tag(`"accuracy":"${'9'.repeat(400)}"`), 'malformed'],
  'accuracy string of 150 digits below 1': [tag(`"accuracy":"0.${'9'.repeat(150)}"`), 'malformed'],
  'accuracy true': [tag('"accuracy":true'), 'malformed'],
  'accuracy false': [tag('"accuracy":false'), 'malformed'],
  'accuracy object': [tag('"accuracy":{"v":0.95}'), 'malformed'],
  'accuracy array': [tag('"accuracy":[0.95]'), 'malformed'],
  'accuracy "abc"': [tag('"accuracy":"abc"'), 'malformed'],
  'accuracy "NaN"': [tag('"accuracy":"NaN"'), 'malformed'],
  'accuracy "Infinity"': [tag('"accuracy":"Infinity"'), 'malformed'],
  'accuracy "0x10"': [tag('"accuracy":"0x10"'), 'malformed'],
  'accuracy "1_0"': [tag('"accuracy":"1_0"'), 'malformed'],
  'accuracy ""': [tag('"accuracy":""'), 'malformed'],
  'accuracy 1e-400': [tag('"accuracy":1e-400'), 'low-accuracy'],
  'accuracy "1e-5"': [tag('"accuracy":"1e-5"'), 'low-accuracy'],
  'accuracy -0.5': [tag('"accuracy":-0.5'), 'low-accuracy'],
  'accuracy 0': [tag('"accuracy":0'), 'low-accuracy'],
  'accuracy 0.89999': [tag('"accuracy":0.89999'), 'low-accuracy'],
  'accuracy "0.5"': [tag('"accuracy":"0.5"'), 'low-accuracy'],
  'accuracy null': [tag('"accuracy":null'), 'kept'],
  'accuracy 0.9': [tag('"accuracy":0.9'), 'kept'],
  'accuracy 1': [tag('"accuracy":1'), 'kept'],
  'accuracy 5': [tag('"accuracy":5'), 'kept'],
  'accuracy 3e38': [tag('"accuracy":3e38'), 'kept'],
  'accuracy "0.95"': [tag('"accuracy":"0.95"'), 'kept'],
  'accuracy " +0.95 "': [tag('"accuracy":" +0.95 "'), 'kept'],
  'accuracy "9.5E-1"': [tag('"accuracy":"9.5E-1"'), 'kept'],
  // The provider.
  'provider object': [tag('"provider":{"name":"clarifai"}'), 'malformed'],
  'provider empty array': [tag('"provider":[]'), 'malformed'],
  'provider array': [tag('"provider":["clarifai"]'), 'malformed'],
  'provider array of objects': [tag('"provider":[{"a":1}]'), 'malformed'],
  'provider number': [tag('"provider":5'), 'kept'],
  'provider true': [tag('"provider":true'), 'kept'],
  'provider null': [tag('"provider":null'), 'kept'],
  'provider blank': [tag('"provider":""'), 'kept'],
  'provider other case': [tag('"provider":"BadProvider"'), 'kept'],
  'provider denylisted': [tag('"provider":"badprovider"'), 'denylisted-provider'],
  'provider of 33,000 characters (a term Elasticsearch refuses)': [
    tag(`"provider":${q('p'.repeat(33_000))}`),
    'refused',
  ],
  // The name lists.
  'name "no person"': ['{"name":"no person"}', 'denylisted'],
  'name "No Person"': ['{"name":"No Person","accuracy":0.99}', 'denylisted'],
  'name with "uploaded:by"': ['{"name":"Uploaded:By=flickr"}', 'denylisted'],
  'name "no persons"': ['{"name":"no persons"}', 'kept'],
  'name "uploaded by"': ['{"name":"uploaded by"}', 'kept'],
  // Fields the mapping does not index (dynamic false).
  'extra object nested 40 deep': [tag(`"extra":${objNest(40)}`), 'kept'],
  'extra 1e400': [tag('"extra":1e400'), 'kept'],
  'extra array of odd values': [tag('"extra":[1e-400,true,null,"s",{"b":[]}]'), 'kept'],
  'extra nested 1200 deep (Elasticsearch refuses beyond 1000)': [
    tag(`"extra":${nest(1200, '1')}`),
    'refused',
  ],
};

/** Values of the whole tags column that are not an array: set to NULL, counted. */
const notArrays = ['{}', '{"name":"sunset"}', '"sunset"', '5', '1e400', 'true', 'null'];

/** Tag arrays a json column holds and jsonb refuses: the column is set to NULL, counted. */
const unparsable = [
  '[{"name":"a\\u0000b"}]',
  '[{"name":"sunset","provider":"p\\u0000"}]',
  '[{"name":"lone \\ud800 surrogate"}]',
  '[{"name":"sunset","extra":"\\udfff"}]',
];

/** meta values with the description the document must get (null: none). */
const metas: readonly (readonly [json: string, description: string | null])[] = [
  ['{"description":{"a":[1,2]}}', '{"a":[1,2]}'],
  ['{"description":[1,"x",null]}', '[1,"x",null]'],
  ['{"description":1e400}', '1e400'],
  ['{"description":-1e-400}', '-1e-400'],
  ['{"description":true}', 'true'],
  ['{"description":null}', null],
  [`{"description":${q('long '.repeat(20_000))}}`, 'long '.repeat(20_000)],
  [`{"description":${nest(3000, '"deep"')}}`, nest(3000, '"deep"')],
  [`{"description":${q('ctl \u0001\u001f end')}}`, 'ctl \u0001\u001f end'],
  ['{"other":1}', null],
  ['[1,2]', null],
  ['"a string"', null],
  ['5', null],
  ['null', null],
  [nest(3000, '1'), null],
];
/** meta values jsonb refuses: meta set to NULL, counted. */
const metaUnparsable = ['{"description":"nul \\u0000"}', '{"description":"\\ud800"}'];

interface HostileRow {
  readonly id: number;
  readonly what: string;
  readonly tags: string | null;
  readonly meta: string | null;
  readonly url?: string;
  readonly thumbnail?: string;
}

interface Expected {
  readonly rows: HostileRow[];
  readonly tagsDropped: Record<string, number>;
  readonly changed: Record<string, number>;
  /** Ids whose document Elasticsearch refuses. */
  readonly refused: Set<number>;
  /** Id -> the tags the table and the document must hold (null: none). */
  readonly tags: Map<number, unknown>;
  /** Id -> the document's description. */
  readonly descriptions: Map<number, string | null>;
}

/**
 * The hostile rows and their exact expected outcome: every atom, not-array value, unparsable
 * value and meta value once in a row of its own, then random rows mixing them, two huge arrays,
 * URLs too long for a keyword, and the two poison rows of the issue.
 */
function hostileRows(seed: number, firstId: number): Expected {
  const r = seeded(seed);
  const rows: HostileRow[] = [];
  const tagsDropped: Record<string, number> = {};
  const changed: Record<string, number> = {};
  const refused = new Set<number>();
  const tags = new Map<number, unknown>();
  const descriptions = new Map<number, string | null>();
  const count = (into: Record<string, number>, key: string, n = 1) => {
    if (n > 0) into[key] = (into[key] ?? 0) + n;
  };
  let id = firstId;
  const good = () => `{"name":"${r.pick(words)}","accuracy":0.95,"provider":"p1"}`;

  const addAtoms = (
    what: string,
    list: readonly Atom[],
    meta?: readonly [string, string | null],
  ) => {
    const row = { id: id++, what, tags: `[${list.map(([json]) => json).join(',')}]` };
    const dropped = list.filter(([, fate]) => fate !== 'kept' && fate !== 'refused');
    for (const [, fate] of dropped) count(tagsDropped, fate);
    if (dropped.length > 0) count(changed, 'tags-filtered');
    if (list.some(([, fate]) => fate === 'refused')) refused.add(row.id);
    const keptTags = list.filter(([, fate]) => fate === 'kept' || fate === 'refused');
    tags.set(row.id, JSON.parse(`[${keptTags.map(([json]) => json).join(',')}]`));
    const [metaJson, description] = meta ?? ['{"description":"fine"}', 'fine'];
    rows.push({ ...row, meta: metaJson });
    descriptions.set(row.id, description);
  };

  const named = Object.entries(atoms);
  // Each atom once, between two good tags.
  for (const [what, atom] of named) addAtoms(what, [[good(), 'kept'], atom, [good(), 'kept']]);
  // Each other hostile tags value once.
  for (const value of notArrays) {
    rows.push({ id: id, what: `tags ${value}`, tags: value, meta: '{"description":"fine"}' });
    count(changed, 'tags-not-array-nulled');
    tags.set(id, null);
    descriptions.set(id++, 'fine');
  }
  for (const value of unparsable) {
    rows.push({ id, what: `tags ${value}`, tags: value, meta: '{"description":"fine"}' });
    count(changed, 'invalid-json-nulled');
    tags.set(id, null);
    descriptions.set(id++, 'fine');
  }
  for (const meta of metas) addAtoms(`meta ${meta[0].slice(0, 40)}`, [[good(), 'kept']], meta);
  for (const value of metaUnparsable) {
    rows.push({ id, what: `meta ${value}`, tags: `[${good()}]`, meta: value });
    count(changed, 'invalid-json-nulled');
    tags.set(id, JSON.parse(rows.at(-1)?.tags ?? '[]'));
    descriptions.set(id++, null);
  }

  // Random rows: one to eight atoms each (now and then a hostile meta as well).
  const hostileAtoms = named.map(([, atom]) => atom);
  for (let i = 0; i < 200; i++) {
    const list: Atom[] = [];
    for (let n = r.int(1, 8); n > 0; n--) {
      list.push(r.next() < 0.3 ? [good(), 'kept'] : r.pick(hostileAtoms));
    }
    addAtoms(`random ${i}`, list, r.next() < 0.2 ? r.pick(metas) : undefined);
  }

  // Huge arrays: 30,000 elements cycling through every atom that keeps its row.
  const small = hostileAtoms.filter(([json, fate]) => fate !== 'refused' && json.length < 400);
  for (const n of [30_000, 12_345]) {
    addAtoms(
      `huge array of ${n}`,
      Array.from({ length: n }, (_, i) => small[i % small.length] as Atom),
    );
  }

  // Values of mapped text columns too long for a keyword: Elasticsearch refuses the document.
  for (const [what, column] of [
    ['url of 40,000 characters', 'url'],
    ['thumbnail of 40,000 characters', 'thumbnail'],
  ] as const) {
    const long = `https://example.org/${'u'.repeat(40_000)}`;
    rows.push({ id, what, tags: `[${good()}]`, meta: '{"description":"fine"}', [column]: long });
    tags.set(id, JSON.parse(rows.at(-1)?.tags ?? '[]'));
    descriptions.set(id, 'fine');
    refused.add(id++);
  }

  // The two poison rows of issue 12.
  addAtoms('poison: a provider that is an object', [
    ['{"name":"ok","accuracy":0.95}', 'kept'],
    ['{"name":"bad","provider":{"name":"x"}}', 'malformed'],
  ]);
  addAtoms('poison: an accuracy of 1e400', [['{"name":"huge","accuracy":1e400}', 'malformed']]);
  return { rows, tagsDropped, changed, refused, tags, descriptions };
}

async function insertHostile(catalog: pg.Pool, table: string, rows: readonly HostileRow[]) {
  for (const row of rows) {
    await catalog.query(
      `INSERT INTO "${table}" (id, title, provider, license, url, thumbnail, tags, meta)
       VALUES ($1, $2, 'p1', 'by', $3, $4, $5::json, $6::json)`,
      [
        row.id,
        row.what,
        row.url ?? `https://example.org/hostile/${row.id}`,
        row.thumbnail ?? null,
        row.tags,
        row.meta,
      ],
    );
  }
}

/** `rows` ordinary clean rows at ids 7, 14, ... (nothing to reject, nothing to change). */
async function seedOrdinary(catalog: pg.Pool, table: string, rows: number, json: 'json' | 'jsonb') {
  await catalog.query(
    `CREATE TABLE "${table}" (id bigint, title text, provider varchar(40), license varchar(20)
       NOT NULL, url text NOT NULL, thumbnail text, tags ${json}, meta ${json})`,
  );
  await catalog.query(
    `INSERT INTO "${table}" (id, title, provider, license, url, thumbnail, tags, meta)
     SELECT i * 7, 'clip ' || i, 'p' || (i % 13), 'by', 'https://example.org/clip/' || i, NULL,
            jsonb_build_array(jsonb_build_object('name', 'tag' || (i % 7), 'accuracy', 0.95))::text::${json},
            '{"description": "the clip"}'
       FROM generate_series(1, $1::int) AS i`,
    [rows],
  );
}

/** A definition over `table` with a text `score` column that the `score.json` mapping types integer. */
function scoreDefinition(table: string) {
  const def = faultDefinition(table);
  return {
    ...def,
    columns: [...def.columns, { name: 'score', type: 'text' }],
    document: {
      ...def.document,
      mapping: 'score.json',
      fields: { ...def.document.fields, score: 'score' },
    },
  };
}
const scoreMapping = {
  ...faultMapping,
  mappings: {
    ...faultMapping.mappings,
    properties: { ...faultMapping.mappings.properties, score: { type: 'integer' } },
  },
};

const sumOver = async (t: TestEnv, runId: string, path: string) => {
  const { rows } = await t.dbs.api.query<{ k: string; n: number }>(
    `SELECT k, sum(CASE WHEN jsonb_typeof(v) = 'number' THEN v::text::int ELSE (v ->> 'count')::int END)::int AS n
       FROM freshet.chunks, jsonb_each(coalesce(result #> $2::text[], '{}')) AS e(k, v)
      WHERE run_id = $1 GROUP BY k ORDER BY k`,
    [runId, `{${path}}`],
  );
  return Object.fromEntries(rows.map((r) => [r.k, r.n]));
};

describe('poison rows are rejected and counted, never blocking', { timeout: 400_000 }, () => {
  let t: TestEnv;
  let worker: WorkerApp;
  // Enough ordinary rows that the refused ones stay well under MAX_REJECTED_RATE (1%).
  const ORDINARY = 4000;
  const expected = hostileRows(SEED, 1_000_000);
  const runs: Record<string, string> = {};
  const acc: Record<string, Accounting> = {};
  const status: Record<string, { status: string; error: string | null }> = {};
  let brokenFirst: Accounting;
  let brokenSecond: { status: string; error: string | null; stage: string | null };
  const templates = () => [
    `${t.config.ELASTICSEARCH_INDEX_PREFIX}halfmap-main`,
    `${t.config.ELASTICSEARCH_INDEX_PREFIX}halfmap-filtered`,
  ];

  before(async () => {
    const raw = faultDefinition('rawpoison');
    t = await createTestEnv({
      FRESHET_MEDIA_FILE: writeFaultMedia(
        {
          poisonclip: faultDefinition('poisonclip', { hostile: true }),
          // No tag rules: the poison tags reach Elasticsearch, which refuses their documents.
          rawpoison: {
            ...raw,
            cleaning: { urlColumns: raw.cleaning.urlColumns, licenseColumn: 'license' },
          },
          // Two indices of one build that disagree need the filtered index of `index` mode.
          halfmap: { ...scoreDefinition('halfmap'), filtered: 'index' },
          brokenmap: scoreDefinition('brokenmap'),
        },
        { 'score.json': scoreMapping },
      ),
    });
    const c = t.dbs.catalog;
    await seedOrdinary(c, 'poisonclip', ORDINARY, 'json');
    await insertHostile(c, 'poisonclip', expected.rows);
    await seedOrdinary(c, 'rawpoison', 300, 'jsonb');
    for (const [id, tags] of [
      [5001, '[{"name":"ok","accuracy":0.95},{"name":"bad","provider":{"name":"x"}}]'],
      [5002, '[{"name":"huge","accuracy":1e400}]'],
    ] as const) {
      await c.query(
        `INSERT INTO rawpoison (id, title, provider, license, url, tags, meta)
         VALUES ($1::bigint, 'poison', 'p1', 'by', 'https://example.org/poison/' || $1::text, $2::jsonb, '{}')`,
        [id, tags],
      );
    }
    for (const table of ['halfmap', 'brokenmap']) {
      await seedOrdinary(c, table, 300, 'jsonb');
      await c.query(`ALTER TABLE "${table}" ADD COLUMN score text`);
      await c.query(`UPDATE "${table}" SET score = (id % 100)::text`);
    }
    // halfmap: the main index ignores a malformed score, the filtered index refuses it, so two
    // rows have a document in one of the two indices only.
    await c.query(`UPDATE halfmap SET score = 'n/a' WHERE id IN (7 * 10, 7 * 200)`);
    const prefix = t.config.ELASTICSEARCH_INDEX_PREFIX;
    const [mainTemplate, filteredTemplate] = templates() as [string, string];
    await t.es.indices.putIndexTemplate({
      name: mainTemplate,
      index_patterns: [`${prefix}halfmap-*`],
      priority: 900,
      template: { settings: { 'index.mapping.ignore_malformed': true } },
    });
    await t.es.indices.putIndexTemplate({
      name: filteredTemplate,
      index_patterns: [`${prefix}halfmap-*-filtered`],
      priority: 901,
      template: { settings: { 'index.mapping.ignore_malformed': false } },
    });

    worker = await startWorker(t.config, t.logger);
    const deps = { config: t.config, api: t.dbs.api, media: t.media, queues: t.queues };
    for (const media of ['poisonclip', 'rawpoison', 'halfmap', 'brokenmap']) {
      runs[media] = await startRefresh(deps, { media });
    }
    for (const media of Object.keys(runs)) {
      const run = await waitForRunStatus(t.store, runs[media] as string, undefined, 300_000);
      status[media] = { status: run.status, error: run.error };
      if (run.status === 'succeeded') acc[media] = await accounting(t, runs[media] as string);
    }
    brokenFirst = acc.brokenmap as Accounting;
    // A mapping that refuses most documents: 90% of the scores are no longer numbers.
    await c.query(`UPDATE brokenmap SET score = 'n/a' WHERE id % 10 <> 0`);
    runs.brokenmap2 = await startRefresh(deps, { media: 'brokenmap' });
    const second = await waitForRunStatus(t.store, runs.brokenmap2);
    brokenSecond = { status: second.status, error: second.error, stage: second.stage };
  });

  after(async () => {
    await worker?.close();
    if (t) {
      for (const name of templates()) {
        await t.es.indices.deleteIndexTemplate({ name }).catch(() => undefined);
      }
    }
    await t?.close();
  });

  it(`the fuzzed table (${expected.rows.length} hostile rows, seed ${SEED}) refreshes with exact counts`, () => {
    assert.ok(expected.rows.length >= 200);
    assert.deepEqual(status.poisonclip, { status: 'succeeded', error: null });
    const a = acc.poisonclip as Accounting;
    assert.deepEqual(exactnessProblems(a), []);
    assert.equal(a.upstream, ORDINARY + expected.rows.length);
    assert.deepEqual(a.rejected, {
      'es-refused:document_parsing_exception': expected.refused.size,
    });
    assert.equal(a.tableRows, a.upstream - expected.refused.size);
    assert.equal(a.docs, a.tableRows);
  });

  it('dropped tags and nulled columns are counted exactly, by reason', async (ctx) => {
    ctx.diagnostic(
      `expected: tags dropped ${JSON.stringify(expected.tagsDropped)}, changed ${JSON.stringify(expected.changed)}, refused rows ${expected.refused.size}`,
    );
    assert.deepEqual(
      await sumOver(t, runs.poisonclip as string, 'pass,tagsDropped'),
      expected.tagsDropped,
    );
    assert.deepEqual(await sumOver(t, runs.poisonclip as string, 'pass,changed'), expected.changed);
    for (const reason of ['malformed', 'low-accuracy', 'denylisted-provider', 'denylisted']) {
      assert.ok((expected.tagsDropped[reason] ?? 0) > 0, reason);
    }
  });

  it('every refused row is gone from the table and both indices, its key in the samples', async () => {
    const a = acc.poisonclip as Accounting;
    const ids = [...expected.refused];
    assert.ok(ids.length >= 4);
    const left = await t.dbs.api.query(`SELECT id FROM poisonclip WHERE id = ANY($1::bigint[])`, [
      ids,
    ]);
    assert.equal(left.rowCount, 0);
    for (const index of [a.names.alias, a.names.filteredAlias, ...a.names.indices]) {
      const hits = await t.es.count({ index, query: { ids: { values: ids.map(String) } } });
      assert.equal(hits.count, 0, index);
    }
    // Each chunk keeps up to 10 sample keys per reason: all of them refused rows, none twice.
    const { rows } = await t.dbs.api.query<{ n: number; sample: string[] }>(
      `SELECT (v ->> 'count')::int AS n, v -> 'sample' AS sample
         FROM freshet.chunks, jsonb_each(result -> 'pass' -> 'rejected') AS r(k, v)
        WHERE run_id = $1 AND k LIKE 'es-refused:%'`,
      [runs.poisonclip],
    );
    assert.equal(
      rows.reduce((n, r) => n + r.n, 0),
      ids.length,
    );
    for (const r of rows) assert.equal(r.sample.length, Math.min(r.n, 10));
    const sampled = rows.flatMap((r) => r.sample).map(Number);
    assert.equal(new Set(sampled).size, sampled.length);
    assert.deepEqual(
      sampled.filter((id) => !expected.refused.has(id)),
      [],
    );
  });

  it('every other hostile row holds exactly its kept tags and description, in the table and the document', async () => {
    const a = acc.poisonclip as Accounting;
    const kept = expected.rows.filter((r) => !expected.refused.has(r.id)).map((r) => r.id);
    const { rows } = await t.dbs.api.query<{ id: string; tags: unknown }>(
      `SELECT id::text, tags FROM poisonclip WHERE id = ANY($1::bigint[])`,
      [kept],
    );
    const table = new Map(rows.map((r) => [Number(r.id), r.tags]));
    assert.equal(table.size, kept.length);
    const docs = await t.es.mget<{ tags: unknown; description?: string | null }>({
      index: a.names.index,
      ids: kept.map(String),
    });
    for (const [i, id] of kept.entries()) {
      const what = expected.rows.find((r) => r.id === id)?.what;
      assert.deepEqual(table.get(id), expected.tags.get(id), `table: ${what}`);
      const doc = docs.docs[i] as {
        found: boolean;
        _source?: { tags: unknown; description?: unknown };
      };
      assert.ok(doc.found, `document: ${what}`);
      assert.deepEqual(doc._source?.tags, expected.tags.get(id), `document: ${what}`);
      assert.equal(
        doc._source?.description ?? null,
        expected.descriptions.get(id),
        `description: ${what}`,
      );
    }
  });

  it('without tag rules, the two poison rows are refused by Elasticsearch: rejected with reason and key', async () => {
    assert.deepEqual(status.rawpoison, { status: 'succeeded', error: null });
    const a = acc.rawpoison as Accounting;
    assert.deepEqual(exactnessProblems(a), []);
    assert.deepEqual(a.rejected, { 'es-refused:document_parsing_exception': 2 });
    assert.equal(a.tableRows, 300);
    assert.deepEqual(await sumOver(t, runs.rawpoison as string, 'pass,rejected'), {
      'es-refused:document_parsing_exception': 2,
    });
    const { rows } = await t.dbs.api.query<{ s: string }>(
      `SELECT s FROM freshet.chunks, jsonb_each(result -> 'pass' -> 'rejected') AS r(k, v),
              jsonb_array_elements_text(v -> 'sample') AS s
        WHERE run_id = $1 ORDER BY s`,
      [runs.rawpoison],
    );
    assert.deepEqual(
      rows.map((r) => r.s),
      ['5001', '5002'],
    );
    const left = await t.es.count({
      index: a.names.alias,
      query: { ids: { values: ['5001', '5002'] } },
    });
    assert.equal(left.count, 0);
  });

  it('a document one index took and the other refused is removed from both', async () => {
    assert.deepEqual(status.halfmap, { status: 'succeeded', error: null });
    const a = acc.halfmap as Accounting;
    assert.deepEqual(exactnessProblems(a), []);
    assert.deepEqual(a.rejected, { 'es-refused:document_parsing_exception': 2 });
    assert.equal(a.names.indices.length, 2, 'halfmap is built in index mode');
    assert.equal(a.filteredDocs, a.docs, 'no sensitive term in these rows: both indices alike');
    for (const index of a.names.indices) {
      const hits = await t.es.count({ index, query: { ids: { values: ['70', '1400'] } } });
      assert.equal(hits.count, 0, index);
    }
  });

  it('a mapping that refuses most documents fails the run before promotion; the live build stays', async () => {
    assert.deepEqual(status.brokenmap, { status: 'succeeded', error: null });
    assert.deepEqual(exactnessProblems(brokenFirst), []);
    assert.equal(brokenSecond.status, 'failed');
    assert.equal(brokenSecond.stage, 'finalize');
    const refused = 300 - 30;
    assert.match(
      brokenSecond.error ?? '',
      new RegExp(
        `Elasticsearch refused ${refused} of 300 documents \\(90\\.00%\\), more than MAX_REJECTED_RATE 0\\.01: es-refused:document_parsing_exception ${refused} \\(e\\.g\\. key \\d+`,
      ),
    );
    // The aliases, the live table and its documents are the first build's.
    const holders = async (name: string) => Object.keys(await t.es.indices.getAlias({ name }));
    assert.deepEqual(await holders(brokenFirst.names.alias), [brokenFirst.names.index]);
    assert.deepEqual(await holders(brokenFirst.names.filteredAlias), [
      brokenFirst.names.aliases[1].index,
    ]);
    const live = await t.dbs.api.query<{ n: number; text: number }>(
      `SELECT count(*)::int AS n, count(*) FILTER (WHERE score = 'n/a')::int AS text FROM brokenmap`,
    );
    assert.deepEqual(live.rows[0], { n: 300, text: 0 });
    assert.equal((await t.es.count({ index: brokenFirst.names.alias })).count, 300);
  });
});
