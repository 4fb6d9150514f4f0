import { UnrecoverableError } from 'bullmq';
import { getMedia } from '../media.js';
import { refreshNames } from '../names.js';
import type { RunJobData } from '../queues.js';
import { ident } from '../sql.js';
import type { JobContext } from './context.js';
import { sensitiveExpression } from './sql.js';

export interface FinalizeResult {
  readonly tableRows: number;
  readonly indexDocs: number;
  readonly filteredRows: number;
  readonly filteredDocs: number;
}

/** A verification mismatch: the run fails before promotion; retrying cannot fix it. */
export class VerificationError extends UnrecoverableError {
  override readonly name = 'VerificationError';
}

/**
 * Restores refresh and replicas on the new indices, refreshes them and verifies the counts exactly:
 * documents == temp table rows, filtered documents == rows without sensitive terms, and no key
 * twice in the table; and that an empty build does not replace a live table with rows (unless
 * FRESHET_ALLOW_DROP). Any problem fails the run before promotion.
 */
export async function runFinalize(ctx: JobContext, data: RunJobData): Promise<FinalizeResult> {
  const def = getMedia(ctx.media, data.media);
  const names = refreshNames(def, data.profile, data.runId, ctx.config.ELASTICSEARCH_INDEX_PREFIX);
  const indices = [names.index, names.filteredIndex];
  await ctx.es.indices.putSettings({
    index: indices.join(','),
    // null restores the default refresh interval.
    settings: {
      index: { refresh_interval: null, number_of_replicas: ctx.config.ELASTICSEARCH_REPLICAS },
    } as unknown as Record<string, never>,
  });
  await ctx.es.indices.refresh({ index: indices.join(',') });
  await ctx.es.cluster.health({
    index: indices.join(','),
    wait_for_status: 'yellow',
    timeout: '60s',
  });

  const key = ident(def.key.column);
  const { rows } = await ctx.scope.query<{ n: number; distinct_keys: number; filtered: number }>(
    ctx.dbs.api,
    `SELECT count(*)::bigint AS n, count(DISTINCT t.${key})::bigint AS distinct_keys,
            count(*) FILTER (WHERE NOT ${sensitiveExpression(def, ctx.sensitiveTerms)})::bigint AS filtered
       FROM ${ident(names.tempTable)} AS t`,
  );
  const tableRows = Number(rows[0]?.n ?? 0);
  const distinctKeys = Number(rows[0]?.distinct_keys ?? 0);
  const filteredRows = Number(rows[0]?.filtered ?? 0);
  const indexDocs = (await ctx.es.count({ index: names.index })).count;
  const filteredDocs = (await ctx.es.count({ index: names.filteredIndex })).count;
  const result = { tableRows, indexDocs, filteredRows, filteredDocs };
  const problems: string[] = [];
  if (distinctKeys !== tableRows) {
    problems.push(`${tableRows - distinctKeys} duplicate key(s) in ${names.tempTable}`);
  }
  if (indexDocs !== tableRows) {
    problems.push(
      `${names.index} holds ${indexDocs} documents but ${names.tempTable} has ${tableRows} rows`,
    );
  }
  if (filteredDocs !== filteredRows) {
    problems.push(
      `${names.filteredIndex} holds ${filteredDocs} documents but ${filteredRows} rows have no sensitive terms`,
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
  if (problems.length > 0) {
    throw new VerificationError(`verification failed before promotion: ${problems.join('; ')}`);
  }
  return result;
}
