import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type pg from 'pg';
import { from as copyFrom } from 'pg-copy-streams';
import { ensureCatalogSchema } from '../catalog-schema.js';
import type { MediaDefinition } from '../media.js';
import { ident } from '../sql.js';
import { dropIndexesForLoad, type DroppedIndexes } from './deferred-indexes.js';
import { maxSeed } from './random.js';
import { createRowGenerator, type RowGenerator, type SyntheticRow } from './rows.js';
import type { SeedReport } from './types.js';

/** The seed used when none is given, so that two plain runs load the same rows. */
export const defaultSeed = 1;

/** Options of {@link seedSynthetic}. */
export interface SeedSyntheticOptions {
  /** How many rows to generate (a positive integer). */
  readonly rows: number;
  /** Unsigned 32-bit seed; default {@link defaultSeed}. Same seed, same rows. */
  readonly seed?: number;
  /**
   * Empty the upstream and deleted tables first (default true), so a re-run with the same seed
   * gives the same table. With false, rows are appended, numbered after the existing ones.
   */
  readonly truncate?: boolean;
  /** Share of non-removed rows whose key is also written to the deleted table; default 0.005. */
  readonly deletedFraction?: number;
}

/** Rows generated per chunk handed to the COPY stream (about 0.5 MB of text for images). */
const rowsPerChunk = 500;

/**
 * A readable stream of COPY text for rows `[start, start + count)`, generated lazily chunk by
 * chunk as the COPY stream asks for more, so memory stays flat whatever `count` is.
 */
function copyTextStream(
  generator: RowGenerator,
  start: number,
  count: number,
  onRow: (row: SyntheticRow) => void,
): Readable {
  let done = 0;
  return new Readable({
    read() {
      while (done < count) {
        const end = Math.min(count, done + rowsPerChunk);
        let chunk = '';
        for (; done < end; done++) {
          const row = generator.row(start + done);
          onRow(row);
          chunk += generator.line(row);
        }
        if (!this.push(chunk)) return;
      }
      this.push(null);
    },
  });
}

/** The first row index of an append: after the highest integer key, or after the row count. */
async function nextIndex(client: pg.PoolClient, def: MediaDefinition): Promise<number> {
  const table = ident(def.upstreamTable);
  const sql =
    def.key.type === 'uuid'
      ? `SELECT count(*)::bigint AS n FROM ${table}`
      : `SELECT coalesce(max(${ident(def.key.column)}), 0)::bigint AS n FROM ${table}`;
  const { rows } = await client.query<{ n: number | string }>(sql);
  return Number(rows[0]?.n ?? 0);
}

/**
 * Generates `rows` realistic, dirty catalog rows for `def` and loads them with one COPY
 * (streamed: nothing is held in memory but the keys bound for the deleted table).
 *
 * Generation follows the definition's columns (name heuristics first, then the column type), so
 * any media type can be seeded. The rows carry the dirt of the Openverse sample at similar rates
 * (see `syntheticRates`): links without a scheme, low-accuracy machine tags, malformed tags,
 * removed rows, upper-case licenses and NULLs; a share of non-removed keys also goes to the
 * deleted table. The load runs in one transaction: it fails as a whole or not at all.
 */
export async function seedSynthetic(
  catalog: pg.Pool,
  def: MediaDefinition,
  opts: SeedSyntheticOptions,
): Promise<SeedReport> {
  const { rows } = opts;
  const seed = opts.seed ?? defaultSeed;
  const truncate = opts.truncate ?? true;
  if (!Number.isSafeInteger(rows) || rows <= 0) {
    throw new Error(`rows must be a positive integer, got ${rows}`);
  }
  // Validates seed and deletedFraction before anything is written.
  const generator = createRowGenerator(def, { seed, deletedFraction: opts.deletedFraction });

  const started = performance.now();
  await ensureCatalogSchema(catalog, def);
  const table = ident(def.upstreamTable);
  const deletedTable = def.deletedTable ? ident(def.deletedTable) : undefined;
  let removed = 0;
  const deletedKeys: string[] = [];
  const client = await catalog.connect();
  try {
    await client.query('BEGIN');
    let start = 0;
    let dropped: DroppedIndexes | undefined;
    if (truncate) {
      await client.query(`TRUNCATE ${table}${deletedTable ? `, ${deletedTable}` : ''}`);
      dropped = await dropIndexesForLoad(client, def.upstreamTable);
    } else {
      // Two concurrent appends would number their rows from the same count.
      await client.query(`LOCK TABLE ${table} IN SHARE ROW EXCLUSIVE MODE`);
      start = await nextIndex(client, def);
    }
    if (start + rows > maxSeed) {
      throw new Error(`cannot number more than ${maxSeed} synthetic rows; table has ${start}`);
    }
    const columns = def.columns.map((c) => ident(c.name)).join(', ');
    // FREEZE (allowed right after TRUNCATE in the same transaction) spares the first reader
    // from setting hint bits on every page of a freshly loaded table.
    const copy = client.query(
      copyFrom(`COPY ${table} (${columns}) FROM STDIN${truncate ? ' (FREEZE)' : ''}`),
    );
    await pipeline(
      copyTextStream(generator, start, rows, (row) => {
        if (row.removed) removed++;
        if (row.deleted && deletedTable) deletedKeys.push(row.key);
      }),
      copy,
    );
    // A duplicate (which the generator is built never to make) fails here, and rolls back.
    await dropped?.restore();
    if (deletedTable && deletedKeys.length > 0) {
      const copyDeleted = client.query(
        copyFrom(`COPY ${deletedTable} (${ident(def.key.column)}) FROM STDIN`),
      );
      await pipeline(Readable.from([deletedKeys.join('\n') + '\n']), copyDeleted);
    }
    await client.query('COMMIT');
  } catch (err) {
    await client.query('ROLLBACK').catch(() => undefined);
    const code = (err as { code?: string }).code;
    if (!truncate && code === '23505') {
      throw new Error(
        `appending to ${def.upstreamTable} repeated existing rows (${(err as Error).message}); appended rows are numbered from the row count, which repeats rows after deletions: use another seed or reseed without append`,
        { cause: err },
      );
    }
    throw err;
  } finally {
    client.release();
  }
  // Fresh statistics, so the refresh's range queries get sensible plans at once.
  await catalog.query(`ANALYZE ${table}`);
  return {
    media: def.name,
    rows,
    removed,
    deleted: deletedKeys.length,
    ms: Math.round(performance.now() - started),
  };
}
