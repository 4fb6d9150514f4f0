import { pipeline } from 'node:stream/promises';
import { from as copyFrom, to as copyTo } from 'pg-copy-streams';
import { rangePredicate } from '../chunks.js';
import { getMedia } from '../media.js';
import { refreshNames } from '../names.js';
import type { ChunkJobData } from '../queues.js';
import { ident, literal } from '../sql.js';
import type { JobContext } from './context.js';

export interface CopyResult {
  /** Rows written to the temp table. */
  readonly rows: number;
  /** Upstream rows in the range that were skipped, by reason. */
  readonly skipped: { removed: number; deleted: number };
  /** Upstream rows that cannot be refreshed, by reason (rows without a key). */
  readonly rejected: Record<string, { count: number; sample: string[] }>;
  readonly ms: number;
}

/**
 * Copies one key range from the upstream catalog table into the temp table, streaming a binary
 * COPY from one database into the other. The range is replaced in one transaction: a retried
 * chunk deletes what an earlier attempt wrote, so rows are never doubled.
 */
export async function copyChunk(ctx: JobContext, data: ChunkJobData): Promise<CopyResult> {
  const started = Date.now();
  const def = getMedia(ctx.media, data.media);
  const names = refreshNames(def, data.profile, data.runId, ctx.config.ELASTICSEARCH_INDEX_PREFIX);
  const key = ident(def.key.column);
  const cols = def.columns.map((c) => ident(c.name)).join(', ');
  const inRange = rangePredicate(def.key.type, `u.${key}`, data.range);
  const notRemoved = def.removedColumn ? `u.${ident(def.removedColumn)} IS NOT TRUE` : 'TRUE';
  const notDeleted = def.deletedTable
    ? `NOT EXISTS (SELECT 1 FROM ${ident(def.deletedTable)} d WHERE d.${key} = u.${key})`
    : 'TRUE';
  const isDeleted = def.deletedTable
    ? `EXISTS (SELECT 1 FROM ${ident(def.deletedTable)} d WHERE d.${key} = u.${key})`
    : 'FALSE';
  const selectCols = def.columns.map((c) => `u.${ident(c.name)}`).join(', ');

  // One snapshot for the copy and the skipped counts, so they add up.
  const source = await ctx.scope.connect(
    ctx.dbs.catalog,
    'BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY',
  );
  // Two attempts of one chunk (a stalled job re-run while the first still writes) take turns:
  // the second waits for the lock, then deletes what the first committed, so rows are never
  // doubled. The range starts afresh, and so do the clean's counts for it (see cleanChunk) and
  // the rows the index rejected (see removeRefusedRows).
  // Sent with the connection's tag in one round trip.
  const target = await ctx.scope
    .connect(
      ctx.dbs.api,
      `BEGIN;
       SELECT pg_advisory_xact_lock(hashtext(${literal(`${data.runId}.c${data.chunk}`)}));
       DELETE FROM ${ident(names.tempTable)} AS u WHERE ${inRange};
       UPDATE freshet.chunks SET result = result - 'clean' - 'refused'
        WHERE run_id = ${literal(data.runId)} AND chunk = ${Number(data.chunk)}`,
    )
    .catch(async (err: unknown) => {
      await source.query('ROLLBACK').catch(() => undefined);
      ctx.scope.release(source);
      throw err;
    });
  try {
    const ingest = target.query(
      copyFrom(`COPY ${ident(names.tempTable)} (${cols}) FROM STDIN (FORMAT binary)`),
    );
    const out = source.query(
      copyTo(
        `COPY (SELECT ${selectCols} FROM ${ident(def.upstreamTable)} u WHERE ${inRange} AND ${notRemoved} AND ${notDeleted}) TO STDOUT (FORMAT binary)`,
      ),
    );
    out.on('data', () => ctx.scope.reportProgress());
    await pipeline(out, ingest);
    const { rows } = await source.query<{ removed: number; deleted: number }>(
      `SELECT count(*) FILTER (WHERE NOT (${notRemoved}))::bigint AS removed,
              count(*) FILTER (WHERE (${notRemoved}) AND ${isDeleted})::bigint AS deleted
         FROM ${ident(def.upstreamTable)} u WHERE ${inRange}`,
    );
    // A row without a key lies in no range, so no chunk would copy or count it: the first chunk
    // (open below) counts them all, rejected, so none is silently dropped.
    const nullKeys =
      data.range.start === null
        ? Number(
            (
              await source.query<{ n: number }>(
                `SELECT count(*)::bigint AS n FROM ${ident(def.upstreamTable)} u WHERE u.${key} IS NULL`,
              )
            ).rows[0]?.n ?? 0,
          )
        : 0;
    await ctx.scope.assertOwned();
    await target.query('COMMIT');
    await source.query('COMMIT');
    return {
      rows: Number(ingest.rowCount ?? 0),
      skipped: { removed: Number(rows[0]?.removed ?? 0), deleted: Number(rows[0]?.deleted ?? 0) },
      rejected: nullKeys > 0 ? { 'null-key': { count: nullKeys, sample: [] } } : {},
      ms: Date.now() - started,
    };
  } catch (err) {
    await target.query('ROLLBACK').catch(() => undefined);
    await source.query('ROLLBACK').catch(() => undefined);
    throw err;
  } finally {
    ctx.scope.release(source);
    ctx.scope.release(target);
  }
}
