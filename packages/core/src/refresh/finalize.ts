import { UnrecoverableError } from 'bullmq';
import { nonSensitiveQuery, type FilteredMode } from '../filtered-view.js';
import { getMedia } from '../media.js';
import { refreshNames } from '../names.js';
import type { RunJobData } from '../queues.js';
import { ident } from '../sql.js';
import type { JobContext } from './context.js';
import { waitForGreen } from './green.js';
import { buildTableIndexes } from './table-indexes.js';

export interface FinalizeResult {
  readonly filtered: FilteredMode;
  readonly tableRows: number;
  readonly indexDocs: number;
  /** Rows the chunks wrote without sensitive terms (their documents have `sensitive: false`). */
  readonly filteredRows: number;
  /**
   * Documents of the filtered view: the filtered index's (`index` mode), or the main index's
   * matching the filtered alias's filter (`alias` mode).
   */
  readonly filteredDocs: number;
  /** Documents of the main index with `sensitive: false` (== filteredDocs in `alias` mode). */
  readonly nonSensitiveDocs: number;
  /** Rows whose document Elasticsearch refused for its content (rejected), by reason. */
  readonly refused: Record<string, number>;
}

/** The run's rows whose documents were refused, by reason, with a few sample keys. */
async function refusedRows(
  ctx: JobContext,
  runId: string,
): Promise<{ reason: string; n: number; sample: string[] }[]> {
  const { rows } = await ctx.scope.query<{ reason: string; n: number; sample: string[] | null }>(
    ctx.dbs.api,
    `SELECT k AS reason, sum((v ->> 'count')::bigint)::bigint AS n,
            (array_agg(v -> 'sample' ->> 0) FILTER (WHERE v -> 'sample' ->> 0 IS NOT NULL))[1:3] AS sample
       FROM freshet.chunks, jsonb_each(coalesce(result -> 'pass' -> 'rejected', '{}')) AS r(k, v)
      WHERE run_id = $1 AND k LIKE 'es-refused:%' GROUP BY k ORDER BY n DESC, k`,
    [runId],
  );
  return rows.map((r) => ({ reason: r.reason, n: Number(r.n), sample: r.sample ?? [] }));
}

/** A verification mismatch: the run fails before promotion; retrying cannot fix it. */
export class VerificationError extends UnrecoverableError {
  override readonly name = 'VerificationError';
}

/**
 * Restores refresh and replicas on the new indices, waits (up to GREEN_WAIT_MS) until they are
 * green and refreshes them, while the temp table's indexes are built (so promotion only swaps);
 * then verifies the counts exactly:
 * documents == temp table rows == rows the chunks wrote; documents of the main index with
 * `sensitive: false` (what the filtered alias shows in `alias` mode) == rows the chunks found
 * without sensitive terms, and in `index` mode the filtered index's documents too; that an empty build does not replace a live table with rows (unless
 * FRESHET_ALLOW_DROP); and that Elasticsearch refused no more than MAX_REJECTED_RATE of the
 * documents. Any problem fails the run before promotion.
 */
export async function runFinalize(ctx: JobContext, data: RunJobData): Promise<FinalizeResult> {
  const def = getMedia(ctx.media, data.media);
  const names = refreshNames(def, data.profile, data.runId, ctx.config.ELASTICSEARCH_INDEX_PREFIX);
  const indices = names.indices;
  // The table's indexes are built (PostgreSQL) while Elasticsearch places the copies and makes
  // the documents searchable: two servers at work at once instead of one after the other.
  const [tableIndexed, indicesReady] = await Promise.allSettled([
    buildTableIndexes(ctx, def, names, data.runId),
    (async () => {
      await ctx.es.indices.putSettings({
        index: indices.join(','),
        // null restores the default refresh interval.
        settings: {
          index: { refresh_interval: null, number_of_replicas: ctx.config.ELASTICSEARCH_REPLICAS },
        } as unknown as Record<string, never>,
      });
      // Every copy placed before anything is verified or promoted: with replicas restored that
      // is their copying done, with none it is every primary started.
      await waitForGreen(ctx, data.runId, indices, {
        stage: 'finalize',
        boundMs: ctx.config.GREEN_WAIT_MS,
      });
      await ctx.es.indices.refresh({ index: indices.join(',') });
    })(),
  ]);
  for (const r of [tableIndexed, indicesReady]) if (r.status === 'rejected') throw r.reason;

  // The table is counted here; what each chunk wrote without sensitive terms, the chunks counted
  // as they built the documents (PostgreSQL reads no row twice). Duplicate keys cannot reach the
  // table (each pass rejects them, ranges are disjoint), and promotion's unique index proves it.
  const { rows } = await ctx.scope.query<{ n: number }>(
    ctx.dbs.api,
    `SELECT count(*)::bigint AS n FROM ${ident(names.tempTable)}`,
  );
  const { rows: reported } = await ctx.scope.query<{ rows: number; filtered: number }>(
    ctx.dbs.api,
    `SELECT coalesce(sum((result -> 'pass' ->> 'rows')::bigint), 0)::bigint AS rows,
            coalesce(sum((result -> 'pass' ->> 'filtered')::bigint), 0)::bigint AS filtered
       FROM freshet.chunks WHERE run_id = $1`,
    [data.runId],
  );
  const tableRows = Number(rows[0]?.n ?? 0);
  const chunkRows = Number(reported[0]?.rows ?? 0);
  const filteredRows = Number(reported[0]?.filtered ?? 0);
  const indexDocs = (await ctx.es.count({ index: names.index })).count;
  // The filtered alias's own filter: what `<media>-filtered` will count once promoted.
  const nonSensitiveDocs = (await ctx.es.count({ index: names.index, query: nonSensitiveQuery() }))
    .count;
  const filteredDocs =
    names.filteredIndex === null
      ? nonSensitiveDocs
      : (await ctx.es.count({ index: names.filteredIndex })).count;
  const refused = await refusedRows(ctx, data.runId);
  const result = {
    filtered: names.filtered,
    tableRows,
    indexDocs,
    filteredRows,
    filteredDocs,
    nonSensitiveDocs,
    refused: Object.fromEntries(refused.map((r) => [r.reason, r.n])),
  };
  const problems: string[] = [];
  if (chunkRows !== tableRows) {
    problems.push(`the chunks wrote ${chunkRows} rows but ${names.tempTable} has ${tableRows}`);
  }
  if (indexDocs !== tableRows) {
    problems.push(
      `${names.index} holds ${indexDocs} documents but ${names.tempTable} has ${tableRows} rows`,
    );
  }
  if (nonSensitiveDocs !== filteredRows) {
    problems.push(
      names.filteredIndex === null
        ? `${names.filteredAlias} would show ${nonSensitiveDocs} documents of ${names.index} (filter sensitive: false) but ${filteredRows} rows have no sensitive terms`
        : `${names.index} holds ${nonSensitiveDocs} documents with sensitive: false but ${filteredRows} rows have no sensitive terms`,
    );
  }
  if (names.filteredIndex !== null && filteredDocs !== filteredRows) {
    problems.push(
      `the filtered view holds ${filteredDocs} documents but ${filteredRows} rows have no sensitive terms`,
    );
  }
  // An empty build would replace a live table that has rows with nothing (an upstream table
  // emptied by accident, a wrong catalog URL): refused unless dropping everything is allowed.
  if (tableRows === 0 && !ctx.config.FRESHET_ALLOW_DROP) {
    const run = await ctx.store.getRun(data.runId);
    const before = (run.counts?.before ?? {}) as Record<string, unknown>;
    const liveRows = Object.values(before).reduce<number>((sum, n) => sum + Number(n), 0);
    if (liveRows > 0) {
      problems.push(
        `the new build is empty but the live ${names.table} has ${liveRows} rows; refusing to replace it (FRESHET_ALLOW_DROP=true allows it)`,
      );
    }
  }
  // A few refused documents are dirty data (their rows are rejected and counted); a large share
  // is a mapping that does not fit the data, and promoting that build would hide it.
  const refusedTotal = refused.reduce((sum, r) => sum + r.n, 0);
  const reached = tableRows + refusedTotal;
  const rate = reached === 0 ? 0 : refusedTotal / reached;
  if (refusedTotal > 0 && rate > ctx.config.MAX_REJECTED_RATE) {
    const reasons = refused
      .map((r) => `${r.reason} ${r.n} (e.g. key ${r.sample.join(', ')})`)
      .join(', ');
    problems.push(
      `Elasticsearch refused ${refusedTotal} of ${reached} documents (${(rate * 100).toFixed(2)}%), more than MAX_REJECTED_RATE ${ctx.config.MAX_REJECTED_RATE}: ${reasons}; the mapping ${def.document.mapping} does not fit the data (fix it or the data, or raise MAX_REJECTED_RATE)`,
    );
  }
  if (problems.length > 0) {
    throw new VerificationError(`verification failed before promotion: ${problems.join('; ')}`);
  }
  return result;
}
