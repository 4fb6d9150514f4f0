import type pg from 'pg';
import { columnDefinitions, type MediaDefinition } from './media.js';
import { ident } from './sql.js';

/**
 * Creates a media type's upstream catalog table (shaped like Openverse's: key, unique url and
 * (foreign_identifier, provider)) and its deleted-identifiers table, if they do not exist.
 */
export async function ensureCatalogSchema(catalog: pg.Pool, def: MediaDefinition): Promise<void> {
  const table = ident(def.upstreamTable);
  const uniques = def.uniques.map((cols) => `UNIQUE (${cols.map((c) => ident(c)).join(', ')})`);
  await catalog.query(
    `CREATE TABLE IF NOT EXISTS ${table} (
  ${columnDefinitions(def)},
  PRIMARY KEY (${ident(def.key.column)})${uniques.map((u) => `,\n  ${u}`).join('')}
)`,
  );
  if (def.deletedTable) {
    const keyType = def.columns.find((c) => c.name === def.key.column)?.type ?? def.key.type;
    await catalog.query(
      `CREATE TABLE IF NOT EXISTS ${ident(def.deletedTable)} (
  ${ident(def.key.column)} ${keyType} PRIMARY KEY,
  created_on timestamptz NOT NULL DEFAULT now(),
  updated_on timestamptz NOT NULL DEFAULT now()
)`,
    );
  }
}
