// `freshet seed` against the real PostgreSQL, in a scratch database created and dropped here:
// the Openverse sample load and a 1,000,000-row synthetic load, checked for counts and dirt.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import {
  createPool,
  getMedia,
  loadConfig,
  loadMediaCatalog,
  repoRoot,
  sampleFiles,
  seedSample,
  seedSynthetic,
  syntheticRates,
  UserError,
  type MediaCatalog,
  type SeedReport,
} from '@freshet/core';
import { runCli as runProcess, type CliResult } from '../helpers/processes.js';

const config = loadConfig();
const media: MediaCatalog = loadMediaCatalog(config.FRESHET_MEDIA_FILE);
const image = getMedia(media, 'image');
const audio = getMedia(media, 'audio');

const adminUrl = (() => {
  if (process.env.FRESHET_TEST_ADMIN_URL) return process.env.FRESHET_TEST_ADMIN_URL;
  const u = new URL(config.CATALOG_DATABASE_URL);
  u.pathname = '/postgres';
  return u.toString();
})();
const dbName = `freshet_seedtest_${randomBytes(4).toString('hex')}`;
const dbUrl = (() => {
  const u = new URL(adminUrl);
  u.pathname = `/${dbName}`;
  return u.toString();
})();

let admin: pg.Pool;
let catalog: pg.Pool;

/** One number from a single-row, single-column query. */
async function count(sql: string): Promise<number> {
  const { rows } = await catalog.query<{ n: string | number }>(sql);
  return Number(rows[0]?.n);
}

/** Every element of array-valued tags, whatever their shape (rows with `{}` contribute none). */
const tagElements = (table: string) =>
  `${table}, jsonb_array_elements(CASE WHEN jsonb_typeof(tags) = 'array' THEN tags ELSE '[]' END) AS t`;

/** Runs the real CLI against the scratch database (`env` adds to or, when undefined, removes). */
function runCli(args: string[], env: NodeJS.ProcessEnv = {}): Promise<CliResult> {
  return runProcess(args, {
    ...process.env,
    CATALOG_DATABASE_URL: dbUrl,
    LOG_LEVEL: 'silent',
    ...env,
  });
}

before(async () => {
  admin = createPool(adminUrl, 'freshet-seed-test', 1);
  await admin.query(`CREATE DATABASE ${dbName}`);
  catalog = createPool(dbUrl, 'freshet-seed-test', 4);
});

after(async () => {
  await catalog?.end();
  await admin?.query(`DROP DATABASE IF EXISTS ${dbName} WITH (FORCE)`);
  await admin?.end();
});

describe('seed --sample', () => {
  let reports: SeedReport[];

  it(
    'ships the sample in the repository, as its MANIFEST lists it',
    { timeout: 10_000 },
    async () => {
      const dir = loadConfig({}).FRESHET_SAMPLE_DIR;
      assert.equal(
        dir,
        path.join(repoRoot, 'packages/core/sample'),
        'the default is inside the repo',
      );
      const manifest = await readFile(path.join(dir, 'MANIFEST.md'), 'utf8');
      for (const file of Object.values(sampleFiles)) {
        const sha256 = createHash('sha256')
          .update(await readFile(path.join(dir, file)))
          .digest('hex');
        assert.ok(
          manifest.includes(`${sha256}  ${file}`),
          `MANIFEST.md lists ${file} as ${sha256}`,
        );
      }
    },
  );

  it(
    'loads 1,899 image and 100 audio rows and marks a few live rows deleted',
    { timeout: 60_000 },
    async () => {
      reports = await seedSample(catalog, media, config.FRESHET_SAMPLE_DIR);
      const byMedia = Object.fromEntries(reports.map((r) => [r.media, r]));
      assert.deepEqual(
        {
          rows: byMedia.image?.rows,
          removed: byMedia.image?.removed,
          deleted: byMedia.image?.deleted,
        },
        { rows: 1899, removed: 525, deleted: 14 },
      );
      assert.deepEqual(
        {
          rows: byMedia.audio?.rows,
          removed: byMedia.audio?.removed,
          deleted: byMedia.audio?.deleted,
        },
        { rows: 100, removed: 0, deleted: 1 },
      );
      assert.equal(await count('SELECT count(*) AS n FROM image'), 1899);
      assert.equal(await count('SELECT count(*) AS n FROM audio'), 100);
      assert.equal(await count('SELECT count(*) AS n FROM deleted_image'), 14);
      assert.equal(await count('SELECT count(*) AS n FROM deleted_audio'), 1);
      // Deleted identifiers are live rows of the table, so a refresh really has to skip them.
      assert.equal(
        await count(
          'SELECT count(*) AS n FROM deleted_image d JOIN image i USING (identifier) WHERE NOT i.removed_from_source',
        ),
        14,
      );
    },
  );

  it('contains the sample dirt', { timeout: 30_000 }, async () => {
    const noScheme = (col: string) =>
      count(`SELECT count(*) AS n FROM image WHERE ${col} !~ '^https?://'`);
    assert.equal(await noScheme('foreign_landing_url'), 294);
    assert.equal(await noScheme('creator_url'), 405);
    assert.equal(await noScheme('url'), 2);
    assert.equal(await count(`SELECT count(*) AS n FROM image WHERE removed_from_source`), 525);
    assert.equal(
      await count(`SELECT count(*) AS n FROM image WHERE license <> lower(license)`),
      50,
    );
    assert.equal(
      await count(
        `SELECT count(*) AS n FROM ${tagElements('image')} WHERE (t->>'accuracy')::float < 0.9`,
      ),
      1613,
    );
    assert.ok((await count(`SELECT count(*) AS n FROM image WHERE title IS NULL`)) > 0);
    assert.ok((await count(`SELECT count(*) AS n FROM image WHERE tags = '{}'::jsonb`)) > 0);
    // Audio timestamps have no zone in the CSV: they are read as UTC.
    assert.equal(
      await count(
        `SELECT count(*) AS n FROM audio WHERE identifier = 'ea609784-944d-412e-84d5-8dea096366e9' AND created_on = '2021-06-27 17:21:13.282294+00'`,
      ),
      1,
    );
  });

  it('gives the same counts when run again', { timeout: 60_000 }, async () => {
    const again = await seedSample(catalog, media, config.FRESHET_SAMPLE_DIR);
    assert.deepEqual(
      again.map(({ media: m, rows, removed, deleted }) => ({ m, rows, removed, deleted })),
      reports.map(({ media: m, rows, removed, deleted }) => ({ m, rows, removed, deleted })),
    );
    assert.equal(await count('SELECT count(*) AS n FROM image'), 1899);
  });

  it('names the missing directory', { timeout: 10_000 }, async () => {
    const missing = path.join(repoRoot, 'no-such-sample-dir');
    await assert.rejects(seedSample(catalog, media, missing), (err: Error) => {
      assert.ok(err instanceof UserError);
      assert.match(err.message, /sample directory not found: .*no-such-sample-dir/);
      return true;
    });
  });
});

describe('seed --rows', () => {
  it('loads 1,000,000 image rows with every kind of dirt', { timeout: 300_000 }, async (t) => {
    const rows = 1_000_000;
    const report = await seedSynthetic(catalog, image, { rows, seed: 1 });
    t.diagnostic(
      `1,000,000 image rows in ${(report.ms / 1000).toFixed(1)} s (${Math.round(rows / (report.ms / 1000))} rows/s)`,
    );
    assert.equal(report.rows, rows);
    assert.equal(await count('SELECT count(*) AS n FROM image'), rows);

    const share = async (sql: string, of = rows) => (await count(sql)) / of;
    const near = (value: number, target: number, tolerance: number, what: string) =>
      assert.ok(Math.abs(value - target) <= tolerance, `${what}: ${value}, expected ~${target}`);

    const removed = await count('SELECT count(*) AS n FROM image WHERE removed_from_source');
    assert.equal(removed, report.removed);
    near(removed / rows, syntheticRates.removed, 0.005, 'removed share');
    near(
      await share(`SELECT count(*) AS n FROM image WHERE foreign_landing_url !~ '^https?://'`),
      syntheticRates.linkWithoutScheme,
      0.005,
      'landing URLs without scheme',
    );
    const creatorUrls = await count(
      'SELECT count(*) AS n FROM image WHERE creator_url IS NOT NULL',
    );
    near(
      await share(`SELECT count(*) AS n FROM image WHERE creator_url !~ '^https?://'`, creatorUrls),
      syntheticRates.linkWithoutScheme,
      0.005,
      'creator URLs without scheme',
    );
    near(
      await share(`SELECT count(*) AS n FROM image WHERE url !~ '^https?://'`),
      syntheticRates.urlWithoutScheme,
      0.001,
      'urls without scheme',
    );
    near(
      await share(`SELECT count(*) AS n FROM image WHERE license <> lower(license)`),
      syntheticRates.upperCaseLicense,
      0.003,
      'upper-case licenses',
    );
    near(
      await share(`SELECT count(*) AS n FROM image WHERE tags IS NULL`),
      syntheticRates.tagsNull,
      0.01,
      'NULL tags',
    );
    for (const col of ['title', 'creator', 'creator_url', 'meta_data', 'thumbnail', 'width']) {
      assert.ok((await count(`SELECT count(*) AS n FROM image WHERE ${col} IS NULL`)) > 0, col);
    }

    const { rows: tagStats } = await catalog.query<Record<string, number>>(
      `SELECT count(*) FILTER (WHERE t ? 'accuracy') AS machine,
              count(*) FILTER (WHERE (t->>'accuracy')::float < 0.9) AS low,
              count(*) FILTER (WHERE jsonb_typeof(t) <> 'object') AS not_object,
              count(*) FILTER (WHERE jsonb_typeof(t) = 'object' AND NOT t ? 'name') AS no_name,
              count(*) FILTER (WHERE jsonb_typeof(t->'name') NOT IN ('string', 'null')) AS odd_name,
              count(*) FILTER (WHERE t->>'name' = '') AS empty_name,
              count(*) FILTER (WHERE t->>'name' IN ('squareformat', 'no person')) AS denylisted
         FROM ${tagElements('image')}`,
    );
    const tags = tagStats[0] as Record<string, number>;
    t.diagnostic(`tag elements: ${JSON.stringify(tags)}`);
    near(tags.low! / tags.machine!, 0.2, 0.03, 'machine tags with accuracy < 0.9');
    for (const kind of ['not_object', 'no_name', 'odd_name', 'empty_name', 'denylisted']) {
      assert.ok(tags[kind]! > 100, `${kind} tags present`);
    }
    assert.ok(
      (await count(
        `SELECT count(*) AS n FROM image WHERE meta_data->>'description' ~ '\\m(running|water|bird)\\M'`,
      )) > 0,
      'descriptions with a sensitive term',
    );

    const deleted = await count('SELECT count(*) AS n FROM deleted_image');
    assert.equal(deleted, report.deleted);
    near(deleted / (rows - removed), syntheticRates.deleted, 0.001, 'deleted share of live rows');
    assert.equal(
      await count(
        'SELECT count(*) AS n FROM deleted_image d JOIN image i USING (identifier) WHERE NOT i.removed_from_source',
      ),
      deleted,
    );

    // The uniques held (they are rebuilt after the load, so they are there and were checked).
    const { rows: constraints } = await catalog.query<{ conname: string }>(
      `SELECT conname FROM pg_constraint WHERE conrelid = 'image'::regclass AND contype IN ('p', 'u') ORDER BY conname`,
    );
    assert.deepEqual(
      constraints.map((c) => c.conname),
      ['image_foreign_identifier_provider_key', 'image_pkey', 'image_url_key'],
    );
    assert.equal(await count('SELECT count(DISTINCT url) AS n FROM image'), rows);
    assert.equal(
      await count('SELECT count(DISTINCT (foreign_identifier, provider)) AS n FROM image'),
      rows,
    );
  });

  it('is reproducible from a seed', { timeout: 120_000 }, async () => {
    const checksum = () =>
      catalog
        .query<{ md5: string }>(
          `SELECT md5(string_agg(identifier::text || url || coalesce(title, ''), ',' ORDER BY identifier)) AS md5 FROM audio`,
        )
        .then((r) => r.rows[0]?.md5);
    await seedSynthetic(catalog, audio, { rows: 20_000, seed: 7 });
    const first = await checksum();
    await seedSynthetic(catalog, audio, { rows: 20_000, seed: 7 });
    assert.equal(await checksum(), first);
    await seedSynthetic(catalog, audio, { rows: 20_000, seed: 8 });
    assert.notEqual(await checksum(), first);
    assert.equal(await count('SELECT count(*) AS n FROM audio'), 20_000);
  });

  it('appends after existing rows without repeating them', { timeout: 60_000 }, async () => {
    await seedSynthetic(catalog, audio, { rows: 3_000, seed: 3 });
    const report = await seedSynthetic(catalog, audio, { rows: 2_000, seed: 3, truncate: false });
    assert.equal(report.rows, 2_000);
    assert.equal(await count('SELECT count(*) AS n FROM audio'), 5_000);
    assert.equal(await count('SELECT count(DISTINCT url) AS n FROM audio'), 5_000);
  });
});

describe('freshet seed (CLI)', () => {
  it('seeds 1,000 audio rows', { timeout: 120_000 }, async () => {
    const result = await runCli(['seed', '--rows', '1000', '--media', 'audio']);
    assert.equal(result.code, 0, result.stderr);
    assert.match(
      result.stdout,
      /^audio: 1,000 rows \(\d+ removed, \d+ deleted\) in [\d.]+ s, [\d,]+ rows\/s, seed 1\n$/,
    );
    assert.equal(await count('SELECT count(*) AS n FROM audio'), 1000);
  });

  it('rejects an unknown media type and writes nothing', { timeout: 120_000 }, async () => {
    const snapshot = () =>
      catalog
        .query(
          `SELECT (SELECT string_agg(table_name, ',' ORDER BY table_name) FROM information_schema.tables WHERE table_schema = 'public') AS tables,
                  (SELECT count(*) FROM image) AS image, (SELECT count(*) FROM audio) AS audio`,
        )
        .then((r) => r.rows[0] as unknown);
    const before = await snapshot();
    const result = await runCli(['seed', '--rows', '1000', '--media', 'nosuch']);
    assert.equal(result.code, 2);
    assert.equal(result.stdout, '');
    assert.equal(
      result.stderr.trim(),
      'freshet: unknown media type "nosuch"; known types: image, audio',
    );
    assert.deepEqual(await snapshot(), before);
  });

  it(
    'loads the shipped sample when FRESHET_SAMPLE_DIR is unset',
    { timeout: 120_000 },
    async () => {
      const result = await runCli(['seed', '--sample'], { FRESHET_SAMPLE_DIR: undefined });
      assert.equal(result.code, 0, result.stderr);
      assert.match(result.stdout, /^image: 1,899 rows \(525 removed, 14 deleted\) in .*\n/);
      assert.match(result.stdout, /\naudio: 100 rows \(0 removed, 1 deleted\) in .*\n$/);
      assert.equal(await count('SELECT count(*) AS n FROM image'), 1899);
    },
  );

  it('asks for exactly one of --sample and --rows', { timeout: 120_000 }, async () => {
    const result = await runCli(['seed', '--sample', '--rows', '5']);
    assert.equal(result.code, 2);
    assert.match(result.stderr, /give exactly one of --sample or --rows N/);
  });
});
