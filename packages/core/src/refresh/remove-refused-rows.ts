import { rangePredicate } from '../chunks.js';
import type { MediaDefinition } from '../media.js';
import type { RefreshNames } from '../names.js';
import type { ChunkJobData } from '../queues.js';
import { ident } from '../sql.js';
import type { BulkRefusal, Slots } from './bulk.js';
import type { JobContext } from './context.js';
import { sensitiveExpression } from './sql.js';

/** Rows rejected, by reason, with a few of their keys (the shape every step counts in). */
export type RejectedRows = Record<string, { count: number; sample: string[] }>;

/** The rejection reason of a row whose document Elasticsearch refused: `es-refused:<error type>`. */
export function refusedReason(type: string): string {
  return `es-refused:${type}`;
}

export interface RefusedRowsRemoved {
  /** Rows of the range whose document was refused (now gone from the table and the new indices). */
  readonly rows: number;
  /** Of those, rows this attempt removed that had no sensitive terms (in the filtered view). */
  readonly filtered: number;
  /** True when another attempt of the chunk had removed some of them already. */
  readonly concurrent: boolean;
  /** The chunk's refused rows by reason, over every attempt that committed. */
  readonly rejected: RejectedRows;
}

/** Keys per delete request: each key is a delete operation per new index (main, filtered). */
const DELETE_BATCH_KEYS = 1000;

/**
 * Turns documents Elasticsearch refused for their content into rejected rows: each refused key
 * is deleted from the new indices (the main one, which the filtered alias reads in `alias` mode,
 * and the filtered one in `index` mode: one of the two may have taken its document, or an earlier
 * attempt may have), then from the temp table, counted `es-refused:<type>` with sample keys in
 * the chunk's `result.refused` in the same transaction, so table and indices hold the same rows
 * and a retry neither loses nor doubles the count. The indices first: a worker dying between the
 * two leaves the rows in the table, and the retry refuses and removes them again.
 */
export async function removeRefusedRows(
  ctx: JobContext,
  data: ChunkJobData,
  def: MediaDefinition,
  names: RefreshNames,
  refused: readonly BulkRefusal[],
  slots: Slots,
): Promise<RefusedRowsRemoved> {
  // One reason per key: the main index's refusal if it refused, else the filtered index's.
  const byKey = new Map<string, BulkRefusal>();
  for (const r of refused) {
    if (!byKey.has(r.id) || r.index === names.index) byKey.set(r.id, r);
  }
  const keys = [...byKey.keys()];
  const signal = ctx.scope.signal;
  for (let i = 0; i < keys.length; i += DELETE_BATCH_KEYS) {
    const operations = keys
      .slice(i, i + DELETE_BATCH_KEYS)
      .flatMap((id) => names.indices.map((index) => ({ delete: { _index: index, _id: id } })));
    const release = await slots.acquire(signal);
    try {
      const res = await ctx.es.bulk(
        { operations, filter_path: 'items.*.status,items.*.error' },
        { signal },
      );
      const items = res.items as
        { [op: string]: { status: number; error?: unknown } | undefined }[] | undefined;
      const bad = (items ?? [])
        .map((item) => Object.values(item)[0])
        .filter((r) => r === undefined || (r.status !== 200 && r.status !== 404));
      if (items?.length !== operations.length || bad.length > 0) {
        throw new Error(
          `deleting ${operations.length / names.indices.length} refused document(s) from ${names.indices.join(' and ')} failed (${JSON.stringify(bad.slice(0, 3))}); the chunk is retried`,
        );
      }
    } finally {
      release();
    }
  }

  const key = ident(def.key.column);
  const inRange = rangePredicate(def.key.type, `t.${key}`, data.range);
  return ctx.scope.transaction(ctx.dbs.api, async (client) => {
    const { rows: gone } = await client.query<{ k: string; f: boolean }>(
      `DELETE FROM ${ident(names.tempTable)} AS t WHERE ${inRange} AND t.${key}::text = ANY($1::text[])
       RETURNING t.${key}::text AS k, NOT ${sensitiveExpression(def, ctx.sensitiveTerms)} AS f`,
      [keys],
    );
    const rejected: RejectedRows = {};
    const add = (reason: string, count: number, sample: readonly string[]) => {
      const prev = rejected[reason];
      rejected[reason] = {
        count: (prev?.count ?? 0) + count,
        sample: [...(prev?.sample ?? []), ...sample].slice(0, 10),
      };
    };
    for (const g of [...gone].sort((a, b) => (a.k < b.k ? -1 : a.k > b.k ? 1 : 0))) {
      add(refusedReason(byKey.get(g.k)?.type ?? 'unknown'), 1, [g.k]);
    }
    const { rows: stored } = await client.query<{ refused: RejectedRows | null }>(
      `SELECT result -> 'refused' AS refused FROM freshet.chunks WHERE run_id = $1 AND chunk = $2 FOR UPDATE`,
      [data.runId, data.chunk],
    );
    for (const [reason, r] of Object.entries(stored[0]?.refused ?? {})) {
      add(reason, r.count, r.sample);
    }
    await client.query(
      `UPDATE freshet.chunks SET result = result || jsonb_build_object('refused', $3::jsonb)
        WHERE run_id = $1 AND chunk = $2`,
      [data.runId, data.chunk, JSON.stringify(rejected)],
    );
    ctx.logger.warn(
      {
        runId: data.runId,
        chunk: data.chunk,
        refused: keys.length,
        examples: [...byKey.values()].slice(0, 3),
      },
      'documents refused by Elasticsearch for their content: their rows are rejected',
    );
    return {
      rows: keys.length,
      filtered: gone.filter((g) => g.f).length,
      concurrent: gone.length !== keys.length,
      rejected,
    };
  });
}
