import { Readable } from 'node:stream';
import { isDeepStrictEqual } from 'node:util';
import { pipeline } from 'node:stream/promises';
import type pg from 'pg';
import { from as copyFrom, to as copyTo } from 'pg-copy-streams';
import {
  columnDefinitions,
  compileRowRules,
  CopyTextParser,
  encodeCopyTextRow,
  ident,
  type MediaDefinition,
} from '@freshet/core';
import { oracleClean, oracleDocuments } from './sql-oracle.js';

/** What the SQL oracle and the row rules made of the same rows, side by side. */
export interface Comparison {
  readonly rows: number;
  readonly sql: Outcomes;
  readonly rules: Outcomes;
  /** Rows in one cleaned table and not the other (json compared as jsonb), with counts. */
  readonly tableDiff: { onlySql: string[]; onlyRules: string[] };
  /** The same, every column compared as its text (json as written, jsonb as jsonb prints it). */
  readonly textDiff: { onlySql: string[]; onlyRules: string[] };
  /** Keys whose sensitivity or document differ, with both sides, at most 10. */
  readonly documentDiff: string[];
  /** Keys compared for their document. */
  readonly documents: number;
}

export interface Outcomes {
  readonly rejected: Record<string, string>;
  readonly changed: Record<string, number>;
  readonly tagsDropped: Record<string, number>;
  readonly kept: number;
  readonly sensitive: number;
}

const sorted = (m: Map<string, string>) =>
  Object.fromEntries([...m].sort(([a], [b]) => (a < b ? -1 : 1)));

/**
 * Runs the SQL oracle on one copy of `def.upstreamTable` and the row rules on another (read with
 * `COPY ... TO STDOUT` text through CopyTextParser, written back with encodeCopyTextRow through
 * `COPY ... FROM STDIN`), then compares rejections, counts, cleaned tables and documents.
 */
export async function compareWithOracle(
  pool: pg.Pool,
  def: MediaDefinition,
  terms: readonly string[],
  label: string,
): Promise<Comparison> {
  const source = ident(def.upstreamTable);
  const sqlTable = `o_${label}`;
  const rulesTable = `r_${label}`;
  const cols = def.columns.map((c) => ident(c.name)).join(', ');
  const client = await pool.connect();
  try {
    await client.query(`SET TimeZone = 'UTC'; SET DateStyle = 'ISO'; SET extra_float_digits = 1`);
    for (const t of [sqlTable, rulesTable]) {
      await client.query(`DROP TABLE IF EXISTS ${ident(t)}`);
      await client.query(`CREATE TABLE ${ident(t)} (${columnDefinitions(def)})`);
    }
    await client.query(`INSERT INTO ${ident(sqlTable)} (${cols}) SELECT ${cols} FROM ${source}`);
    const rowCount = Number(
      (await client.query<{ n: string }>(`SELECT count(*) AS n FROM ${source}`)).rows[0]?.n,
    );

    // The SQL.
    const sqlClean = await oracleClean(client, def, sqlTable);
    const sqlDocs = await oracleDocuments(client, def, terms, sqlTable);

    // The rules.
    const rules = compileRowRules(def, terms);
    const keyIndex = def.columns.findIndex((c) => c.name === def.key.column);
    const rejected = new Map<string, string>();
    const changed: Record<string, number> = {};
    const tagsDropped: Record<string, number> = {};
    const docs = new Map<string, { document: string; sensitive: boolean }>();
    const lines: string[] = [];
    const parser = new CopyTextParser(def.columns.length);
    const stream = client.query(copyTo(`COPY (SELECT ${cols} FROM ${source}) TO STDOUT`));
    for await (const chunk of stream as AsyncIterable<Buffer>) {
      parser.push(chunk, (fields) => {
        const key = fields[keyIndex] as string;
        const outcome = rules.clean(fields);
        if (outcome.rejected !== undefined) {
          rejected.set(key, outcome.rejected);
          return;
        }
        for (const rule of outcome.changed) changed[rule] = (changed[rule] ?? 0) + 1;
        for (const [reason, n] of Object.entries(outcome.tagsDropped ?? {})) {
          tagsDropped[reason] = (tagsDropped[reason] ?? 0) + n;
        }
        docs.set(key, { document: outcome.document, sensitive: outcome.sensitive });
        lines.push(encodeCopyTextRow(outcome.values));
      });
    }
    parser.end();
    await pipeline(
      Readable.from(lines),
      client.query(copyFrom(`COPY ${ident(rulesTable)} (${cols}) FROM STDIN`)),
    );

    const except = async (cast: (c: MediaDefinition['columns'][number]) => string) => {
      const list = def.columns.map(cast).join(', ');
      const one = async (a: string, b: string) =>
        (
          await client.query<{ k: string }>(
            `SELECT k FROM (SELECT ${ident(def.key.column)}::text AS k, ${list} FROM ${ident(a)}
               EXCEPT ALL SELECT ${ident(def.key.column)}::text, ${list} FROM ${ident(b)}) d ORDER BY k LIMIT 20`,
          )
        ).rows.map((r) => r.k);
      return {
        onlySql: await one(sqlTable, rulesTable),
        onlyRules: await one(rulesTable, sqlTable),
      };
    };
    const tableDiff = await except((c) =>
      c.type === 'json' ? `${ident(c.name)}::jsonb` : ident(c.name),
    );
    const textDiff = await except((c) => `${ident(c.name)}::text`);

    const documentDiff: string[] = [];
    for (const [key, expected] of sqlDocs) {
      const got = docs.get(key);
      let problem: string | null = null;
      if (!got) problem = 'no document';
      else if (got.sensitive !== expected.sensitive) {
        problem = `sensitive ${got.sensitive}, SQL ${expected.sensitive}`;
      } else {
        const mine = JSON.parse(got.document) as Record<string, unknown>;
        const { sensitive, ...rest } = mine;
        if (sensitive !== got.sensitive || Object.keys(mine).at(-1) !== 'sensitive') {
          problem = `"sensitive" is not the last field, equal to the outcome's`;
        } else if (!isDeepStrictEqual(rest, JSON.parse(expected.document))) {
          problem = `document ${got.document.slice(0, 600)}\n   SQL ${expected.document.slice(0, 600)}`;
        }
      }
      if (problem && documentDiff.length < 10) documentDiff.push(`${key}: ${problem}`);
    }
    for (const key of docs.keys()) {
      if (!sqlDocs.has(key) && documentDiff.length < 10) documentDiff.push(`${key}: not in SQL`);
    }
    return {
      rows: rowCount,
      sql: {
        rejected: sorted(sqlClean.rejected),
        changed: sqlClean.changed,
        tagsDropped: sqlClean.tagsDropped,
        kept: sqlDocs.size,
        sensitive: [...sqlDocs.values()].filter((d) => d.sensitive).length,
      },
      rules: {
        rejected: sorted(rejected),
        changed,
        tagsDropped,
        kept: docs.size,
        sensitive: [...docs.values()].filter((d) => d.sensitive).length,
      },
      tableDiff,
      textDiff,
      documentDiff,
      documents: sqlDocs.size,
    };
  } finally {
    client.release();
  }
}
