import { once } from 'node:events';
import { finished } from 'node:stream/promises';
import { from as copyFrom, to as copyTo } from 'pg-copy-streams';
import type pg from 'pg';
import { rangePredicate, type KeyRange } from '../chunks.js';
import { getMedia, type MediaDefinition } from '../media.js';
import { refreshNames } from '../names.js';
import type { ChunkJobData } from '../queues.js';
import { ident, literal } from '../sql.js';
import {
  BufferPool,
  BulkBody,
  sendBulk,
  Slots,
  type BulkFailure,
  type BulkRefusal,
} from './bulk.js';
import type { JobContext } from './context.js';
import { CopyTextParser, encodeCopyTextRow } from './copy-text.js';
import { refusedReason, type RejectedRows } from './rejected.js';
import { compileRowRules, type RowRules } from './row-rules.js';

/** What one pass over a chunk did: the counts the run view, finalize and the report add up. */
export interface ChunkPassResult {
  /** Upstream rows read (in the range, not removed, not deleted). */
  readonly read: number;
  /** Rows written to the table, each with its document in the index. */
  readonly rows: number;
  /** Documents indexed (== rows). */
  readonly indexed: number;
  /** Of those, documents without sensitive terms (what the filtered view serves). */
  readonly filtered: number;
  /** Upstream rows in the range that were skipped, by reason. */
  readonly skipped: { removed: number; deleted: number };
  /** Rows that cannot be refreshed, by reason, with a few keys each. */
  readonly rejected: RejectedRows;
  /** Rows changed, by rule. */
  readonly changed: Record<string, number>;
  /** Tags dropped, by reason. */
  readonly tagsDropped: Record<string, number>;
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

const rulesCache = new WeakMap<MediaDefinition, { terms: readonly string[]; rules: RowRules }>();

/** The row rules of a media type, compiled once per process (per definition and terms). */
function rulesFor(def: MediaDefinition, terms: readonly string[]): RowRules {
  const hit = rulesCache.get(def);
  if (hit?.terms === terms) return hit.rules;
  const rules = compileRowRules(def, terms);
  rulesCache.set(def, { terms, rules });
  return rules;
}

/** The document field holding the row's key (a retried pass deletes its range by it). */
export function keyField(def: MediaDefinition): string {
  const field = Object.entries(def.document.fields).find(([, spec]) => spec === def.key.column);
  if (!field) {
    throw new Error(
      `media ${def.name}: the document must carry the key column ${def.key.column} as a field`,
    );
  }
  return field[0];
}

const uniqueKeys = new Map<string, boolean>();

/**
 * True when the catalog enforces the key's uniqueness (a primary key or unique index on exactly
 * that column): then no key can come twice, and the rows need no ordering to find duplicates.
 * Asked once per process and table.
 */
async function upstreamKeyIsUnique(ctx: JobContext, def: MediaDefinition): Promise<boolean> {
  const cacheKey = `${ctx.config.CATALOG_DATABASE_URL} ${def.upstreamTable} ${def.key.column}`;
  const known = uniqueKeys.get(cacheKey);
  if (known !== undefined) return known;
  const { rows } = await ctx.scope.query<{ unique: boolean }>(
    ctx.dbs.catalog,
    `SELECT EXISTS (
       SELECT 1 FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0]
        WHERE i.indrelid = to_regclass($1) AND i.indisunique AND i.indnkeyatts = 1
          AND i.indpred IS NULL AND a.attname = $2) AS unique`,
    [def.upstreamTable, def.key.column],
  );
  const unique = rows[0]?.unique === true;
  uniqueKeys.set(cacheKey, unique);
  return unique;
}

/** Elasticsearch range query over the key field for `range` (half-open, null = unbounded). */
function keyRangeQuery(def: MediaDefinition, range: KeyRange): Record<string, unknown> {
  const bounds: Record<string, string> = {};
  if (range.start !== null) bounds.gte = range.start;
  if (range.end !== null) bounds.lt = range.end;
  return Object.keys(bounds).length === 0
    ? { match_all: {} }
    : { range: { [keyField(def)]: bounds } };
}

function addRejected(into: RejectedRows, reason: string, key: string | null, n = 1): void {
  const r = (into[reason] ??= { count: 0, sample: [] });
  r.count += n;
  if (key !== null && r.sample.length < 10) r.sample.push(key);
}

function addCount(into: Record<string, number>, reason: string, n = 1): void {
  into[reason] = (into[reason] ?? 0) + n;
}

/** Session settings that make PostgreSQL's text output what the row rules read. */
const TEXT_SESSION = `SET LOCAL TimeZone = 'UTC'; SET LOCAL DateStyle = 'ISO, YMD'; SET LOCAL IntervalStyle = 'postgres'; SET LOCAL extra_float_digits = 1; SET LOCAL bytea_output = 'hex'`;

/**
 * One pass over one chunk: its upstream rows are read once (COPY out of the catalog, in key
 * order, in one snapshot), cleaned and turned into documents here in the worker, and written
 * from that same stream to the table (COPY in) and to Elasticsearch (bulk). PostgreSQL only
 * streams rows out and takes rows in; Elasticsearch indexes each document once.
 *
 * Exactness: the range is replaced in one transaction, under a per-chunk advisory lock, so two
 * attempts take turns and rows are never doubled. Documents go out before that transaction
 * commits, so an attempt that follows one that sent documents (it failed, its worker died) first
 * deletes the range's documents, then sends its own under the same `_id`s: the index holds what
 * the table holds, even if upstream rows vanished between attempts. A document Elasticsearch
 * refuses for its content is a rejected row (`es-refused:<type>`), removed from the table in the
 * same transaction. Every count is this attempt's own and is stored with the chunk when it commits.
 */
export async function refreshChunk(ctx: JobContext, data: ChunkJobData): Promise<ChunkPassResult> {
  const started = Date.now();
  const signal = ctx.scope.signal;
  const def = getMedia(ctx.media, data.media);
  const names = refreshNames(def, data.profile, data.runId, ctx.config.ELASTICSEARCH_INDEX_PREFIX);
  const indices = names.indices;
  const rules = rulesFor(def, ctx.sensitiveTerms);
  const key = ident(def.key.column);
  const keyAt = def.columns.findIndex((c) => c.name === def.key.column);
  const cols = def.columns.map((c) => ident(c.name)).join(', ');
  const inRange = rangePredicate(def.key.type, `u.${key}`, data.range);
  const notRemoved = def.removedColumn ? `u.${ident(def.removedColumn)} IS NOT TRUE` : 'TRUE';
  // The range's deleted identifiers, hashed once (a probe per row would cost PostgreSQL more
  // than the rest of the read).
  const deletedJoin = def.deletedTable
    ? `LEFT JOIN (SELECT DISTINCT d.${key} AS k FROM ${ident(def.deletedTable)} d
                   WHERE ${rangePredicate(def.key.type, `d.${key}`, data.range)}) del ON del.k = u.${key}`
    : '';
  const isDeleted = def.deletedTable ? 'del.k IS NOT NULL' : 'FALSE';
  // Skipped rows (removed upstream, or in the deleted-identifiers table) come through the same
  // read, as their key and a reason only: one read of the range counts and copies it.
  const skip = `CASE WHEN NOT (${notRemoved}) THEN 'removed' WHEN ${isDeleted} THEN 'deleted' END`;
  const selectCols = [
    ...def.columns.map((c) =>
      c.name === def.key.column
        ? `u.${key}`
        : `CASE WHEN s.skip IS NULL THEN u.${ident(c.name)} END`,
    ),
    's.skip',
  ].join(', ');
  const chunkRow = `run_id = ${literal(data.runId)} AND chunk = ${Number(data.chunk)}`;

  const keyIsUnique = await upstreamKeyIsUnique(ctx, def);
  // Counted before any document is sent: a later attempt then knows the range may hold documents.
  const { rows: passRows } = await ctx.scope.query<{ passes: number }>(
    ctx.dbs.api,
    `UPDATE freshet.chunks SET result = result || jsonb_build_object('passes', coalesce((result ->> 'passes')::int, 0) + 1)
      WHERE ${chunkRow} RETURNING (result ->> 'passes')::int AS passes`,
  );
  const retried = Number(passRows[0]?.passes ?? 1) > 1;

  const source = await ctx.scope.connect(
    ctx.dbs.catalog,
    `BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY; ${TEXT_SESSION}`,
  );
  let target: pg.PoolClient;
  try {
    target = await ctx.scope.connect(
      ctx.dbs.api,
      `BEGIN; ${TEXT_SESSION};
       SELECT pg_advisory_xact_lock(hashtext(${literal(`${data.runId}.c${data.chunk}`)}));
       DELETE FROM ${ident(names.tempTable)} AS u WHERE ${inRange}`,
    );
  } catch (err) {
    await source.query('ROLLBACK').catch(() => undefined);
    ctx.scope.release(source);
    throw err;
  }

  const slots = ctx.bulkSlots ?? new Slots(ctx.config.INDEX_BULK_CONCURRENCY);
  const pool = ctx.bulkBuffers ?? new BufferPool(slots.size + 1);
  const flushBytes = ctx.config.INDEX_BULK_FLUSH_BYTES;
  const capacity = flushBytes + (flushBytes >> 3);
  const actions = indices.map((index) => `{"index":{"_index":${JSON.stringify(index)},"_id":`);

  let read = 0;
  let rows = 0;
  let filtered = 0;
  let ops = 0;
  let succeeded = 0;
  let failed = 0;
  const rejected: RejectedRows = {};
  const changed: Record<string, number> = {};
  const tagsDropped: Record<string, number> = {};
  const samples: BulkFailure[] = [];
  const refused: BulkRefusal[] = [];
  /** Keys of written rows with sensitive terms: a refused one does not lower the filtered count. */
  const sensitiveKeys = new Set<string>();
  const inFlight = new Set<Promise<void>>();
  let sendError: Error | undefined;
  // A stream that fails (its connection dropped, or destroyed when the pass stops early) reports
  // it here. It is the error the pass ends with: reading on from a stream whose connection is gone
  // can throw a TypeError from inside the COPY stream, which says nothing about the cause.
  let streamError: Error | undefined;
  const noteError = (err: Error) => {
    streamError ??= err;
  };
  let healthy = false;

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

  try {
    if (retried) await clearRange(ctx, def, indices, data.range);
    const ingest = target.query(copyFrom(`COPY ${ident(names.tempTable)} (${cols}) FROM STDIN`));
    const out = source.query(
      copyTo(
        `COPY (SELECT ${selectCols} FROM ${ident(def.upstreamTable)} u ${deletedJoin}
                CROSS JOIN LATERAL (SELECT ${skip} AS skip OFFSET 0) s
                WHERE ${inRange}
                ${keyIsUnique ? '' : `ORDER BY u.${key}`}) TO STDOUT`,
      ),
    );
    ingest.on('error', noteError);
    out.on('error', noteError);
    const parser = new CopyTextParser();
    let batch = new BulkBody(capacity, pool);
    let lines: string[] = [];
    // A key seen twice (an upstream table without a unique key) is not a row to pick from:
    // every copy is rejected. Rows come in key order, so only the current key's rows wait.
    let group: (string | null)[][] = [];
    const emit = (values: (string | null)[]) => {
      const k = values[keyAt] as string;
      const outcome = rules.clean(values);
      if (outcome.rejected !== undefined) {
        addRejected(rejected, outcome.rejected, k);
        return;
      }
      for (const rule of outcome.changed) addCount(changed, rule);
      if (outcome.tagsDropped) {
        for (const [reason, n] of Object.entries(outcome.tagsDropped))
          addCount(tagsDropped, reason, n);
      }
      lines.push(encodeCopyTextRow(outcome.values));
      rows++;
      const id = `${JSON.stringify(k)}}}\n`;
      const doc = `${outcome.document}\n`;
      batch.addText(actions[0] + id, doc);
      if (outcome.sensitive) sensitiveKeys.add(k);
      else {
        filtered++;
        if (actions.length > 1) batch.addText(actions[1] + id, doc);
      }
    };
    const flushGroup = () => {
      if (group.length === 1) emit(group[0] as (string | null)[]);
      else if (group.length > 1)
        addRejected(rejected, 'duplicate-key', group[0]?.[keyAt] ?? null, group.length);
      group = [];
    };
    const skipped = { removed: 0, deleted: 0 };
    const onRow = (values: (string | null)[]) => {
      const reason = values.pop();
      if (reason === 'removed' || reason === 'deleted') {
        skipped[reason]++;
        return;
      }
      read++;
      if (keyIsUnique) {
        emit(values);
        return;
      }
      if (group.length > 0 && group[0]?.[keyAt] !== values[keyAt]) flushGroup();
      group.push(values);
    };
    let streamed = false;
    try {
      for await (const chunk of out as AsyncIterable<Buffer>) {
        parser.push(chunk, onRow);
        if (lines.length > 0) {
          const ok = ingest.write(lines.join(''));
          lines = [];
          if (!ok && streamError === undefined) await once(ingest, 'drain', { signal });
        }
        if (batch.bytes >= flushBytes) {
          await send(batch);
          batch = new BulkBody(capacity, pool);
        }
        if (sendError !== undefined || streamError !== undefined) break;
        ctx.scope.reportProgress();
      }
      if (streamError !== undefined) throw streamError;
      if (sendError === undefined) {
        parser.end();
        flushGroup();
        streamed = true;
        if (lines.length > 0) ingest.write(lines.join(''));
        ingest.end();
        await finished(ingest);
        if (batch.count > 0) await send(batch);
        else batch.dispose();
      }
    } finally {
      if (!streamed) {
        // Stopping early (a failed request, an abort, a dropped connection) leaves the COPYs
        // running: both are destroyed and their connections discarded. Destroying a stream whose
        // connection is already gone can itself throw; the error that stopped the pass stands.
        for (const stream of [out, ingest]) {
          try {
            stream.destroy();
          } catch {
            // the connection is gone already
          }
        }
      }
      await Promise.all([...inFlight]);
    }
    signal.throwIfAborted();
    if (sendError !== undefined) throw sendError;
    if (failed > 0) throw new BulkIndexError(failed, samples);
    if (succeeded + refused.length !== ops) {
      throw new Error(
        `bulk indexing acknowledged ${succeeded} and refused ${refused.length} of ${ops} documents; the chunk is retried`,
      );
    }

    // Documents refused for their content would be refused again by any retry: their rows are
    // rejected, removed from the table here and from every index (one may have taken it).
    if (refused.length > 0) {
      const byKey = new Map<string, BulkRefusal>();
      for (const r of refused) if (!byKey.has(r.id) || r.index === names.index) byKey.set(r.id, r);
      await deleteDocuments(ctx, indices, [...byKey.keys()]);
      const { rows: gone } = await target.query<{ k: string }>(
        `DELETE FROM ${ident(names.tempTable)} AS u WHERE u.${key}::text = ANY($1::text[]) RETURNING u.${key}::text AS k`,
        [[...byKey.keys()]],
      );
      for (const { k } of gone) {
        const r = byKey.get(k) as BulkRefusal;
        addRejected(rejected, refusedReason(r.type), k);
        rows--;
        if (!sensitiveKeys.has(k)) filtered--;
      }
    }

    // A row without a key lies in no range: the first chunk (open below) counts them all.
    if (data.range.start === null) {
      const { rows: nulls } = await source.query<{ n: number }>(
        `SELECT count(*)::bigint AS n FROM ${ident(def.upstreamTable)} u WHERE u.${key} IS NULL`,
      );
      const n = Number(nulls[0]?.n ?? 0);
      if (n > 0) addRejected(rejected, 'null-key', null, n);
    }
    const result: ChunkPassResult = {
      read,
      rows,
      indexed: rows,
      filtered,
      skipped,
      rejected,
      changed,
      tagsDropped,
      ms: Date.now() - started,
    };
    await target.query(`UPDATE freshet.chunks SET result = result || $1::jsonb WHERE ${chunkRow}`, [
      JSON.stringify({ pass: { ...result } }),
    ]);
    await ctx.scope.assertOwned();
    await target.query('COMMIT');
    await source.query('COMMIT');
    healthy = true;
    return result;
  } catch (err) {
    await target.query('ROLLBACK').catch(() => undefined);
    await source.query('ROLLBACK').catch(() => undefined);
    throw streamError ?? err;
  } finally {
    ctx.scope.release(source, !healthy);
    ctx.scope.release(target, !healthy);
  }
}

/**
 * Deletes every document of `range` from `indices` (a retried pass starts from an empty range):
 * the range's ids are read in key order (search_after) and deleted in bulk. (Delete-by-query
 * would do it in one request, but it lives in the reindex module, which not every cluster has.)
 */
async function clearRange(
  ctx: JobContext,
  def: MediaDefinition,
  indices: readonly string[],
  range: KeyRange,
): Promise<void> {
  const signal = ctx.scope.signal;
  // Documents sent by the earlier attempt are not searchable until a refresh.
  await ctx.es.indices.refresh({ index: [...indices] });
  const field = keyField(def);
  for (const index of indices) {
    let after: (string | number)[] | undefined;
    for (;;) {
      const res = await ctx.es.search(
        {
          index,
          query: keyRangeQuery(def, range),
          size: DELETE_BATCH_KEYS,
          _source: false,
          sort: [{ [field]: 'asc' }],
          ...(after ? { search_after: after } : {}),
        },
        { signal },
      );
      const hits = res.hits.hits;
      if (hits.length === 0) break;
      await deleteDocuments(
        ctx,
        [index],
        hits.map((h) => h._id as string),
      );
      after = hits.at(-1)?.sort as (string | number)[];
    }
  }
}

/** Keys per delete request. */
const DELETE_BATCH_KEYS = 1000;

/** Deletes the documents of `ids` from every index (absent ones are fine). */
async function deleteDocuments(
  ctx: JobContext,
  indices: readonly string[],
  ids: readonly string[],
): Promise<void> {
  for (let i = 0; i < ids.length; i += DELETE_BATCH_KEYS) {
    const operations = ids
      .slice(i, i + DELETE_BATCH_KEYS)
      .flatMap((id) => indices.map((index) => ({ delete: { _index: index, _id: id } })));
    const res = await ctx.es.bulk({ operations }, { signal: ctx.scope.signal });
    const bad = res.items.filter((item) => {
      const s = item.delete?.status ?? 0;
      return s !== 404 && (s < 200 || s >= 300);
    });
    if (bad.length > 0) {
      throw new Error(
        `deleting refused documents failed for ${bad.length} of them, e.g. ${JSON.stringify(bad[0])}`,
      );
    }
  }
}
