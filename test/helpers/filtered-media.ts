import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import {
  getMedia,
  loadMediaCatalog,
  refreshNames,
  repoRoot,
  type Config,
  type FilteredMode,
  type MediaCatalog,
  type RefreshNames,
} from '@freshet/core';
import type pg from 'pg';
import { oracleSensitiveExpression } from './sql-oracle.js';

const shippedMedia = path.join(repoRoot, 'packages/core/media');

/**
 * Writes a media definitions file holding the shipped `image` definition (its mapping, cleaning
 * and document fields) under each name of `entries`, with that entry's `filtered` mode. Every
 * entry reads the same upstream `image` table; an entry other than `image` gets its own API
 * table (its name), so two modes can be refreshed from the same rows side by side.
 * Returns the path of the definitions file.
 */
export function writeImageMedia(entries: Record<string, FilteredMode>): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'freshet-filtered-'));
  process.once('exit', () => rmSync(dir, { recursive: true, force: true }));
  cpSync(path.join(shippedMedia, 'mappings'), path.join(dir, 'mappings'), { recursive: true });
  const shipped = JSON.parse(readFileSync(path.join(shippedMedia, 'media.json'), 'utf8')) as {
    image: Record<string, unknown>;
  };
  const definitions = Object.fromEntries(
    Object.entries(entries).map(([name, filtered]) => [
      name,
      { ...shipped.image, downstreamTable: name, filtered },
    ]),
  );
  const file = path.join(dir, 'media.json');
  writeFileSync(file, JSON.stringify(definitions));
  return file;
}

/** The media catalog of a definitions file and the names of `runId` of `media` in it. */
export function namesIn(
  config: Config,
  file: string,
  media: string,
  runId: string,
): { catalog: MediaCatalog; names: RefreshNames } {
  const catalog = loadMediaCatalog(file);
  const names = refreshNames(
    getMedia(catalog, media),
    'production',
    runId,
    config.ELASTICSEARCH_INDEX_PREFIX,
  );
  return { catalog, names };
}

/**
 * The keys of a promoted API table split by the rule that decides the filtered view, computed
 * in PostgreSQL with the SQL rule the rows were once marked by (`oracleSensitiveExpression`).
 */
export async function keysBySensitivity(
  api: pg.Pool,
  catalog: MediaCatalog,
  media: string,
  table: string,
  terms: readonly string[],
): Promise<{ all: string[]; clean: string[]; sensitive: string[] }> {
  const def = getMedia(catalog, media);
  const { rows } = await api.query<{ id: string; s: boolean }>(
    `SELECT t."${def.key.column}"::text AS id, ${oracleSensitiveExpression(def, terms)} AS s
       FROM "${table}" AS t ORDER BY 1`,
  );
  return {
    all: rows.map((r) => r.id),
    clean: rows.filter((r) => !r.s).map((r) => r.id),
    sensitive: rows.filter((r) => r.s).map((r) => r.id),
  };
}
