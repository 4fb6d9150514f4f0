import { createHash } from 'node:crypto';
import { getMedia } from '../media.js';
import { refreshNames, type RefreshNames } from '../names.js';
import type { RunJobData } from '../queues.js';
import { ident } from '../sql.js';
import type { JobContext } from './context.js';
import { buildIndexName } from './preflight.js';

export interface PromoteResult {
  /** Indices that served the aliases before (kept for rollback). */
  readonly previous: string[];
  /** Older indices deleted. */
  readonly deleted: string[];
  readonly tableSwapped: boolean;
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

async function tableComment(ctx: JobContext, table: string): Promise<string | null> {
  const { rows } = await ctx.scope.query<{ c: string | null }>(
    ctx.dbs.api,
    'SELECT obj_description(to_regclass($1), $2) AS c',
    [table, 'pg_class'],
  );
  return rows[0]?.c ?? null;
}

/** Indices currently holding `alias`. */
async function aliasHolders(ctx: JobContext, alias: string): Promise<string[]> {
  const exists = await ctx.es.indices.existsAlias({ name: alias });
  if (!exists) return [];
  return Object.keys(await ctx.es.indices.getAlias({ name: alias }));
}

/**
 * Moves both aliases to the new indices in ONE `_aliases` request, so search never sees the main
 * and filtered aliases on different builds.
 */
async function swapAliases(ctx: JobContext, names: RefreshNames): Promise<string[]> {
  const pairs: [string, string][] = [
    [names.alias, names.index],
    [names.filteredAlias, names.filteredIndex],
  ];
  const actions: Record<string, { index: string; alias: string }>[] = [];
  const previous: string[] = [];
  for (const [alias, index] of pairs) {
    const holders = await aliasHolders(ctx, alias);
    for (const holder of holders) {
      if (holder === index) continue;
      actions.push({ remove: { index: holder, alias } });
      previous.push(holder);
    }
    if (!holders.includes(index)) actions.push({ add: { index, alias } });
  }
  if (actions.length > 0) await ctx.es.indices.updateAliases({ actions });
  return previous;
}

/**
 * Promotion: builds the temp table's indexes (idempotently), swaps it with the live table in one
 * transaction, moves both aliases at once, keeps the previous indices for rollback and deletes
 * older ones. A retry after a partial promotion picks up where it stopped.
 */
export async function runPromote(ctx: JobContext, data: RunJobData): Promise<PromoteResult> {
  const def = getMedia(ctx.media, data.media);
  const names = refreshNames(def, data.profile, data.runId, ctx.config.ELASTICSEARCH_INDEX_PREFIX);
  const marker = `freshet run ${data.runId}`;
  const temp = ident(names.tempTable);

  let tableSwapped = false;
  if ((await tableComment(ctx, names.tempTable)) === marker) {
    const key = def.key.column;
    const wanted: { columns: string[]; unique: boolean }[] = [
      { columns: [key], unique: true },
      ...def.indexes.map((columns) => ({ columns, unique: false })),
    ];
    for (const { columns, unique } of wanted) {
      await ctx.scope.query(
        ctx.dbs.api,
        `CREATE ${unique ? 'UNIQUE ' : ''}INDEX IF NOT EXISTS ${ident(indexName(names.table, data.runId, columns, unique))}
           ON ${temp} (${columns.map((c) => ident(c)).join(', ')})`,
      );
    }
    await ctx.scope.query(
      ctx.dbs.api,
      `DROP INDEX IF EXISTS ${ident(buildIndexName(names.tempTable))}`,
    );
    await ctx.scope.query(ctx.dbs.api, `ANALYZE ${temp}`);
    const client = await ctx.scope.connect(ctx.dbs.api);
    try {
      await client.query('BEGIN');
      await client.query(`DROP TABLE IF EXISTS ${ident(names.oldTable)}`);
      await client.query(
        `ALTER TABLE IF EXISTS ${ident(names.table)} RENAME TO ${ident(names.oldTable)}`,
      );
      await client.query(`ALTER TABLE ${temp} RENAME TO ${ident(names.table)}`);
      await client.query(`DROP TABLE IF EXISTS ${ident(names.oldTable)}`);
      await ctx.scope.assertOwned();
      await client.query('COMMIT');
      tableSwapped = true;
    } catch (err) {
      await client.query('ROLLBACK').catch(() => undefined);
      throw err;
    } finally {
      ctx.scope.release(client);
    }
  } else if ((await tableComment(ctx, names.table)) !== marker) {
    throw new Error(
      `neither ${names.tempTable} nor ${names.table} belongs to run ${data.runId}; nothing to promote`,
    );
  }

  const previous = await swapAliases(ctx, names);

  // Keep the new build and the one it replaced; delete older builds of this media/profile.
  const keep = new Set([names.index, names.filteredIndex, ...previous]);
  const stored = (await ctx.store.getRun(data.runId)).counts as {
    previousIndices?: string[];
  } | null;
  for (const p of stored?.previousIndices ?? []) keep.add(p);
  if (previous.length > 0) await ctx.store.mergeCounts(data.runId, { previousIndices: previous });
  const all = await ctx.es.cat.indices({ index: `${names.alias}-*`, format: 'json', h: 'index' });
  const deleted = all
    .map((i) => i.index ?? '')
    .filter((i) => names.indexPattern.test(i) && !keep.has(i));
  if (deleted.length > 0) await ctx.es.indices.delete({ index: deleted.join(',') });
  return {
    previous: [...keep].filter((i) => i !== names.index && i !== names.filteredIndex),
    deleted,
    tableSwapped,
  };
}
