import { createReadStream } from 'node:fs';
import { open, stat } from 'node:fs/promises';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import type pg from 'pg';
import { from as copyFrom } from 'pg-copy-streams';
import { ensureCatalogSchema } from '../catalog-schema.js';
import { UserError } from '../errors.js';
import type { MediaCatalog, MediaDefinition } from '../media.js';
import { ident } from '../sql.js';
import type { SeedReport } from './types.js';

/**
 * Sample CSV of each media type, relative to the sample directory (FRESHET_SAMPLE_DIR, default
 * `packages/core/sample`, shipped with the repository; its MANIFEST.md names the source commits
 * and licence). The paths mirror the Openverse repository's, so a full copy of the Openverse
 * sample set works as the directory too.
 */
export const sampleFiles: Readonly<Record<string, string>> = Object.freeze({
  image: 'openverse-api/sample_data/sample_images_to_clean.csv',
  audio: 'openverse-api/sample_data/sample_audio_data.csv',
});

/** Every `deletedEvery`-th non-removed row (by key order, starting with the first) is marked deleted. */
export const deletedEvery = 100;

/** Options of {@link seedSample}. */
export interface SeedSampleOptions {
  /**
   * Empty the upstream and deleted tables first (default true), so re-running gives the same
   * counts. With false the sample is added to what is there (and fails on duplicate rows).
   */
  readonly truncate?: boolean;
}

/** The column names in the CSV's header line (plain names: the sample quotes none). */
async function readHeader(file: string): Promise<string[]> {
  const handle = await open(file, 'r');
  try {
    const buffer = Buffer.alloc(64 * 1024);
    const { bytesRead } = await handle.read(buffer, 0, buffer.length, 0);
    const text = buffer.subarray(0, bytesRead).toString('utf8');
    const end = text.indexOf('\n');
    if (end < 0) throw new Error(`sample file ${file} has no header line`);
    return text
      .slice(0, end)
      .replace(/\r$/, '')
      .split(',')
      .map((c) => c.trim());
  } finally {
    await handle.close();
  }
}

async function checkReadable(file: string, what: string): Promise<void> {
  try {
    await stat(file);
  } catch (err) {
    throw new UserError(
      `${what} not found: ${file}; set FRESHET_SAMPLE_DIR to a folder holding ${Object.values(sampleFiles).join(' and ')} (default: the repository's packages/core/sample)`,
      1,
      { cause: err },
    );
  }
}

/** Loads one media type's CSV; returns its report. */
async function loadSample(
  catalog: pg.Pool,
  def: MediaDefinition,
  file: string,
  truncate: boolean,
): Promise<SeedReport> {
  const started = performance.now();
  const header = await readHeader(file);
  const known = new Set(def.columns.map((c) => c.name));
  const unknown = header.filter((c) => !known.has(c));
  if (unknown.length > 0) {
    throw new Error(
      `sample file ${file} has columns that media type ${def.name} does not define: ${unknown.join(', ')}`,
    );
  }
  await ensureCatalogSchema(catalog, def);
  const table = ident(def.upstreamTable);
  const key = ident(def.key.column);
  const deletedTable = def.deletedTable ? ident(def.deletedTable) : undefined;
  const notRemoved = def.removedColumn ? `WHERE NOT ${ident(def.removedColumn)}` : '';
  const client = await catalog.connect();
  let rows: number;
  try {
    await client.query('BEGIN');
    // The audio sample's timestamps carry no zone: read them as UTC whatever the server says.
    await client.query(`SET LOCAL TIME ZONE 'UTC'`);
    if (truncate) {
      await client.query(`TRUNCATE ${table}${deletedTable ? `, ${deletedTable}` : ''}`);
    }
    const columns = header.map((c) => ident(c)).join(', ');
    const copy = client.query(
      copyFrom(`COPY ${table} (${columns}) FROM STDIN (FORMAT csv, HEADER true)`),
    );
    await pipeline(createReadStream(file), copy);
    rows = copy.rowCount;
    if (deletedTable) {
      // A deterministic handful of live rows, so a refresh has deleted identifiers to skip.
      await client.query(
        `INSERT INTO ${deletedTable} (${key})
         SELECT ${key} FROM (
           SELECT ${key}, row_number() OVER (ORDER BY ${key}) AS n FROM ${table} ${notRemoved}
         ) AS live
         WHERE (n - 1) % ${deletedEvery} = 0
         ON CONFLICT DO NOTHING`,
      );
    }
    await client.query('COMMIT');
  } catch (err) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw new Error(`loading ${file} into ${def.upstreamTable} failed: ${(err as Error).message}`, {
      cause: err,
    });
  } finally {
    client.release();
  }
  await catalog.query(`ANALYZE ${table}`);
  const removedSql = def.removedColumn
    ? `SELECT count(*)::bigint AS n FROM ${table} WHERE ${ident(def.removedColumn)}`
    : 'SELECT 0::bigint AS n';
  const removed = await catalog.query<{ n: number }>(removedSql);
  const deleted = deletedTable
    ? await catalog.query<{ n: number }>(`SELECT count(*)::bigint AS n FROM ${deletedTable}`)
    : undefined;
  return {
    media: def.name,
    rows,
    removed: Number(removed.rows[0]?.n ?? 0),
    deleted: Number(deleted?.rows[0]?.n ?? 0),
    ms: Math.round(performance.now() - started),
  };
}

/**
 * Loads the real Openverse sample rows (see {@link sampleFiles}) of every media type in `media`
 * that has a sample, each with one streamed `COPY ... (FORMAT csv, HEADER true)` in its own
 * transaction, and marks every 100th live row (by key) as deleted. Creates the catalog schema
 * first. The report's `removed` and `deleted` count the whole tables after the load (with the
 * default truncate, exactly the sample's).
 *
 * Throws a {@link UserError} naming the directory or file when the sample is missing.
 */
export async function seedSample(
  catalog: pg.Pool,
  media: MediaCatalog,
  sampleDir: string,
  opts: SeedSampleOptions = {},
): Promise<SeedReport[]> {
  const targets = [...media.values()].filter((def) => def.name in sampleFiles);
  if (targets.length === 0) {
    throw new UserError(
      `no sample rows for media types ${[...media.keys()].join(', ')}; samples exist for ${Object.keys(sampleFiles).join(', ')}`,
    );
  }
  await checkReadable(sampleDir, 'sample directory');
  const files = targets.map((def) => path.join(sampleDir, sampleFiles[def.name] as string));
  for (const file of files) await checkReadable(file, 'sample file');
  const reports: SeedReport[] = [];
  for (const [i, def] of targets.entries()) {
    reports.push(await loadSample(catalog, def, files[i] as string, opts.truncate ?? true));
  }
  return reports;
}
