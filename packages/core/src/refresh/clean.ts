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

const invalidUrl = (col: string) =>
  `(${col} = '' OR ${col} ~ '[[:space:][:cntrl:]]' OR ${col} !~* '^https?://[^/?#[:space:]]+')`;

function arrayLiteral(values: readonly string[]): string {
  return `ARRAY[${values.map((v) => literal(v)).join(', ')}]::text[]`;
}

/**
 * The largest magnitude Elasticsearch's `float` holds (the type of `tags.accuracy` in the
 * mappings): a larger accuracy is refused with the whole document, so it makes the tag malformed.
 */
const FLOAT_MAX = '3.4028234663852886e38';

/**
 * A JSON string PostgreSQL's numeric and Elasticsearch's float both read as a number (optional
 * sign, digits, a short exponent, surrounding spaces); anything longer cannot be a real accuracy.
 */
const NUMERIC_STRING = `'^\\s*[+-]?([0-9]+\\.?[0-9]*|\\.[0-9]+)([eE][+-]?[0-9]{1,3})?\\s*$'`;

/**
 * The parts of a tag element `x.e` the rules read, each extracted once (behind an OFFSET 0 fence,
 * so the planner does not inline them back into every use). The accuracy is compared as numeric,
 * never cast to float8: any number jsonb holds (1e400, 1e-400, 400 digits) is a valid numeric,
 * where a float8 cast fails the whole statement with "out of range".
 */
const tagFields = `SELECT jsonb_typeof(x.e) AS et, jsonb_typeof(x.e -> 'name') AS nt, x.e ->> 'name' AS n,
    lower(x.e ->> 'name') AS ln, x.e ? 'accuracy' AS has_a, jsonb_typeof(x.e -> 'accuracy') AS at,
    CASE jsonb_typeof(x.e -> 'accuracy')
      WHEN 'number' THEN (x.e -> 'accuracy')::numeric
      WHEN 'string' THEN CASE WHEN length(x.e ->> 'accuracy') <= 100
        AND (x.e ->> 'accuracy') ~ ${NUMERIC_STRING} THEN (x.e ->> 'accuracy')::numeric END
    END AS acc,
    jsonb_typeof(x.e -> 'provider') AS pt, x.e ->> 'provider' AS p OFFSET 0`;

/**
 * The reason a tag element (its {@link tagFields} `f`) is dropped, as a SQL CASE (NULL keeps it).
 * Malformed: not an object, a name that is not a string (or longer than the definition's
 * `maxNameLength`), an accuracy that is neither null, a number nor a numeric string, or beyond
 * what Elasticsearch's float holds, a provider that is an object or an array. A blank name is a
 * string: kept, as Openverse keeps it.
 */
function tagReason(tags: NonNullable<MediaDefinition['cleaning']['tags']>): string {
  const substrings = tags.denylistSubstrings.map((s) => `%${s.replace(/[\\%_]/g, '\\$&')}%`);
  return `CASE
    WHEN f.et <> 'object' OR f.nt IS DISTINCT FROM 'string'
      ${tags.maxNameLength === undefined ? '' : `OR length(f.n) > ${tags.maxNameLength}`}
      OR (f.has_a AND f.at <> 'null' AND (f.acc IS NULL OR abs(f.acc) > ${FLOAT_MAX}))
      OR f.pt IN ('object', 'array')
      THEN 'malformed'
    WHEN f.acc < ${Number(tags.minAccuracy)} THEN 'low-accuracy'
    WHEN f.p = ANY(${arrayLiteral(tags.denylistedProviders)}) THEN 'denylisted-provider'
    WHEN f.ln = ANY(${arrayLiteral(tags.denylist.map((t) => t.toLowerCase()))})
      OR f.ln LIKE ANY(${arrayLiteral(substrings.map((t) => t.toLowerCase()))}) THEN 'denylisted'
    END`;
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
    // One pass to reject the rows that cannot be served, one pass to fix the rest: each reads the
    // range once through the key index and rewrites only rows that change. (The update joins its
    // rows by ctid within the range: joined on ctid alone, each chunk hashed the whole table.)
    const urlFix = (col: string) =>
      `CASE WHEN ${col} <> '' AND ${col} !~ '^[a-zA-Z][a-zA-Z0-9+.-]*:' THEN 'https://' || ${col} ELSE ${col} END`;
    // A key twice in the range (the upstream table lacks a unique key) is not a row to pick
    // from: every copy is rejected, so the key is neither doubled nor silently chosen.
    const rejections: { reason: string; when: string }[] = [
      {
        reason: 'duplicate-key',
        when: `t.${key} IN (SELECT d.${key} FROM ${table} AS d WHERE ${rangePredicate(def.key.type, `d.${key}`, data.range)}
                GROUP BY d.${key} HAVING count(*) > 1)`,
      },
    ];
    for (const column of def.cleaning.urlColumns) {
      if (!notNull.has(column)) continue;
      const col = `t.${ident(column)}`;
      rejections.push({
        reason: 'invalid-url',
        when: `${col} IS NULL OR ${invalidUrl(urlFix(col))}`,
      });
    }
    const license = def.cleaning.licenseColumn;
    if (license) {
      const col = `t.${ident(license)}`;
      rejections.push({ reason: 'missing-license', when: `${col} IS NULL OR btrim(${col}) = ''` });
    }
    if (rejections.length > 0) {
      const reasonCase = `CASE ${rejections.map((r) => `WHEN ${r.when} THEN ${literal(r.reason)}`).join(' ')} END`;
      const { rows: gone } = await client.query<{ reason: string; n: number; sample: string[] }>(
        `WITH d AS (
           DELETE FROM ${table} AS t WHERE ${inRange} AND (${rejections.map((r) => `(${r.when})`).join(' OR ')})
           RETURNING t.${key}::text AS k, ${reasonCase} AS reason)
         SELECT reason, count(*)::bigint AS n, (array_agg(k ORDER BY k))[1:10] AS sample FROM d GROUP BY reason`,
      );
      for (const g of gone) reject(g.reason, { count: Number(g.n), sample: g.sample });
    }

    // Columns read as JSON but not stored as jsonb (text, json) may hold what jsonb refuses:
    // invalid JSON, or \u0000 and lone surrogate escapes in a json column. Such values are
    // set to NULL (counted), rather than failing every attempt of the chunk.
    const tags = def.cleaning.tags;
    const columnType = (column: string) => def.columns.find((c) => c.name === column)?.type;
    const jsonColumns = new Set([
      ...(tags ? [tags.column] : []),
      ...Object.values(def.document.fields).flatMap((f) =>
        typeof f === 'string' ? [] : [f.column],
      ),
    ]);
    const unparsed = [...jsonColumns].filter((c) => columnType(c) !== 'jsonb');
    if (unparsed.length > 0) {
      await client.query(
        `CREATE OR REPLACE FUNCTION pg_temp.freshet_is_jsonb(v text) RETURNS boolean
           LANGUAGE plpgsql IMMUTABLE AS $$
           BEGIN PERFORM v::jsonb; RETURN true; EXCEPTION WHEN others THEN RETURN false; END $$`,
      );
      for (const column of unparsed) {
        const col = `t.${ident(column)}`;
        const nulled = await client.query(
          `UPDATE ${table} AS t SET ${ident(column)} = NULL
            WHERE ${inRange} AND ${col} IS NOT NULL AND NOT pg_temp.freshet_is_jsonb(${col}::text)`,
        );
        add('invalid-json-nulled', nulled.rowCount ?? 0);
      }
    }

    const sets: { column: string; value: string }[] = [];
    const flags: { rule: string; expr: string }[] = [];
    // Each URL column's fixed value and its validity are computed once per row, behind OFFSET 0
    // fences: inlined, the regular expressions ran once per use (a dozen times a row).
    const urls = def.cleaning.urlColumns.map((column, i) => ({
      column,
      col: `t.${ident(column)}`,
      fixed: `uf.u${i}`,
      bad: `uf.b${i}`,
    }));
    const urlJoin =
      urls.length === 0
        ? ''
        : `CROSS JOIN LATERAL (
            SELECT ${urls.map((u, i) => `f.u${i}, ${invalidUrl(`f.u${i}`)} AS b${i}`).join(', ')}
              FROM (SELECT ${urls.map((u, i) => `${urlFix(u.col)} AS u${i}`).join(', ')} OFFSET 0) AS f
            OFFSET 0) AS uf`;
    for (const { column, col, fixed, bad } of urls) {
      if (notNull.has(column)) {
        sets.push({ column: ident(column), value: fixed });
        flags.push({ rule: 'url-scheme-added', expr: `${fixed} IS DISTINCT FROM ${col}` });
      } else {
        sets.push({
          column: ident(column),
          value: `CASE WHEN ${col} IS NOT NULL AND ${bad} THEN NULL ELSE ${fixed} END`,
        });
        flags.push({
          rule: 'url-scheme-added',
          expr: `${col} IS NOT NULL AND NOT ${bad} AND ${fixed} <> ${col}`,
        });
        flags.push({ rule: 'invalid-url-nulled', expr: `${col} IS NOT NULL AND ${bad}` });
      }
    }
    if (license) {
      const col = `t.${ident(license)}`;
      sets.push({ column: ident(license), value: `lower(btrim(${col}))` });
      flags.push({
        rule: 'license-normalised',
        expr: `${col} IS DISTINCT FROM lower(btrim(${col}))`,
      });
    }
    let tagJoin = '';
    const tagCounts: string[] = [];
    if (tags) {
      const col = `t.${ident(tags.column)}`;
      tagJoin = `LEFT JOIN LATERAL (
          SELECT coalesce(jsonb_agg(x.e ORDER BY x.o) FILTER (WHERE r.reason IS NULL), '[]'::jsonb) AS kept,
                 count(*) FILTER (WHERE r.reason IS NOT NULL) AS dropped,
                 count(*) FILTER (WHERE r.reason = 'malformed') AS malformed,
                 count(*) FILTER (WHERE r.reason = 'low-accuracy') AS low_accuracy,
                 count(*) FILTER (WHERE r.reason = 'denylisted-provider') AS denylisted_provider,
                 count(*) FILTER (WHERE r.reason = 'denylisted') AS denylisted
            FROM jsonb_array_elements(CASE WHEN jsonb_typeof(${col}::jsonb) = 'array' THEN ${col}::jsonb ELSE '[]'::jsonb END)
                 WITH ORDINALITY AS x(e, o)
            CROSS JOIN LATERAL (SELECT ${tagReason(tags)} AS reason FROM (${tagFields}) AS f) r) tg ON true`;
      const notArray = `${col} IS NOT NULL AND jsonb_typeof(${col}::jsonb) <> 'array'`;
      sets.push({
        column: ident(tags.column),
        value: `CASE WHEN ${notArray} THEN NULL WHEN tg.dropped > 0 THEN tg.kept::${columnType(tags.column) ?? 'jsonb'} ELSE ${col} END`,
      });
      flags.push({ rule: 'tags-not-array-nulled', expr: notArray });
      flags.push({ rule: 'tags-filtered', expr: `tg.dropped > 0` });
      tagCounts.push('malformed', 'low_accuracy', 'denylisted_provider', 'denylisted');
    }
    if (sets.length > 0) {
      const flagCols = flags.map((f, i) => `(${f.expr}) AS f${i}`).join(', ');
      const { rows: counted } = await client.query<Record<string, number>>(
        `WITH src AS (
           SELECT t.ctid AS tid, ${flagCols}${tagCounts.map((c) => `, tg.${c}`).join('')},
                  ${sets.map((set, i) => `${set.value} AS v${i}`).join(', ')}
             FROM ${table} AS t ${urlJoin} ${tagJoin}
            WHERE ${inRange}
         ), upd AS (
           UPDATE ${table} AS t SET ${sets.map((set, i) => `${set.column} = src.v${i}`).join(', ')}
             FROM src WHERE ${inRange} AND t.ctid = src.tid AND (${flags.map((_, i) => `src.f${i}`).join(' OR ')})
           RETURNING 1)
         SELECT ${flags.map((_, i) => `count(*) FILTER (WHERE f${i})::bigint AS f${i}`).join(', ')}
                ${tagCounts.map((c) => `, coalesce(sum(${c}), 0)::bigint AS ${c}`).join('')},
                (SELECT count(*) FROM upd)::bigint AS updated
           FROM src`,
      );
      const row = counted[0] ?? {};
      flags.forEach((f, i) => add(f.rule, Number(row[`f${i}`] ?? 0)));
      for (const c of tagCounts) {
        const n = Number(row[c] ?? 0);
        if (n > 0) tagsDropped[c.replaceAll('_', '-')] = n;
      }
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
