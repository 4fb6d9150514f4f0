import type pg from 'pg';
import { rangePredicate } from '../chunks.js';
import { getMedia, type MediaDefinition } from '../media.js';
import { refreshNames } from '../names.js';
import type { ChunkJobData } from '../queues.js';
import { ident, literal } from '../sql.js';
import type { JobContext } from './context.js';

export interface CleanResult {
  /** Rows left in the range after cleaning. */
  readonly rows: number;
  /**
   * Rows changed, by rule (a row changed by two rules counts under both). This and the counts
   * below are the chunk's totals since its copy, over every attempt that committed.
   */
  readonly changed: Record<string, number>;
  /** Rows removed from the range, by reason, with a few of their keys. */
  readonly rejected: Record<string, { count: number; sample: string[] }>;
  /** Tags dropped, by reason. */
  readonly tagsDropped: Record<string, number>;
  readonly ms: number;
}

const schemeless = `!~* '^[a-z][a-z0-9+.-]*://'`;
const invalidUrl = (col: string) =>
  `(${col} = '' OR ${col} ~ '[[:space:][:cntrl:]]' OR ${col} !~* '^https?://[^/?#[:space:]]+')`;

function arrayLiteral(values: readonly string[]): string {
  return `ARRAY[${values.map((v) => literal(v)).join(', ')}]::text[]`;
}

/** The reason a tag element `e` is dropped, as a SQL CASE (NULL keeps it). */
function tagReason(tags: NonNullable<MediaDefinition['cleaning']['tags']>): string {
  const name = `lower(e ->> 'name')`;
  const numericString = `(jsonb_typeof(e -> 'accuracy') = 'string' AND (e ->> 'accuracy') ~ '^\\s*[0-9]*\\.?[0-9]+\\s*$')`;
  const accuracy = `CASE WHEN jsonb_typeof(e -> 'accuracy') = 'number' THEN (e -> 'accuracy')::float8
    WHEN ${numericString} THEN (e ->> 'accuracy')::float8 END`;
  const substrings = tags.denylistSubstrings.map((s) => `%${s.replace(/[\\%_]/g, '\\$&')}%`);
  return `CASE
    WHEN jsonb_typeof(e) <> 'object' OR jsonb_typeof(e -> 'name') IS DISTINCT FROM 'string'
      OR btrim(e ->> 'name') = '' OR length(e ->> 'name') > ${tags.maxNameLength}
      OR (e ? 'accuracy' AND jsonb_typeof(e -> 'accuracy') <> 'null' AND jsonb_typeof(e -> 'accuracy') <> 'number' AND NOT ${numericString})
      THEN 'malformed'
    WHEN (${accuracy}) < ${Number(tags.minAccuracy)} THEN 'low-accuracy'
    WHEN (e ->> 'provider') = ANY(${arrayLiteral(tags.denylistedProviders)}) THEN 'denylisted-provider'
    WHEN ${name} = ANY(${arrayLiteral(tags.denylist.map((t) => t.toLowerCase()))})
      OR ${name} LIKE ANY(${arrayLiteral(substrings.map((t) => t.toLowerCase()))}) THEN 'denylisted'
    END`;
}

async function rejectRows(
  client: pg.PoolClient,
  table: string,
  key: string,
  where: string,
): Promise<{ count: number; sample: string[] }> {
  const { rows } = await client.query<{ n: number; sample: string[] | null }>(
    `WITH d AS (DELETE FROM ${table} AS t WHERE ${where} RETURNING t.${key}::text AS k)
     SELECT count(*)::bigint AS n, (array_agg(k ORDER BY k))[1:10] AS sample FROM d`,
  );
  return { count: Number(rows[0]?.n ?? 0), sample: rows[0]?.sample ?? [] };
}

/**
 * Cleans one key range of the temp table in the database, in one transaction: adds missing URL
 * schemes, drops low-accuracy, denylisted and malformed tags, normalises licenses, and removes
 * rows that cannot be served (counted per reason). Every rule is idempotent, so a retry is safe.
 */
export async function cleanChunk(ctx: JobContext, data: ChunkJobData): Promise<CleanResult> {
  const started = Date.now();
  const def = getMedia(ctx.media, data.media);
  const names = refreshNames(def, data.profile, data.runId, ctx.config.ELASTICSEARCH_INDEX_PREFIX);
  const table = ident(names.tempTable);
  const key = ident(def.key.column);
  const inRange = rangePredicate(def.key.type, `t.${key}`, data.range);
  const notNull = new Set(def.columns.filter((c) => c.notNull).map((c) => c.name));
  const changed: Record<string, number> = {};
  const rejected: Record<string, { count: number; sample: string[] }> = {};
  const tagsDropped: Record<string, number> = {};
  const add = (reason: string, n: number) => {
    if (n > 0) changed[reason] = (changed[reason] ?? 0) + n;
  };
  const reject = (reason: string, r: { count: number; sample: string[] }) => {
    if (r.count === 0) return;
    const prev = rejected[reason];
    rejected[reason] = prev
      ? { count: prev.count + r.count, sample: [...prev.sample, ...r.sample].slice(0, 10) }
      : r;
  };

  const rows = await ctx.scope.transaction(ctx.dbs.api, async (client) => {
    for (const column of def.cleaning.urlColumns) {
      const col = `t.${ident(column)}`;
      const fixed = await client.query(
        `UPDATE ${table} AS t SET ${ident(column)} = 'https://' || ${col}
          WHERE ${inRange} AND ${col} <> '' AND ${col} ${schemeless} AND ${col} !~ '^[a-zA-Z][a-zA-Z0-9+.-]*:'`,
      );
      add('url-scheme-added', fixed.rowCount ?? 0);
      if (notNull.has(column)) {
        reject(
          'invalid-url',
          await rejectRows(
            client,
            table,
            key,
            `${inRange} AND (${col} IS NULL OR ${invalidUrl(col)})`,
          ),
        );
      } else {
        const nulled = await client.query(
          `UPDATE ${table} AS t SET ${ident(column)} = NULL WHERE ${inRange} AND ${col} IS NOT NULL AND ${invalidUrl(col)}`,
        );
        add('invalid-url-nulled', nulled.rowCount ?? 0);
      }
    }

    const license = def.cleaning.licenseColumn;
    if (license) {
      const col = `t.${ident(license)}`;
      const normalised = await client.query(
        `UPDATE ${table} AS t SET ${ident(license)} = lower(btrim(${col}))
          WHERE ${inRange} AND ${col} IS DISTINCT FROM lower(btrim(${col}))`,
      );
      add('license-normalised', normalised.rowCount ?? 0);
      reject(
        'missing-license',
        await rejectRows(client, table, key, `${inRange} AND (${col} IS NULL OR ${col} = '')`),
      );
    }

    const tags = def.cleaning.tags;
    if (tags) {
      const col = ident(tags.column);
      const notArray = await client.query(
        `UPDATE ${table} AS t SET ${col} = NULL
          WHERE ${inRange} AND t.${col} IS NOT NULL AND jsonb_typeof(t.${col}::jsonb) <> 'array'`,
      );
      add('tags-not-array-nulled', notArray.rowCount ?? 0);
      const { rows: tagRows } = await client.query<{
        changed: number;
        dropped: Record<string, number> | null;
      }>(
        `WITH el AS (
           SELECT t.${key} AS k, x.e, x.o, ${tagReason(tags)} AS reason
             FROM ${table} AS t
             CROSS JOIN LATERAL jsonb_array_elements(t.${col}::jsonb) WITH ORDINALITY AS x(e, o)
            WHERE ${inRange} AND jsonb_typeof(t.${col}::jsonb) = 'array'
         ), agg AS (
           SELECT k, coalesce(jsonb_agg(e ORDER BY o) FILTER (WHERE reason IS NULL), '[]'::jsonb) AS kept,
                  count(*) FILTER (WHERE reason IS NOT NULL) AS dropped
             FROM el GROUP BY k
         ), upd AS (
           UPDATE ${table} AS t SET ${col} = agg.kept FROM agg
            WHERE t.${key} = agg.k AND agg.dropped > 0 RETURNING 1
         )
         SELECT (SELECT count(*) FROM upd)::bigint AS changed,
                (SELECT jsonb_object_agg(reason, n) FROM
                  (SELECT reason, count(*)::bigint AS n FROM el WHERE reason IS NOT NULL GROUP BY reason) r) AS dropped`,
      );
      add('tags-filtered', Number(tagRows[0]?.changed ?? 0));
      for (const [reason, n] of Object.entries(tagRows[0]?.dropped ?? {}))
        tagsDropped[reason] = Number(n);
    }

    // The first attempt that commits deletes the rejected rows; a retry (its worker died after
    // the commit) finds none. So the counts are kept with the chunk, in this transaction, and
    // each attempt adds to them (the copy resets them when it replaces the range).
    const { rows: stored } = await client.query<{ clean: Partial<StoredClean> | null }>(
      `SELECT result -> 'clean' AS clean FROM freshet.chunks WHERE run_id = $1 AND chunk = $2 FOR UPDATE`,
      [data.runId, data.chunk],
    );
    const before = stored[0]?.clean ?? {};
    for (const [k, n] of Object.entries(before.changed ?? {})) add(k, n);
    for (const [k, r] of Object.entries(before.rejected ?? {})) reject(k, r);
    for (const [k, n] of Object.entries(before.tagsDropped ?? {}))
      tagsDropped[k] = (tagsDropped[k] ?? 0) + n;
    await client.query(
      `UPDATE freshet.chunks SET result = result || jsonb_build_object('clean', $3::jsonb)
        WHERE run_id = $1 AND chunk = $2`,
      [data.runId, data.chunk, JSON.stringify({ changed, rejected, tagsDropped })],
    );

    const { rows: left } = await client.query<{ n: number }>(
      `SELECT count(*)::bigint AS n FROM ${table} AS t WHERE ${inRange}`,
    );
    return Number(left[0]?.n ?? 0);
  });
  return { rows, changed, rejected, tagsDropped, ms: Date.now() - started };
}

type StoredClean = Pick<CleanResult, 'changed' | 'rejected' | 'tagsDropped'>;
