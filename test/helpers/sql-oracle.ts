/**
 * The SQL the worker ran before the row rules (refresh/clean.ts's statements and refresh/sql.ts's
 * documentExpression and sensitiveExpression, as of their last version), copied here so the
 * TypeScript rules can be checked against it after clean.ts is gone. It works on a whole plain
 * table (no key ranges, no chunk bookkeeping) and reports each rejected row's key. The statements
 * are otherwise unchanged: keep them so.
 */
import type pg from 'pg';
import { ident, literal, type MediaDefinition } from '@freshet/core';

export interface OracleClean {
  /** Rejected rows: key (as text) -> reason. */
  readonly rejected: Map<string, string>;
  /** Rows changed, by rule, counted as clean.ts counts them. */
  readonly changed: Record<string, number>;
  /** Tags dropped, by reason. */
  readonly tagsDropped: Record<string, number>;
}

const invalidUrl = (col: string) =>
  `(${col} = '' OR ${col} ~ '[[:space:][:cntrl:]]' OR ${col} !~* '^https?://[^/?#[:space:]]+')`;

function arrayLiteral(values: readonly string[]): string {
  return `ARRAY[${values.map((v) => literal(v)).join(', ')}]::text[]`;
}

const FLOAT_MAX = '3.4028234663852886e38';

const NUMERIC_STRING = `'^\\s*[+-]?([0-9]+\\.?[0-9]*|\\.[0-9]+)([eE][+-]?[0-9]{1,3})?\\s*$'`;

const tagFields = `SELECT jsonb_typeof(x.e) AS et, jsonb_typeof(x.e -> 'name') AS nt, x.e ->> 'name' AS n,
    lower(x.e ->> 'name') AS ln, x.e ? 'accuracy' AS has_a, jsonb_typeof(x.e -> 'accuracy') AS at,
    CASE jsonb_typeof(x.e -> 'accuracy')
      WHEN 'number' THEN (x.e -> 'accuracy')::numeric
      WHEN 'string' THEN CASE WHEN length(x.e ->> 'accuracy') <= 100
        AND (x.e ->> 'accuracy') ~ ${NUMERIC_STRING} THEN (x.e ->> 'accuracy')::numeric END
    END AS acc,
    jsonb_typeof(x.e -> 'provider') AS pt, x.e ->> 'provider' AS p OFFSET 0`;

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
 * clean.ts's cleanChunk over all of `table` (which has `def`'s columns), in one transaction on
 * `client`.
 */
export async function oracleClean(
  client: pg.ClientBase,
  def: MediaDefinition,
  tableName: string,
): Promise<OracleClean> {
  const table = ident(tableName);
  const key = ident(def.key.column);
  const inRange = 'TRUE';
  const notNull = new Set(def.columns.filter((c) => c.notNull).map((c) => c.name));
  const changed: Record<string, number> = {};
  const rejected = new Map<string, string>();
  const tagsDropped: Record<string, number> = {};
  const add = (reason: string, n: number) => {
    if (n > 0) changed[reason] = (changed[reason] ?? 0) + n;
  };

  await client.query('BEGIN');
  try {
    const urlFix = (col: string) =>
      `CASE WHEN ${col} <> '' AND ${col} !~ '^[a-zA-Z][a-zA-Z0-9+.-]*:' THEN 'https://' || ${col} ELSE ${col} END`;
    const rejections: { reason: string; when: string }[] = [
      {
        reason: 'duplicate-key',
        when: `t.${key} IN (SELECT d.${key} FROM ${table} AS d WHERE TRUE
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
      const { rows: gone } = await client.query<{ reason: string; k: string }>(
        `WITH d AS (
           DELETE FROM ${table} AS t WHERE ${inRange} AND (${rejections.map((r) => `(${r.when})`).join(' OR ')})
           RETURNING t.${key}::text AS k, ${reasonCase} AS reason)
         SELECT k, reason FROM d`,
      );
      for (const g of gone) rejected.set(g.k, g.reason);
    }

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
    await client.query('COMMIT');
  } catch (err) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw err;
  }
  return { rejected, changed, tagsDropped };
}

// --- refresh/sql.ts ---------------------------------------------------------------------------

function regexEscape(term: string): string {
  return term.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

function columnTypeOf(def: MediaDefinition, column: string): string {
  return def.columns.find((c) => c.name === column)?.type ?? 'text';
}

function fieldExpression(def: MediaDefinition, field: string): string {
  const spec = def.document.fields[field];
  if (spec === undefined) throw new Error(`unknown document field ${field}`);
  if (typeof spec === 'string') return `t.${ident(spec)}`;
  return `t.${ident(spec.column)} ->> ${literal(spec.key)}`;
}

function fieldText(def: MediaDefinition, field: string): string {
  const spec = def.document.fields[field];
  if (spec === undefined) throw new Error(`unknown document field ${field}`);
  if (typeof spec !== 'string') return fieldExpression(def, field);
  const type = columnTypeOf(def, spec);
  const col = `t.${ident(spec)}`;
  if (type === 'jsonb' || type === 'json') {
    return `CASE WHEN jsonb_typeof(${col}::jsonb) = 'array' THEN (SELECT string_agg(coalesce(e ->> 'name', CASE WHEN jsonb_typeof(e) = 'string' THEN e #>> '{}' END), ' ') FROM jsonb_array_elements(${col}::jsonb) AS e) ELSE ${col}::text END`;
  }
  if (type.endsWith('[]')) return `array_to_string(${col}, ' ')`;
  return `${col}::text`;
}

/** sensitiveExpression: SQL boolean over the row alias `t`. */
export function oracleSensitiveExpression(def: MediaDefinition, terms: readonly string[]): string {
  if (terms.length === 0 || def.document.sensitiveFields.length === 0) return 'false';
  const pattern = `\\m(${terms.map(regexEscape).join('|')})\\M`;
  const text = def.document.sensitiveFields
    .map((f) => `coalesce(${fieldText(def, f)}, '')`)
    .join(` || ' ' || `);
  return `((${text}) ~* ${literal(pattern)})`;
}

/** documentExpression: SQL text of the JSON document of the row alias `t`. */
export function oracleDocumentExpression(def: MediaDefinition): string {
  const pairs = Object.keys(def.document.fields).map(
    (field) => `${literal(field)}, ${fieldExpression(def, field)}`,
  );
  return `json_build_object(${pairs.join(', ')})::text`;
}

/** Each row's document and sensitivity, by key, as the SQL computes them (TimeZone UTC). */
export async function oracleDocuments(
  client: pg.ClientBase,
  def: MediaDefinition,
  terms: readonly string[],
  tableName: string,
): Promise<Map<string, { document: string; sensitive: boolean }>> {
  await client.query(`SET TimeZone = 'UTC'`);
  const { rows } = await client.query<{ k: string; document: string; sensitive: boolean }>(
    `SELECT t.${ident(def.key.column)}::text AS k, ${oracleDocumentExpression(def)} AS document,
            ${oracleSensitiveExpression(def, terms)} AS sensitive
       FROM ${ident(tableName)} AS t`,
  );
  return new Map(rows.map((r) => [r.k, { document: r.document, sensitive: r.sensitive }]));
}
