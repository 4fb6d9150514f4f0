// The store's migrations on the real PostgreSQL: a fresh database gets every migration once,
// even from several processes at once; a database an earlier version created (its tables, no
// record of migrations, columns added since missing) is brought up to date with its rows kept.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { ensureRunStore, migrations } from '@freshet/core';
import { createScratchDb, type ScratchDb } from '../helpers/scratch-db.js';

const recorded = async (db: ScratchDb) =>
  (
    await db.pool.query<{ id: number }>('SELECT id FROM freshet.schema_migrations ORDER BY id')
  ).rows.map((r) => r.id);

const columnsOf = async (db: ScratchDb, table: string) =>
  (
    await db.pool.query<{ c: string }>(
      `SELECT attname AS c FROM pg_attribute WHERE attrelid = to_regclass($1) AND attnum > 0 AND NOT attisdropped`,
      [table],
    )
  ).rows.map((r) => r.c);

describe('the freshet schema migrations on PostgreSQL', () => {
  let fresh: ScratchDb;
  let old: ScratchDb;

  before(async () => {
    fresh = await createScratchDb('schema_fresh');
    old = await createScratchDb('schema_old');
  });

  after(async () => {
    await fresh?.drop();
    await old?.drop();
  });

  it('applies every migration once, from four processes starting at once', async () => {
    await Promise.all(Array.from({ length: 4 }, () => ensureRunStore(fresh.pool)));
    assert.deepEqual(
      await recorded(fresh),
      migrations.map((m) => m.id),
    );
    await ensureRunStore(fresh.pool);
    assert.deepEqual(
      await recorded(fresh),
      migrations.map((m) => m.id),
      'nothing is applied twice',
    );
  });

  it('brings a database of an earlier version up to date, keeping its rows', async () => {
    // What an earlier version left: the first migration's tables, without the record of it and
    // without the columns added since.
    const first = migrations[0];
    assert.ok(first);
    await old.pool.query(`CREATE SCHEMA freshet; ${first.sql}`);
    await old.pool.query(
      `INSERT INTO freshet.runs (id, prefix, media, profile, status) VALUES ('20260101-000000-abcd', 'p', 'image', 'production', 'succeeded')`,
    );
    assert.equal((await columnsOf(old, 'freshet.runs')).includes('waiting_reason'), false);
    await ensureRunStore(old.pool);
    assert.deepEqual(
      await recorded(old),
      migrations.map((m) => m.id),
    );
    assert.ok((await columnsOf(old, 'freshet.runs')).includes('waiting_reason'));
    assert.ok((await columnsOf(old, 'freshet.attempts')).includes('progress_at'));
    const { rows } = await old.pool.query<{ id: string }>('SELECT id FROM freshet.runs');
    assert.deepEqual(rows, [{ id: '20260101-000000-abcd' }]);
  });
});
