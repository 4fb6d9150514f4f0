import { createLogger, seedSynthetic } from '@freshet/core';
import { startWorker } from '@freshet/worker';
import pg from 'pg';
import { startRefresh } from '@freshet/control';
import { now } from './measure.js';
import type { World } from './world.js';

/** One kind of statement run per chunk by the whole worker (bookkeeping and data steps). */
export interface StatementPerChunk {
  readonly sql: string;
  readonly perChunk: number;
  readonly msPerChunk: number;
}

/** PostgreSQL round trips of an in-process worker over a run of empty chunks. */
export interface StatementProfile {
  readonly chunks: number;
  readonly statements: number;
  readonly statementsPerChunk: number;
  readonly msPerChunk: number;
  readonly top: readonly StatementPerChunk[];
}

/** A statement's shape: whitespace collapsed, literals and numbers blanked, cut to 80 chars. */
export function statementShape(sql: string): string {
  return sql
    .replace(/\s+/g, ' ')
    .replace(/'(?:[^']|'')*'/g, "'?'")
    .replace(/\b\d+(\.\d+)?\b/g, '?')
    .trim()
    .slice(0, 80);
}

type QueryFn = (...args: unknown[]) => unknown;

/**
 * Counts and times every statement any pg client of this process sends while `fn` runs, by
 * wrapping pg.Client.prototype.query (only in this benchmark process, only meanwhile).
 */
async function countStatements<T>(
  fn: () => Promise<T>,
): Promise<{ value: T; stats: Map<string, { calls: number; ms: number }> }> {
  const stats = new Map<string, { calls: number; ms: number }>();
  const proto = pg.Client.prototype as unknown as { query: QueryFn };
  const original = proto.query;
  proto.query = function (this: unknown, ...args: unknown[]) {
    const first = args[0] as { text?: string } | string | undefined;
    const text = statementShape(typeof first === 'string' ? first : (first?.text ?? '(other)'));
    const started = now();
    const result = original.apply(this, args);
    const record = () => {
      const entry = stats.get(text) ?? { calls: 0, ms: 0 };
      entry.calls++;
      entry.ms += now() - started;
      stats.set(text, entry);
    };
    if (result instanceof Promise) void result.then(record, record);
    else record();
    return result;
  };
  try {
    return { value: await fn(), stats };
  } finally {
    proto.query = original;
  }
}

/**
 * Runs a refresh of `chunks` chunks whose rows are all removed (no chunk moves a row) with one
 * worker started in this process, and counts every PostgreSQL statement it sends, whichever jobs
 * and steps send them: what each chunk costs in round trips before any data moves.
 */
export async function profileStatements(world: World, chunks: number): Promise<StatementProfile> {
  const { def } = world;
  await seedSynthetic(world.dbs.catalog, def, { rows: chunks });
  await world.dbs.catalog.query(
    `UPDATE ${def.upstreamTable} SET ${def.removedColumn ?? 'removed_from_source'} = true`,
  );
  await world.dbs.catalog.query(`VACUUM ANALYZE ${def.upstreamTable}`);
  const { stats } = await countStatements(async () => {
    const app = await startWorker(world.config, createLogger({ LOG_LEVEL: 'warn' }));
    try {
      const runId = await startRefresh(
        { config: world.config, api: world.dbs.api, media: world.media, queues: world.queues },
        { media: def.name, chunkSizeRows: 1, requestedBy: 'bench' },
      );
      for (;;) {
        const run = await world.store.getRun(runId);
        if (run.status === 'succeeded') break;
        if (['failed', 'blocked', 'cancelled'].includes(run.status)) {
          throw new Error(`run ${runId} ${run.status}: ${run.error ?? ''}`);
        }
        await new Promise((r) => setTimeout(r, 200));
      }
    } finally {
      await app.close();
    }
  });
  // The benchmark's own polling of the run is not the worker's work.
  stats.delete(statementShape('SELECT * FROM freshet.runs WHERE id = $1'));
  let statements = 0;
  let ms = 0;
  for (const s of stats.values()) {
    statements += s.calls;
    ms += s.ms;
  }
  return {
    chunks,
    statements,
    statementsPerChunk: statements / chunks,
    msPerChunk: ms / chunks,
    top: [...stats]
      .map(([sql, s]) => ({ sql, perChunk: s.calls / chunks, msPerChunk: s.ms / chunks }))
      .sort((a, b) => b.perChunk - a.perChunk)
      .slice(0, 30),
  };
}
