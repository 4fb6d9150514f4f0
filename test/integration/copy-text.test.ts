import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { after, before, describe, it } from 'node:test';
import { from as copyFrom, to as copyTo } from 'pg-copy-streams';
import { CopyTextParser, encodeCopyTextRow } from '@freshet/core';
import { createScratchDb, type ScratchDb } from '../helpers/scratch-db.js';

type Row = (string | null)[];

/** Values COPY must carry intact: one row each, in a text column and a varchar[] column. */
const values: (string | null)[] = [
  null,
  '',
  '\\N',
  'N',
  '\\',
  '\\\\',
  '\\.',
  'tab\tin the middle',
  '\ttab first',
  'tab last\t',
  'new\nline',
  '\r\ncrlf',
  'back\\slash',
  'C:\\archive\\001.tif',
  'émoji 😀 and 𝄞 and RTL שלום',
  '\u0001\u0002\b\f\u000b\u001b\u001f\u007f\u0080\u009f',
  ' ',
  'x'.repeat(200_000),
  '😀'.repeat(40_000),
  '"quoted", {braces}, NULL',
];

describe('COPY text through PostgreSQL', { timeout: 60_000 }, () => {
  let db: ScratchDb;

  before(async () => {
    db = await createScratchDb('copytext');
    await db.pool.query(`CREATE TABLE src (n int, t text, a text[], j jsonb)`);
    await db.pool.query(`CREATE TABLE dst (n int, t text, a text[], j jsonb)`);
    for (const [n, v] of values.entries()) {
      await db.pool.query(
        `INSERT INTO src VALUES ($1, $2, CASE WHEN $2::text IS NULL THEN NULL ELSE ARRAY[$2::text, NULL, 'x'] END, to_jsonb($2::text))`,
        [n, v],
      );
    }
  });

  after(async () => {
    await db?.drop();
  });

  const copyOut = async (table: string): Promise<Row[]> => {
    const client = await db.pool.connect();
    try {
      const rows: Row[] = [];
      const parser = new CopyTextParser(4);
      const stream = client.query(copyTo(`COPY (SELECT * FROM ${table} ORDER BY n) TO STDOUT`));
      for await (const chunk of stream as AsyncIterable<Buffer>) {
        parser.push(chunk, (fields) => rows.push(fields));
      }
      parser.end();
      return rows;
    } finally {
      client.release();
    }
  };

  it('the parser reads what COPY TO writes', async () => {
    const rows = await copyOut('src');
    assert.deepEqual(
      rows.map((r) => r[1]),
      values,
    );
    const { rows: expected } = await db.pool.query<{ a: string | null; j: string | null }>(
      `SELECT a::text AS a, j::text AS j FROM src ORDER BY n`,
    );
    assert.deepEqual(
      rows.map((r) => [r[2], r[3]]),
      expected.map((e) => [e.a, e.j]),
    );
  });

  it('COPY FROM reads what the encoder writes (in chunks of any size)', async () => {
    const rows = await copyOut('src');
    const text = Buffer.from(rows.map(encodeCopyTextRow).join(''), 'utf8');
    const chunks: Buffer[] = [];
    for (let i = 0; i < text.length; i += 4099) chunks.push(text.subarray(i, i + 4099));
    const client = await db.pool.connect();
    try {
      await pipeline(Readable.from(chunks), client.query(copyFrom(`COPY dst FROM STDIN`)));
    } finally {
      client.release();
    }
    const { rows: diff } = await db.pool.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM ((SELECT * FROM src EXCEPT ALL SELECT * FROM dst)
         UNION ALL (SELECT * FROM dst EXCEPT ALL SELECT * FROM src)) d`,
    );
    assert.equal(diff[0]?.n, 0);
    const { rows: back } = await db.pool.query<{ t: string | null }>(
      `SELECT t FROM dst ORDER BY n`,
    );
    assert.deepEqual(
      back.map((r) => r.t),
      values,
    );
  });
});
