import { to as copyTo } from 'pg-copy-streams';
import { rangePredicate } from '../chunks.js';
import { getMedia } from '../media.js';
import { refreshNames } from '../names.js';
import type { ChunkJobData } from '../queues.js';
import { ident, literal } from '../sql.js';
import type { JobContext } from './context.js';
import {
  BufferPool,
  BulkBody,
  sendBulk,
  Slots,
  type BulkFailure,
  type BulkRefusal,
} from './bulk.js';
import { BinaryCopyParser } from './copy-binary.js';
import { removeRefusedRows, type RejectedRows } from './remove-refused-rows.js';
import { documentExpression, sensitiveExpression } from './sql.js';

export interface IndexResult {
  /** Documents written to the main index (== rows left in the range). */
  readonly rows: number;
  /**
   * Documents without sensitive terms: also written to the filtered index (`index` mode), or the
   * ones the filtered alias shows (`alias` mode).
   */
  readonly filtered: number;
  /**
   * Rows whose document Elasticsearch refused for its content, removed from the range, by
   * reason (`es-refused:<type>`): the chunk's totals over every attempt that committed, when this
   * attempt met refusals (the chunk keeps them in `result.refused` either way).
   */
  readonly rejected?: RejectedRows;
  readonly ms: number;
}

/**
 * A bulk item refused for another reason than its content, or a request failure: the chunk fails
 * and is retried; nothing is dropped silently.
 */
export class BulkIndexError extends Error {
  override readonly name = 'BulkIndexError';
  constructor(
    readonly failed: number,
    readonly samples: readonly BulkFailure[],
  ) {
    super(
      `${failed} document(s) were rejected by Elasticsearch, e.g. ${samples
        .slice(0, 3)
        .map((s) => `${s.id} -> ${s.index}: ${s.status} ${JSON.stringify(s.error)}`)
        .join('; ')}`,
    );
  }
}

/** The bulk action line indexing the row `t` into `index` with `_id` = its key, as SQL text. */
function actionLine(index: string, key: string): string {
  const start = `{"index":{"_index":${JSON.stringify(index)},"_id":`;
  return `${literal(start)} || to_json(t.${key}::text)::text || '}}' || E'\\n'`;
}

/**
 * Indexes one key range. PostgreSQL builds each row's bulk operations (action line and JSON
 * document, its `sensitive` field last: one for the new index, and in `index` mode one for the
 * filtered index when the row has no sensitive terms) and streams them with a binary COPY; their
 * bytes go into bulk request bodies as they are, never decoded or re-serialized here. `_id` = the
 * row key, so a retried chunk overwrites rather than doubles. Requests of all index jobs of the
 * process share INDEX_BULK_CONCURRENCY slots.
 */
export async function indexChunk(ctx: JobContext, data: ChunkJobData): Promise<IndexResult> {
  const signal = ctx.scope.signal;
  const started = Date.now();
  const def = getMedia(ctx.media, data.media);
  const names = refreshNames(def, data.profile, data.runId, ctx.config.ELASTICSEARCH_INDEX_PREFIX);
  const key = ident(def.key.column);
  // One row: the action line for the new index; NULL when the row has sensitive terms, else the
  // action line for the filtered index (`index` mode) or '' (`alias` mode: only counted); and
  // the document line, sent once and copied into both operations. OFFSET 0 keeps the planner from
  // inlining the sensitive test into both places that use it: it runs once per row.
  const filteredAction = names.filteredIndex === null ? `''` : actionLine(names.filteredIndex, key);
  const sql = `COPY (SELECT ${actionLine(names.index, key)},
        CASE WHEN NOT s.sensitive THEN ${filteredAction} END,
        ${documentExpression(def, 's.sensitive')} || E'\\n'
      FROM ${ident(names.tempTable)} AS t
        CROSS JOIN LATERAL (SELECT ${sensitiveExpression(def, ctx.sensitiveTerms)} AS sensitive OFFSET 0) AS s
      WHERE ${rangePredicate(def.key.type, `t.${key}`, data.range)}) TO STDOUT (FORMAT binary)`;

  const slots = ctx.bulkSlots ?? new Slots(ctx.config.INDEX_BULK_CONCURRENCY);
  const pool = ctx.bulkBuffers ?? new BufferPool(slots.size + 1);
  const flushBytes = ctx.config.INDEX_BULK_FLUSH_BYTES;
  const twice = names.filteredIndex !== null;
  let rows = 0;
  let filtered = 0;
  let ops = 0;
  let succeeded = 0;
  let failed = 0;
  const samples: BulkFailure[] = [];
  const refused: BulkRefusal[] = [];
  const inFlight = new Set<Promise<void>>();
  let sendError: Error | undefined;
  // Requests run while the next body is read; a failed one stops the reading.
  const send = async (batch: BulkBody) => {
    ops += batch.count;
    const release = await slots.acquire(signal);
    const request = sendBulk(ctx.es, batch, signal)
      .then((outcome) => {
        ctx.scope.reportProgress();
        succeeded += outcome.succeeded;
        failed += outcome.failed;
        for (const s of outcome.samples) if (samples.length < 10) samples.push(s);
        refused.push(...outcome.refused);
      })
      .catch((err: unknown) => {
        sendError ??= err instanceof Error ? err : new Error(`bulk request failed: ${String(err)}`);
      })
      .finally(() => {
        batch.dispose();
        release();
        inFlight.delete(request);
      });
    inFlight.add(request);
  };

  const client = await ctx.scope.connect(ctx.dbs.api);
  let streamed = false;
  try {
    const stream = client.query(copyTo(sql));
    const parser = new BinaryCopyParser();
    // Some room above the flush size, so one more row rarely makes the body grow.
    const capacity = flushBytes + (flushBytes >> 3);
    let batch = new BulkBody(capacity, pool);
    let bad = false;
    const onRow = (buf: Buffer, f: Int32Array) => {
      const [
        mainStart = -1,
        mainEnd = -1,
        copyStart = -1,
        copyEnd = -1,
        docStart = -1,
        docEnd = -1,
      ] = f;
      if (mainStart < 0 || docStart < 0) {
        bad = true;
        return;
      }
      rows++;
      batch.add(buf, mainStart, mainEnd, docStart, docEnd);
      if (copyStart >= 0) {
        filtered++;
        if (twice) batch.add(buf, copyStart, copyEnd, docStart, docEnd);
      }
    };
    try {
      for await (const chunk of stream as AsyncIterable<Buffer>) {
        parser.push(chunk, onRow);
        if (bad) throw new Error('index: a row without its bulk operation');
        if (batch.bytes >= flushBytes) {
          await send(batch);
          batch = new BulkBody(capacity, pool);
        }
        if (sendError !== undefined) break;
      }
      if (sendError === undefined) {
        parser.end();
        streamed = true;
        if (batch.count > 0) await send(batch);
        else batch.dispose();
      }
    } finally {
      // Stopping early (a failed request, an abort, a bad row) leaves the COPY running: the
      // connection is discarded on release rather than reused mid-COPY.
      if (!streamed) stream.destroy();
    }
  } finally {
    await Promise.all([...inFlight]);
    ctx.scope.release(client, !streamed);
  }
  if (signal.aborted) throw signal.reason instanceof Error ? signal.reason : new Error('aborted');
  if (sendError !== undefined) throw sendError;
  if (failed > 0) throw new BulkIndexError(failed, samples);
  if (succeeded + refused.length !== ops) {
    throw new Error(
      `bulk indexing acknowledged ${succeeded} and refused ${refused.length} of ${ops} documents; the chunk is retried`,
    );
  }
  if (refused.length === 0) return { rows, filtered, ms: Date.now() - started };
  // Documents refused for their content would be refused again by any retry: their rows are
  // rejected (removed from the table and the new indices, counted), and the chunk is done.
  const removed = await removeRefusedRows(ctx, data, def, names, refused, slots);
  let kept = filtered - removed.filtered;
  if (removed.concurrent) {
    // Another attempt removed some of them: count what the range holds now.
    const { rows: left } = await ctx.scope.query<{ n: number }>(
      ctx.dbs.api,
      `SELECT count(*)::bigint AS n FROM ${ident(names.tempTable)} AS t
        WHERE ${rangePredicate(def.key.type, `t.${key}`, data.range)}
          AND NOT ${sensitiveExpression(def, ctx.sensitiveTerms)}`,
    );
    kept = Number(left[0]?.n ?? 0);
  }
  return {
    rows: rows - removed.rows,
    filtered: kept,
    rejected: removed.rejected,
    ms: Date.now() - started,
  };
}
