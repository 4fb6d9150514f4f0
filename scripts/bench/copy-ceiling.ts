import { pipeline } from 'node:stream/promises';
import {
  columnDefinitions,
  ident,
  planUuidChunks,
  rangePredicate,
  type KeyRange,
  type MediaDefinition,
} from '@freshet/core';
import pg from 'pg';
import { from as copyFrom, to as copyTo } from 'pg-copy-streams';
import { perSecond, timed } from './measure.js';
import type { World } from './world.js';

/** One timed copy of the whole table into the API database. */
export interface CopyRun {
  /** Parallel streams, each one key range of the table. */
  readonly streams: number;
  readonly rows: number;
  readonly ms: number;
  readonly rowsPerSec: number;
}

const target = 'bench_copy_target';

/**
 * The upstream rows a refresh keeps: not removed from their source, not in the deleted table (the
 * same rows Freshet refreshes, before cleaning rejects any).
 */
export function keptRowsPredicate(def: MediaDefinition, alias: string): string {
  const key = ident(def.key.column);
  const parts: string[] = [];
  if (def.removedColumn) parts.push(`${alias}.${ident(def.removedColumn)} IS NOT TRUE`);
  if (def.deletedTable) {
    const deleted = ident(def.deletedTable);
    parts.push(`NOT EXISTS (SELECT 1 FROM ${deleted} d WHERE d.${key} = ${alias}.${key})`);
  }
  return parts.length > 0 ? parts.join(' AND ') : 'TRUE';
}

async function freshTarget(api: pg.Pool, def: MediaDefinition): Promise<void> {
  await api.query(`DROP TABLE IF EXISTS ${target}`);
  // The media type's columns, no indexes: the least a load into the API database can do.
  await api.query(`CREATE TABLE ${target} (\n  ${columnDefinitions(def)}\n)`);
}

async function copyRange(world: World, range: KeyRange): Promise<number> {
  const { def } = world;
  const cols = def.columns.map((c) => ident(c.name)).join(', ');
  const selectCols = def.columns.map((c) => `u.${ident(c.name)}`).join(', ');
  const where = `${rangePredicate(def.key.type, `u.${ident(def.key.column)}`, range)} AND ${keptRowsPredicate(def, 'u')}`;
  const source = new pg.Client({ connectionString: world.config.CATALOG_DATABASE_URL });
  const sink = new pg.Client({ connectionString: world.config.API_DATABASE_URL });
  await Promise.all([source.connect(), sink.connect()]);
  try {
    const ingest = sink.query(copyFrom(`COPY ${target} (${cols}) FROM STDIN (FORMAT binary)`));
    const out = source.query(
      copyTo(
        `COPY (SELECT ${selectCols} FROM ${ident(def.upstreamTable)} u WHERE ${where}) TO STDOUT (FORMAT binary)`,
      ),
    );
    await pipeline(out, ingest);
    return Number(ingest.rowCount ?? 0);
  } finally {
    await Promise.all([source.end(), sink.end()]);
  }
}

/**
 * The copy ceiling: `COPY (SELECT ...) TO STDOUT (FORMAT binary)` from the catalog piped straight
 * into `COPY ... FROM STDIN (FORMAT binary)` in the API database, the whole table in `streams`
 * parallel key ranges, each one statement (no chunking, no bookkeeping).
 */
export async function binaryCopy(world: World, streams: number): Promise<CopyRun> {
  await freshTarget(world.dbs.api, world.def);
  const ranges = streams === 1 ? [{ start: null, end: null }] : planUuidChunks(streams);
  const { value: counts, ms } = await timed(() =>
    Promise.all(ranges.map((range) => copyRange(world, range))),
  );
  const rows = counts.reduce((a, b) => a + b, 0);
  await world.dbs.api.query(`DROP TABLE IF EXISTS ${target}`);
  return { streams, rows, ms, rowsPerSec: perSecond(rows, ms) };
}
