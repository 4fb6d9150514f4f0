import { createHash } from 'node:crypto';
import type { MediaDefinition } from '../media.js';
import type { RefreshNames } from '../names.js';
import { ident } from '../sql.js';
import type { JobContext } from './context.js';

/** One index of a refreshed table: the unique key first, then the media definition's. */
export interface TableIndex {
  readonly name: string;
  readonly columns: readonly string[];
  readonly unique: boolean;
}

/** Index names unique per run (PostgreSQL index names share one namespace per schema). */
function indexName(
  table: string,
  runId: string,
  columns: readonly string[],
  unique: boolean,
): string {
  const hash = createHash('sha1')
    .update(`${runId}:${columns.join(',')}`)
    .digest('hex')
    .slice(0, 10);
  return `${table.slice(0, 40)}_${hash}_${unique ? 'key' : 'idx'}`;
}

/**
 * The indexes the table built by `runId` has once promoted: the unique key index (the temp table
 * has it from the start: every chunk replaces its key range through it, and a doubled key fails
 * the chunk at once) and the definition's other indexes (built once all rows are in).
 */
export function tableIndexes(
  def: MediaDefinition,
  names: RefreshNames,
  runId: string,
): { key: TableIndex; others: TableIndex[] } {
  const index = (columns: readonly string[], unique: boolean): TableIndex => ({
    name: indexName(names.table, runId, columns, unique),
    columns,
    unique,
  });
  return {
    key: index([def.key.column], true),
    others: def.indexes.map((columns) => index(columns, false)),
  };
}

/** `CREATE [UNIQUE] INDEX IF NOT EXISTS` of `index` on `table`. */
export function createIndexSql(index: TableIndex, table: string): string {
  return `CREATE ${index.unique ? 'UNIQUE ' : ''}INDEX IF NOT EXISTS ${ident(index.name)}
            ON ${ident(table)} (${index.columns.map((c) => ident(c)).join(', ')})`;
}

/**
 * Builds every index of the temp table that is not there yet, `INDEX_BUILD_CONCURRENCY` at a
 * time (each on its own connection: PostgreSQL builds one index on one core), then analyzes the
 * table unless it was. Idempotent. Only the temp table is locked, which no query of the API reads.
 */
export async function buildTableIndexes(
  ctx: JobContext,
  def: MediaDefinition,
  names: RefreshNames,
  runId: string,
): Promise<void> {
  const { key, others } = tableIndexes(def, names, runId);
  const queue = [key, ...others];
  const build = async () => {
    for (let next = queue.shift(); next !== undefined; next = queue.shift()) {
      await ctx.scope.query(ctx.dbs.api, createIndexSql(next, names.tempTable));
      ctx.scope.reportProgress();
    }
  };
  const builders = Math.min(ctx.config.INDEX_BUILD_CONCURRENCY, queue.length);
  const results = await Promise.allSettled(Array.from({ length: builders }, build));
  for (const r of results) if (r.status === 'rejected') throw r.reason;
  const { rows } = await ctx.scope.query<{ analyzed: boolean }>(
    ctx.dbs.api,
    `SELECT last_analyze IS NOT NULL AS analyzed FROM pg_stat_user_tables WHERE relid = to_regclass($1)`,
    [names.tempTable],
  );
  if (rows[0]?.analyzed !== true)
    await ctx.scope.query(ctx.dbs.api, `ANALYZE ${ident(names.tempTable)}`);
}
