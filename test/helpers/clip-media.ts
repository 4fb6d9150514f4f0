import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type pg from 'pg';

/**
 * Writes a media definitions file with test-only media types (no code change needed for them):
 * - `clip`: integer keys, its own mapping (score is an integer there, text in the table);
 * - `slowclip`: reads from the view `slowclip`, which sleeps 60 s inside a chunk's copy query
 *   (and only there), to exercise deadlines and cancellation at the source.
 * Returns the path of the definitions file.
 */
export function writeClipMedia(): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'freshet-clip-'));
  writeFileSync(
    path.join(dir, 'clip.json'),
    JSON.stringify({
      settings: { index: { number_of_shards: 1 } },
      mappings: {
        dynamic: 'strict',
        properties: {
          id: { type: 'long' },
          title: { type: 'text' },
          provider: { type: 'keyword' },
          license: { type: 'keyword' },
          url: { type: 'keyword' },
          score: { type: 'integer' },
        },
      },
    }),
  );
  const definition = (upstreamTable: string) => ({
    upstreamTable,
    downstreamTable: upstreamTable,
    key: { column: 'id', type: 'bigint' },
    providerColumn: 'provider',
    columns: [
      { name: 'id', type: 'bigint', notNull: true },
      { name: 'title', type: 'text' },
      { name: 'provider', type: 'varchar(40)' },
      { name: 'license', type: 'varchar(20)', notNull: true },
      { name: 'url', type: 'varchar(500)', notNull: true },
      { name: 'score', type: 'text' },
    ],
    cleaning: { urlColumns: ['url'], licenseColumn: 'license' },
    document: {
      mapping: 'clip.json',
      fields: {
        id: 'id',
        title: 'title',
        provider: 'provider',
        license: 'license',
        url: 'url',
        score: 'score',
      },
      sensitiveFields: ['title'],
    },
    chunkSizeRows: 100,
  });
  const file = path.join(dir, 'media.json');
  writeFileSync(
    file,
    JSON.stringify({ clip: definition('clip'), slowclip: definition('slowclip') }),
  );
  return file;
}

/** Fills the catalog's `clip` table with `rows` rows at sparse keys (id = 7 i). */
export async function seedClips(catalog: pg.Pool, rows: number): Promise<void> {
  await catalog.query(
    `CREATE TABLE IF NOT EXISTS clip (id bigint PRIMARY KEY, title text, provider varchar(40),
       license varchar(20) NOT NULL, url varchar(500) NOT NULL, score text)`,
  );
  await catalog.query(
    `INSERT INTO clip (id, title, provider, license, url, score)
     SELECT i * 7, 'clip ' || i, 'p' || (i % 13), CASE WHEN i % 10 = 0 THEN 'BY' ELSE 'by' END,
            'example.org/clip/' || i, (i % 100)::text
       FROM generate_series(1, $1::int) AS i`,
    [rows],
  );
}

/** Creates the view `slowclip` over `clip`: a chunk's copy query on it sleeps 60 s. */
export async function createSlowView(catalog: pg.Pool): Promise<void> {
  await catalog.query(
    `CREATE OR REPLACE VIEW slowclip AS
       SELECT c.* FROM clip c
        WHERE CASE WHEN current_setting('application_name') LIKE '%.index'
                   THEN (SELECT true FROM pg_sleep(60)) ELSE true END`,
  );
}

/**
 * Makes the catalog fail to read the `clip` row `id` whenever a chunk's copy reads it, on every
 * attempt, the way a damaged catalog page or a broken upstream view does: a retry cannot help
 * until someone repairs the catalog. (A row Elasticsearch refuses for its content no longer blocks
 * a run: it is rejected and counted.) `clip` becomes a view over its rows (moved to `clip_rows`),
 * still insertable; other readers (preflight's plan, the tests) read it as before.
 * Returns the repair.
 */
export async function breakCatalogRow(catalog: pg.Pool, id: number): Promise<() => Promise<void>> {
  await catalog.query(`CREATE TABLE IF NOT EXISTS clip_unreadable (id bigint PRIMARY KEY)`);
  await catalog.query(`INSERT INTO clip_unreadable VALUES ($1) ON CONFLICT DO NOTHING`, [id]);
  const { rows } = await catalog.query<{ kind: string }>(
    `SELECT relkind::text AS kind FROM pg_class WHERE oid = 'clip'::regclass`,
  );
  if (rows[0]?.kind === 'r') {
    await catalog.query(`ALTER TABLE clip RENAME TO clip_rows`);
    await catalog.query(
      `CREATE FUNCTION clip_readable(k bigint) RETURNS boolean LANGUAGE plpgsql STABLE AS $$
       BEGIN
         IF current_setting('application_name') LIKE '%.index'
            AND EXISTS (SELECT 1 FROM clip_unreadable u WHERE u.id = k) THEN
           RAISE EXCEPTION 'could not read catalog row % of clip', k;
         END IF;
         RETURN true;
       END $$`,
    );
    await catalog.query(`CREATE VIEW clip AS SELECT * FROM clip_rows c WHERE clip_readable(c.id)`);
  }
  return async () => {
    await catalog.query(`DELETE FROM clip_unreadable WHERE id = $1`, [id]);
  };
}
