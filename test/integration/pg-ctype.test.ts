import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import {
  isPgWordChar,
  pgCntrlClass,
  pgLower,
  pgLowerChar,
  pgSpaceClass,
  pgUpperChar,
} from '../../packages/core/src/refresh/rules/pg-ctype.js';

const url = process.env.FRESHET_TEST_ADMIN_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';

interface Point {
  i: number;
  lo: string;
  up: string;
  w: boolean;
  sp: boolean;
  ct: boolean;
}

/**
 * The row rules' character tables (rules/pg-ctype-data.ts, from scripts/gen-pg-ctype.ts) against
 * the server under test, for every code point: a server whose locale differs fails here, and the
 * tables must be regenerated for it.
 */
describe(
  "PostgreSQL's lower(), upper() and character classes, for every code point",
  { timeout: 120_000 },
  () => {
    const client = new pg.Client({ connectionString: url });
    let points: Point[] = [];

    before(async () => {
      await client.connect();
      points = (
        await client.query<Point>(
          `SELECT i, lower(chr(i)) AS lo, upper(chr(i)) AS up, chr(i) ~ '\\w' AS w,
                chr(i) ~ '[[:space:]]' AS sp, chr(i) ~ '[[:cntrl:]]' AS ct
           FROM generate_series(1, 1114111) AS i WHERE i NOT BETWEEN 55296 AND 57343`,
        )
      ).rows;
    });

    after(async () => {
      await client.end();
    });

    it('covers every code point but NUL and the surrogates', () => {
      assert.equal(points.length, 1_114_111 - 2048);
    });

    it('lower() and upper() map each code point as the tables do', () => {
      const wrong: string[] = [];
      for (const p of points) {
        const lo = pgLowerChar(p.i);
        const up = pgUpperChar(p.i);
        if (String.fromCodePoint(lo) !== p.lo || String.fromCodePoint(up) !== p.up) {
          wrong.push(`U+${p.i.toString(16)}: tables ${lo.toString(16)}/${up.toString(16)}`);
        }
      }
      assert.deepEqual(wrong.slice(0, 20), []);
    });

    it('pgLower of a whole string is lower(), also where JavaScript differs', async () => {
      const text = 'İSTANBUL ΑΣ Ǆemal ẞ K 𐐀𐐁 Ⓐ plain ascii MIXED';
      const { rows } = await client.query<{ l: string }>('SELECT lower($1) AS l', [text]);
      assert.equal(pgLower(text), rows[0]?.l);
      assert.notEqual(text.toLowerCase(), rows[0]?.l);
    });

    it('word characters (\\w), [[:space:]] and [[:cntrl:]] are the tables', () => {
      const space = new RegExp(`^[${pgSpaceClass}]$`, 'u');
      const cntrl = new RegExp(`^[${pgCntrlClass}]$`, 'u');
      const wrong: string[] = [];
      for (const p of points) {
        const ch = String.fromCodePoint(p.i);
        if (isPgWordChar(p.i) !== p.w) wrong.push(`U+${p.i.toString(16)} word ${p.w}`);
        if (space.test(ch) !== p.sp) wrong.push(`U+${p.i.toString(16)} space ${p.sp}`);
        if (cntrl.test(ch) !== p.ct) wrong.push(`U+${p.i.toString(16)} cntrl ${p.ct}`);
      }
      assert.deepEqual(wrong.slice(0, 20), []);
    });
  },
);
