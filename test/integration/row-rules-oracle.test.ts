import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import {
  columnDefinitions,
  compileRowRules,
  ensureCatalogSchema,
  getMedia,
  ident,
  loadConfig,
  loadMediaCatalog,
  parseSensitiveTerms,
  seedSample,
  seedSynthetic,
  type MediaCatalog,
  type MediaDefinition,
} from '@freshet/core';
import { faultDefinition, writeFaultMedia } from '../helpers/faults.js';
import {
  elements,
  hostileRows,
  hostileTerms,
  invalidJson,
  metas,
  sqlBreakingAccuracies,
  tagValues,
  type HostileRow,
} from '../helpers/hostile-values.js';
import { openverseTagCases } from '../helpers/openverse-tag-cases.js';
import { compareWithOracle, type Comparison } from '../helpers/rules-vs-oracle.js';
import { oracleClean } from '../helpers/sql-oracle.js';
import { createScratchDb, type ScratchDb } from '../helpers/scratch-db.js';

const SEED = Number(process.env.FRESHET_FUZZ_SEED ?? 20_261_201);
const SYNTHETIC_ROWS = Number(process.env.FRESHET_ORACLE_ROWS ?? 20_000);

const config = loadConfig();
const shipped = loadMediaCatalog(config.FRESHET_MEDIA_FILE);
const shippedTerms = parseSensitiveTerms(readFileSync(config.SENSITIVE_TERMS_FILE, 'utf8'));

/** A definition reading another upstream table (so every scenario has a table of its own). */
const reading = (def: MediaDefinition, table: string): MediaDefinition => ({
  ...def,
  upstreamTable: table,
  deletedTable: undefined,
});

/** The test's media types beyond the shipped ones: the fault definitions and their variants. */
function testMedia(): MediaCatalog {
  const hostile = faultDefinition('hostile', { hostile: true });
  const text = (t: string) => (c: { name: string; type: string }) =>
    c.name === 'tags' || c.name === 'meta' ? { ...c, type: t } : c;
  return loadMediaCatalog(
    writeFaultMedia({
      hostile,
      // The same rows in jsonb columns (those jsonb holds) and in text columns (invalid JSON too).
      hostilejsonb: {
        ...faultDefinition('hostilejsonb'),
        columns: hostile.columns.map(text('jsonb')),
      },
      // (meta stays json: the SQL has no ->> for a text column)
      hostiletext: {
        ...faultDefinition('hostiletext'),
        columns: hostile.columns.map((c) => (c.name === 'tags' ? { ...c, type: 'text' } : c)),
      },
      // Providers that only match a number's or a boolean's text.
      hostileproviders: {
        ...faultDefinition('hostileproviders', { hostile: true }),
        cleaning: {
          ...hostile.cleaning,
          tags: {
            ...hostile.cleaning.tags,
            denylistedProviders: ['badprovider', '5', '100', '1.50', 'true'],
          },
        },
      },
      types: typesDefinition(),
    }),
  );
}

/** A definition with a column of every type a document renders. */
function typesDefinition() {
  return {
    upstreamTable: 'types',
    downstreamTable: 'types',
    key: { column: 'id', type: 'bigint' },
    providerColumn: 'provider',
    columns: [
      { name: 'id', type: 'bigint', notNull: true },
      { name: 'provider', type: 'text' },
      { name: 'url', type: 'text', notNull: true },
      { name: 'license', type: 'varchar(20)', notNull: true },
      { name: 'ts', type: 'timestamptz' },
      { name: 'tsn', type: 'timestamp' },
      { name: 'd', type: 'date' },
      { name: 'f8', type: 'double precision' },
      { name: 'f4', type: 'real' },
      { name: 'num', type: 'numeric' },
      { name: 'i2', type: 'smallint' },
      { name: 'b', type: 'boolean' },
      { name: 'arr', type: 'text[]' },
      { name: 'iarr', type: 'integer[]' },
      { name: 'tsarr', type: 'timestamptz[]' },
      { name: 'j', type: 'json' },
      { name: 'jb', type: 'jsonb' },
      { name: 'u', type: 'uuid' },
    ],
    cleaning: { urlColumns: ['url'], licenseColumn: 'license' },
    document: {
      mapping: 'fault.json',
      fields: {
        id: 'id',
        ts: 'ts',
        tsn: 'tsn',
        d: 'd',
        f8: 'f8',
        f4: 'f4',
        num: 'num',
        i2: 'i2',
        b: 'b',
        arr: 'arr',
        iarr: 'iarr',
        tsarr: 'tsarr',
        j: 'j',
        jb: 'jb',
        u: 'u',
        jk: { column: 'j', key: 'k' },
        jbk: { column: 'jb', key: 'k' },
      },
      sensitiveFields: ['arr', 'j', 'jb', 'jk', 'ts'],
    },
  };
}

/** SQL literals of each `types` column, combined with different strides. */
const typeValues: Record<string, readonly string[]> = {
  ts: [
    `'2021-03-04 05:06:07.123456+00'`,
    `'0044-03-15 12:00:00+00 BC'`,
    `'infinity'`,
    `'-infinity'`,
    `'10000-01-01 00:00:00.5+00'`,
    `'2000-01-01 00:00:00+00'`,
    `'1999-12-31 23:59:59.999999+05:30'`,
    `'4713-11-24 00:00:00+00 BC'`,
    'NULL',
  ],
  tsn: [
    `'2021-03-04 05:06:07.12'`,
    `'0044-03-15 12:00:00 BC'`,
    `'infinity'`,
    `'2000-01-01'`,
    'NULL',
  ],
  d: [`'2021-03-04'`, `'0044-03-15 BC'`, `'infinity'`, `'-infinity'`, `'10000-01-01'`, 'NULL'],
  f8: [
    `'NaN'`,
    `'Infinity'`,
    `'-Infinity'`,
    `'-0'`,
    '1e20',
    '1.5e-7',
    '0.1',
    '123456789012345680000',
    '1e-300',
    '5e-324',
    '1.7976931348623157e308',
    'NULL',
  ],
  f4: [`'NaN'`, '3.4028235e38', '1.5', `'-Infinity'`, '1e-45', 'NULL'],
  num: [
    `'NaN'`,
    `'Infinity'`,
    `'-Infinity'`,
    '0.1000',
    `'1e400'::numeric`,
    '-0.00',
    '12345678901234567890.123456789',
    'NULL',
  ],
  i2: ['-32768', '32767', '0', 'NULL'],
  b: ['true', 'false', 'NULL'],
  arr: [
    `'{a,NULL,"b c","","NULL","\\"q\\"","back\\\\\\\\slash",water}'`,
    `'{{a,b},{c,d}}'`,
    `'[0:1]={x,bird}'`,
    `'{}'`,
    `'{" spaced ",tab\\tin,"x,y","{braces}"}'`,
    `ARRAY[NULL]::text[]`,
    'NULL',
  ],
  iarr: [`'{1,NULL,3}'`, `'{{1,2},{3,4}}'`, `'{}'`, 'NULL'],
  tsarr: [`'{"2021-03-04 05:06:07+00",NULL,infinity}'`, `'{}'`, 'NULL'],
  j: [
    `'{"k": [1, 2], "k": "dup water"}'`,
    `'[{"name": "water"}, "bird", 5, {"name": 1E2}, {"name": {"x": -0}}, {"name": null}, {"name": true}, ["running"]]'`,
    `'"water"'`,
    `'5'`,
    `' { "k" : { "a" : 1 } } '`,
    `'{"k": 1.50E1}'`,
    `'[]'`,
    `'{"k": "\\u00e9"}'`,
    'NULL',
  ],
  jb: [
    `'{"k": [1, 2], "k": "dup water"}'`,
    `'[{"name": "water"}, "bird", 5, {"name": 1E2}, {"name": {"x": -0}}, {"name": null}, {"name": false}]'`,
    `'"running water"'`,
    `'{"k": 1.50E1, "a": {"k": 1}}'`,
    `'[]'`,
    `'null'`,
    'NULL',
  ],
  u: [`'00000000-0000-4000-8000-000000000001'`, 'gen_random_uuid()', 'NULL'],
};

async function loadTypes(pool: ScratchDb['pool'], def: MediaDefinition) {
  await ensureCatalogSchema(pool, def);
  const columns = Object.keys(typeValues);
  const rows: string[] = [];
  for (let i = 0; i < 240; i++) {
    const values = columns.map((c, n) => {
      const list = typeValues[c] as readonly string[];
      return list[(i * (n + 1) + n) % list.length] as string;
    });
    rows.push(`(${i + 1}, 'p', 'https://example.org/${i}', 'by', ${values.join(', ')})`);
  }
  await pool.query(
    `INSERT INTO types (id, provider, url, license, ${columns.join(', ')}) VALUES ${rows.join(',\n')}`,
  );
}

/** Inserts hostile rows; `onlyJsonb`: only the rows whose tags and meta jsonb holds. */
async function loadHostile(
  pool: ScratchDb['pool'],
  def: MediaDefinition,
  rows: readonly HostileRow[],
  onlyJsonb = false,
) {
  const table = ident(def.upstreamTable);
  const type = def.columns.find((c) => c.name === 'tags')?.type ?? 'json';
  const metaType = def.columns.find((c) => c.name === 'meta')?.type ?? 'json';
  await pool.query(
    `CREATE TABLE ${table} (id bigint, title text, provider varchar(40), license varchar(20) NOT NULL,
       url text NOT NULL, thumbnail text, tags ${type}, meta ${metaType})`,
  );
  const client = await pool.connect();
  try {
    await client.query(
      `CREATE OR REPLACE FUNCTION pg_temp.is_jsonb(v text) RETURNS boolean LANGUAGE plpgsql AS $$
         BEGIN PERFORM v::jsonb; RETURN true; EXCEPTION WHEN others THEN RETURN false; END $$`,
    );
    for (let i = 0; i < rows.length; i += 200) {
      const batch = rows.slice(i, i + 200);
      await client.query(
        `INSERT INTO ${table} (id, title, provider, license, url, thumbnail, tags, meta)
         SELECT r.id, r.title, r.provider, r.license, r.url, r.thumbnail, r.tags::${type}, r.meta::${metaType}
           FROM jsonb_to_recordset($1::jsonb) AS r(id bigint, title text, provider text, license text,
                url text, thumbnail text, tags text, meta text)
          WHERE ${onlyJsonb ? `(r.tags IS NULL OR pg_temp.is_jsonb(r.tags)) AND (r.meta IS NULL OR pg_temp.is_jsonb(r.meta))` : 'TRUE'}`,
        [JSON.stringify(batch)],
      );
    }
  } finally {
    client.release();
  }
}

/** Rows of an image or audio table with hostile titles, tags and meta (those jsonb holds). */
async function loadShippedHostile(
  pool: ScratchDb['pool'],
  def: MediaDefinition,
  rows: readonly HostileRow[],
) {
  // No unique constraints: hostile rows share URLs.
  await pool.query(`CREATE TABLE ${ident(def.upstreamTable)} (${columnDefinitions(def)})`);
  await pool.query(
    `CREATE OR REPLACE FUNCTION public.freshet_test_is_jsonb(v text) RETURNS boolean LANGUAGE plpgsql AS $$
       BEGIN PERFORM v::jsonb; RETURN true; EXCEPTION WHEN others THEN RETURN false; END $$`,
  );
  for (let i = 0; i < rows.length; i += 200) {
    await pool.query(
      `INSERT INTO ${ident(def.upstreamTable)} (identifier, created_on, updated_on, provider, url, thumbnail,
         license, removed_from_source, title, tags, meta_data)
       SELECT ('00000000-0000-4000-8000-' || lpad(r.id::text, 12, '0'))::uuid, '2020-01-01', '2020-01-02',
              r.provider, r.url, r.thumbnail, r.license, false, r.title, r.tags::jsonb, r.meta::jsonb
         FROM jsonb_to_recordset($1::jsonb) AS r(id bigint, title text, provider text, license text,
              url text, thumbnail text, tags text, meta text)
        WHERE (r.tags IS NULL OR freshet_test_is_jsonb(r.tags))
          AND (r.meta IS NULL OR freshet_test_is_jsonb(r.meta))`,
      [JSON.stringify(rows.slice(i, i + 200))],
    );
  }
}

interface Scenario {
  readonly name: string;
  readonly def: MediaDefinition;
  readonly terms: readonly string[];
  load(db: ScratchDb): Promise<void>;
  /** The least the rows must exercise, so a scenario that stopped seeding fails. */
  readonly expect?: { rejected?: boolean; tagsDropped?: boolean; sensitive?: boolean };
}

describe('row rules against the SQL they replace', { timeout: 600_000 }, () => {
  let db: ScratchDb;
  const media = testMedia();
  const image = getMedia(shipped, 'image');
  const audio = getMedia(shipped, 'audio');
  const hostile = hostileRows({ seed: SEED, random: 400 });
  const hostileText = hostileRows({ seed: SEED + 1, random: 200, text: true });
  const allTerms = [...shippedTerms, ...hostileTerms];
  const all = { rejected: true, tagsDropped: true, sensitive: true };
  const scenarios: Scenario[] = [
    ...[image, audio].map((def) => ({
      name: `${def.name}: ${SYNTHETIC_ROWS} synthetic rows`,
      def: reading(def, `${def.name}_synthetic`),
      terms: shippedTerms,
      load: async ({ pool }: ScratchDb) => {
        await seedSynthetic(pool, reading(def, `${def.name}_synthetic`), {
          rows: SYNTHETIC_ROWS,
          seed: SEED,
        });
      },
      expect: { tagsDropped: true, sensitive: true },
    })),
    ...[image, audio].map((def) => ({
      name: `${def.name}: the Openverse sample rows`,
      def: reading(def, `${def.name}_sample`),
      terms: shippedTerms,
      load: async ({ pool }: ScratchDb) => {
        await seedSample(
          pool,
          new Map([[def.name, reading(def, `${def.name}_sample`)]]),
          config.FRESHET_SAMPLE_DIR,
        );
      },
      // (none of the audio sample's 100 rows has a sensitive term)
      expect: def === image ? { sensitive: true } : {},
    })),
    ...[image, audio].map((def) => ({
      name: `${def.name}: Openverse's tag rule cases`,
      def: reading(def, `${def.name}_tagcases`),
      terms: shippedTerms,
      load: async ({ pool }: ScratchDb) => {
        const d = reading(def, `${def.name}_tagcases`);
        await ensureCatalogSchema(pool, d);
        for (const [i, c] of openverseTagCases.entries()) {
          await pool.query(
            `INSERT INTO ${ident(d.upstreamTable)} (identifier, created_on, updated_on, provider, url, license,
               removed_from_source, title, tags)
             VALUES ($1, now(), now(), 'flickr', $2, 'by', false, $3, $4::jsonb)`,
            [
              `00000000-0000-4000-8000-${String(i + 1).padStart(12, '0')}`,
              `https://example.org/${i}`,
              c.name,
              JSON.stringify(c.tags.map((x) => x[0])),
            ],
          );
        }
      },
      expect: { tagsDropped: true },
    })),
    {
      name: `image: ${hostile.length} hostile rows (those jsonb holds)`,
      def: reading(image, 'image_hostile'),
      terms: allTerms,
      load: ({ pool }) => loadShippedHostile(pool, reading(image, 'image_hostile'), hostile),
      expect: all,
    },
    ...(['hostile', 'hostilejsonb', 'hostileproviders'] as const).map((name) => ({
      name: `${name}: ${hostile.length} hostile rows${name === 'hostilejsonb' ? ' (those jsonb holds)' : ''}`,
      def: getMedia(media, name),
      terms: hostileTerms,
      load: ({ pool }: ScratchDb) =>
        loadHostile(pool, getMedia(media, name), hostile, name === 'hostilejsonb'),
      expect: all,
    })),
    {
      name: `hostiletext: ${hostileText.length} hostile rows in text columns, invalid JSON included`,
      def: getMedia(media, 'hostiletext'),
      terms: hostileTerms,
      load: ({ pool }) => loadHostile(pool, getMedia(media, 'hostiletext'), hostileText),
      expect: all,
    },
    {
      name: 'types: every column type a document renders',
      def: getMedia(media, 'types'),
      terms: allTerms,
      load: ({ pool }) => loadTypes(pool, getMedia(media, 'types')),
      expect: { sensitive: true },
    },
  ];
  before(async () => {
    db = await createScratchDb('oracle');
  });

  after(async () => {
    await db?.drop();
  });

  for (const [i, s] of scenarios.entries()) {
    describe(s.name, () => {
      let comparison: Comparison | undefined;
      before(async () => {
        await s.load(db);
        comparison = await compareWithOracle(db.pool, s.def, s.terms, `s${i}`);
      });
      const result = () => {
        assert.ok(comparison, 'compared');
        return comparison;
      };

      it('the same rows are rejected, for the same reasons', () => {
        const r = result();
        assert.ok(r.rows > 0, 'rows were loaded');
        assert.deepEqual(r.rules.rejected, r.sql.rejected);
        if (s.expect?.rejected)
          assert.ok(Object.keys(r.sql.rejected).length > 0, 'some rows are rejected');
      });

      it('the same changes are counted, rule by rule, and the same tags dropped, reason by reason', (ctx) => {
        const r = result();
        ctx.diagnostic(
          `changed ${JSON.stringify(r.sql.changed)}, tags dropped ${JSON.stringify(r.sql.tagsDropped)}`,
        );
        assert.deepEqual(r.rules.changed, r.sql.changed);
        assert.deepEqual(r.rules.tagsDropped, r.sql.tagsDropped);
        if (s.expect?.tagsDropped)
          assert.ok(Object.keys(r.sql.tagsDropped).length > 0, 'some tags are dropped');
      });

      it('the cleaned tables are identical (json as jsonb), and so is every column as text', () => {
        const r = result();
        assert.deepEqual(r.tableDiff, { onlySql: [], onlyRules: [] });
        assert.deepEqual(r.textDiff, { onlySql: [], onlyRules: [] });
      });

      it('every kept row has the SQL document and sensitivity', (ctx) => {
        const r = result();
        ctx.diagnostic(`${r.documents} documents, ${r.sql.sensitive} sensitive`);
        assert.equal(r.rules.kept, r.sql.kept);
        assert.deepEqual(r.documentDiff, []);
        assert.equal(r.rules.sensitive, r.sql.sensitive);
        if (s.expect?.sensitive) {
          assert.ok(
            r.sql.sensitive > 0 && r.sql.sensitive < r.documents,
            'some rows are sensitive, not all',
          );
        }
      });
    });
  }

  it('the hostile rows carry at least 200 generated tag and meta values', () => {
    const values = elements.length + tagValues.length + invalidJson.length + metas.length;
    assert.ok(values >= 200, `${values} values`);
    assert.ok(hostile.length > values);
  });

  it('an accuracy string with a non-ASCII space fails the SQL; the rules call that tag malformed', async () => {
    const def = getMedia(media, 'hostile');
    const rules = compileRowRules(def, []);
    for (const [i, accuracy] of sqlBreakingAccuracies.entries()) {
      const table = `breaking${i}`;
      const tags = `[{"name":"ok"},{"name":"sunset","accuracy":${accuracy}}]`;
      await loadHostile(db.pool, { ...def, upstreamTable: table }, [
        {
          id: 1,
          title: 't',
          provider: 'p1',
          license: 'by',
          url: 'https://example.org/',
          thumbnail: null,
          tags,
          meta: null,
        },
      ]);
      const client = await db.pool.connect();
      try {
        await assert.rejects(
          oracleClean(client, { ...def, upstreamTable: table }, table),
          /invalid input syntax for type numeric/,
        );
      } finally {
        client.release();
      }
      const outcome = rules.clean(['1', 't', 'p1', 'by', 'https://example.org/', null, tags, null]);
      assert.equal(outcome.rejected, undefined);
      assert.deepEqual(
        outcome.rejected === undefined && outcome.tagsDropped,
        { malformed: 1 },
        accuracy,
      );
    }
  });
});
