import { pipeline } from 'node:stream/promises';
import {
  columnDefinitions,
  ident,
  literal,
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
  readonly method: 'binary-copy' | 'postgres_fdw';
  /** Parallel streams (binary copy) or 1 (fdw). */
  readonly streams: number;
  /** Whether the target table had a btree on the key while loading (Freshet's temp table has none). */
  readonly keyIndex: boolean;
  readonly rows: number;
  readonly ms: number;
  readonly rowsPerSec: number;
}

const target = 'bench_copy_target';

/** The rows Freshet's copy step keeps: not removed, not in the deleted table (as in copy.ts). */
export function keptRowsPredicate(
  def: MediaDefinition,
  alias: string,
  deletedTable?: string,
): string {
  const key = ident(def.key.column);
  const parts: string[] = [];
  if (def.removedColumn) parts.push(`${alias}.${ident(def.removedColumn)} IS NOT TRUE`);
  if (def.deletedTable) {
    const deleted = deletedTable ?? ident(def.deletedTable);
    parts.push(`NOT EXISTS (SELECT 1 FROM ${deleted} d WHERE d.${key} = ${alias}.${key})`);
  }
  return parts.length > 0 ? parts.join(' AND ') : 'TRUE';
}

async function freshTarget(api: pg.Pool, def: MediaDefinition, keyIndex = false): Promise<void> {
  await api.query(`DROP TABLE IF EXISTS ${target}`);
  // The same shape as Freshet's temp table (preflight): plain columns, no indexes.
  await api.query(`CREATE TABLE ${target} (\n  ${columnDefinitions(def)}\n)`);
  if (keyIndex) await api.query(`CREATE INDEX ON ${target} (${ident(def.key.column)})`);
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
export async function binaryCopy(
  world: World,
  streams: number,
  keyIndex = false,
): Promise<CopyRun> {
  await freshTarget(world.dbs.api, world.def, keyIndex);
  const ranges = streams === 1 ? [{ start: null, end: null }] : planUuidChunks(streams);
  const { value: counts, ms } = await timed(() =>
    Promise.all(ranges.map((range) => copyRange(world, range))),
  );
  const rows = counts.reduce((a, b) => a + b, 0);
  await world.dbs.api.query(`DROP TABLE IF EXISTS ${target}`);
  return { method: 'binary-copy', streams, keyIndex, rows, ms, rowsPerSec: perSecond(rows, ms) };
}

/**
 * The copy Openverse's data refresh uses: `INSERT INTO temp SELECT ... FROM` a postgres_fdw
 * foreign table of the upstream catalog (server, user mapping and foreign tables created here,
 * in the scratch API database, with postgres_fdw's defaults).
 */
export async function fdwCopy(world: World): Promise<CopyRun> {
  const { def } = world;
  const api = world.dbs.api;
  const upstream = new URL(world.config.CATALOG_DATABASE_URL);
  const opts = [
    `host ${literal(upstream.hostname)}`,
    `port ${literal(upstream.port || '5432')}`,
    `dbname ${literal(upstream.pathname.slice(1))}`,
  ].join(', ');
  const user = [`user ${literal(decodeURIComponent(upstream.username || 'postgres'))}`];
  if (upstream.password) user.push(`password ${literal(decodeURIComponent(upstream.password))}`);
  const tables = [def.upstreamTable, ...(def.deletedTable ? [def.deletedTable] : [])];
  await api.query('CREATE EXTENSION IF NOT EXISTS postgres_fdw');
  await api.query(
    `CREATE SERVER bench_upstream FOREIGN DATA WRAPPER postgres_fdw OPTIONS (${opts})`,
  );
  await api.query(
    `CREATE USER MAPPING FOR CURRENT_USER SERVER bench_upstream OPTIONS (${user.join(', ')})`,
  );
  await api.query('CREATE SCHEMA bench_upstream');
  await api.query(
    `IMPORT FOREIGN SCHEMA public LIMIT TO (${tables.map((t) => ident(t)).join(', ')}) FROM SERVER bench_upstream INTO bench_upstream`,
  );
  try {
    await freshTarget(api, def);
    const cols = def.columns.map((c) => ident(c.name)).join(', ');
    const selectCols = def.columns.map((c) => `u.${ident(c.name)}`).join(', ');
    const deleted = def.deletedTable ? `bench_upstream.${ident(def.deletedTable)}` : undefined;
    const sql = `INSERT INTO ${target} (${cols}) SELECT ${selectCols} FROM bench_upstream.${ident(def.upstreamTable)} u WHERE ${keptRowsPredicate(def, 'u', deleted)}`;
    const { value: result, ms } = await timed(() => api.query(sql));
    const rows = result.rowCount ?? 0;
    return {
      method: 'postgres_fdw',
      streams: 1,
      keyIndex: false,
      rows,
      ms,
      rowsPerSec: perSecond(rows, ms),
    };
  } finally {
    await api.query(`DROP TABLE IF EXISTS ${target}`);
    await api.query('DROP SCHEMA IF EXISTS bench_upstream CASCADE');
    await api.query('DROP SERVER IF EXISTS bench_upstream CASCADE');
  }
}
