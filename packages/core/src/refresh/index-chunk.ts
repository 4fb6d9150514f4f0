import { setTimeout as delay } from 'node:timers/promises';
import type { Client } from '@elastic/elasticsearch';
import Cursor from 'pg-cursor';
import { rangePredicate } from '../chunks.js';
import { getMedia } from '../media.js';
import { refreshNames } from '../names.js';
import type { ChunkJobData } from '../queues.js';
import { ident } from '../sql.js';
import type { JobContext } from './context.js';
import { documentExpression, sensitiveExpression } from './sql.js';

export interface IndexResult {
  /** Documents written to the main index (== rows in the range). */
  readonly rows: number;
  /** Documents also written to the filtered index. */
  readonly filtered: number;
  readonly ms: number;
}

/** A bulk item or request failure: the chunk fails and is retried; nothing is dropped silently. */
export class BulkIndexError extends Error {
  override readonly name = 'BulkIndexError';
  constructor(
    readonly failed: number,
    readonly samples: readonly { id: string; index: string; status: number; error: unknown }[],
  ) {
    super(
      `${failed} document(s) were rejected by Elasticsearch, e.g. ${samples
        .slice(0, 3)
        .map((s) => `${s.id} -> ${s.index}: ${s.status} ${JSON.stringify(s.error)}`)
        .join('; ')}`,
    );
  }
}

/**
 * The bulk helper retries documents refused with 429, but not a bulk request refused as a whole
 * with 429 (the node's write queue is full): that failed the whole chunk, and under sustained load
 * every chunk again and again. Such requests are retried here with exponential backoff (0.5 s,
 * 1 s, ... about 30 s in all) before the chunk fails. A child client shares the parent's
 * connections; only its `bulk` is wrapped.
 */
function retryingBulk(es: Client, signal: AbortSignal, retries = 6, waitMs = 500): Client {
  const child = es.child({});
  const bulk = child.bulk.bind(child) as (...args: unknown[]) => Promise<unknown>;
  const retrying = async (...args: unknown[]): Promise<unknown> => {
    for (let attempt = 0; ; attempt++) {
      try {
        return await bulk(...args);
      } catch (err) {
        const status = (err as { meta?: { statusCode?: number } }).meta?.statusCode;
        if (status !== 429 || attempt >= retries || signal.aborted) throw err;
        await delay(waitMs * 2 ** attempt, undefined, { signal }).catch(() => undefined);
      }
    }
  };
  Object.assign(child, { bulk: retrying });
  return child;
}

interface Row {
  id: string;
  doc: string;
  sensitive: boolean;
}

interface BulkItem {
  index: string;
  id: string;
  doc: string;
}

/**
 * Indexes one key range: reads the cleaned rows with a cursor (documents are built as JSON text
 * by PostgreSQL), and bulk-indexes them into the new index, and the non-sensitive ones into the
 * filtered index too, with `_id` = the row key so a retried chunk overwrites rather than doubles.
 */
export async function indexChunk(ctx: JobContext, data: ChunkJobData): Promise<IndexResult> {
  const signal = ctx.scope.signal;
  const started = Date.now();
  const def = getMedia(ctx.media, data.media);
  const names = refreshNames(def, data.profile, data.runId, ctx.config.ELASTICSEARCH_INDEX_PREFIX);
  const key = ident(def.key.column);
  const sql = `SELECT t.${key}::text AS id, ${documentExpression(def)} AS doc,
      ${sensitiveExpression(def, ctx.sensitiveTerms)} AS sensitive
    FROM ${ident(names.tempTable)} AS t WHERE ${rangePredicate(def.key.type, `t.${key}`, data.range)}`;

  const client = await ctx.scope.connect(ctx.dbs.api);
  let rows = 0;
  let filtered = 0;
  let items = 0;
  try {
    const cursor = client.query(new Cursor<Row>(sql));
    async function* documents(): AsyncGenerator<BulkItem> {
      let lost = false;
      try {
        for (;;) {
          const batch = await cursor.read(1000).catch((err: unknown) => {
            lost = true;
            throw err;
          });
          if (batch.length === 0) return;
          for (const row of batch) {
            rows++;
            items++;
            yield { index: names.index, id: row.id, doc: row.doc };
            if (!row.sensitive) {
              filtered++;
              items++;
              yield { index: names.filteredIndex, id: row.id, doc: row.doc };
            }
          }
        }
      } finally {
        // After a failed read the connection may be gone, and closing the cursor would wait
        // forever for its answer; the connection is discarded when the client is released.
        if (!lost) await cursor.close();
      }
    }

    const failures: { id: string; index: string; status: number; error: unknown }[] = [];
    let failedCount = 0;
    const bulk = retryingBulk(ctx.es, signal).helpers.bulk<BulkItem>({
      datasource: documents(),
      onDocument: (item) => [{ index: { _index: item.index, _id: item.id } }, item.doc],
      onDrop: (drop) => {
        failedCount++;
        if (failures.length < 10) {
          const action = (drop.operation as { index?: { _index?: string; _id?: string } }).index;
          failures.push({
            id: action?._id ?? '?',
            index: action?._index ?? '?',
            status: drop.status,
            error: drop.error,
          });
        }
      },
      flushBytes: ctx.config.INDEX_BULK_FLUSH_BYTES,
      concurrency: ctx.config.INDEX_BULK_CONCURRENCY,
      retries: 3,
      wait: 1000,
      refreshOnCompletion: false,
    });
    const onAbort = (): void => {
      void bulk.abort();
    };
    signal.addEventListener('abort', onAbort, { once: true });
    let stats;
    try {
      stats = await bulk;
    } finally {
      signal.removeEventListener('abort', onAbort);
    }
    if (signal.aborted) throw signal.reason instanceof Error ? signal.reason : new Error('aborted');
    if (failedCount > 0) throw new BulkIndexError(failedCount, failures);
    if (stats.successful !== items) {
      throw new Error(
        `bulk indexing acknowledged ${stats.successful} of ${items} documents; the chunk is retried`,
      );
    }
  } finally {
    ctx.scope.release(client);
  }
  return { rows, filtered, ms: Date.now() - started };
}
