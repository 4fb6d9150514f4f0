import type pg from 'pg';
import { ident } from '../sql.js';

/** How to put back what {@link dropIndexesForLoad} dropped. */
export interface DroppedIndexes {
  /** How many unique/primary-key constraints and plain indexes were dropped. */
  readonly count: number;
  /** Re-creates them (in the same transaction); each index is built in one sort. */
  restore(): Promise<void>;
}

const none: DroppedIndexes = { count: 0, restore: () => Promise.resolve() };

/**
 * Drops the primary-key/unique constraints and plain indexes of an empty table about to be bulk
 * loaded, and returns how to re-create them from their own definitions (pg_get_constraintdef,
 * pg_get_indexdef), so whatever the schema says is what comes back. Building an index once after
 * the load is about twice as fast as maintaining three of them row by row.
 *
 * Must run inside the loading transaction, so a failed load rolls the drop back too. Drops
 * nothing when another table's foreign key depends on this one, or when a name needs quoting
 * rules that {@link ident} does not accept.
 */
export async function dropIndexesForLoad(
  client: pg.PoolClient,
  table: string,
): Promise<DroppedIndexes> {
  const qualified = ident(table);
  const referenced = await client.query(
    `SELECT 1 FROM pg_constraint WHERE contype = 'f' AND confrelid = $1::regclass LIMIT 1`,
    [qualified],
  );
  if (referenced.rowCount) return none;
  const constraints = await client.query<{ name: string; definition: string }>(
    `SELECT conname AS name, pg_get_constraintdef(oid) AS definition
       FROM pg_constraint
      WHERE conrelid = $1::regclass AND contype IN ('p', 'u')
      ORDER BY contype, conname`,
    [qualified],
  );
  const indexes = await client.query<{ name: string; definition: string }>(
    `SELECT c.relname AS name, pg_get_indexdef(i.indexrelid) AS definition
       FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
      WHERE i.indrelid = $1::regclass
        AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = i.indexrelid)
      ORDER BY c.relname`,
    [qualified],
  );
  let names: { constraints: string[]; indexes: string[] };
  try {
    names = {
      constraints: constraints.rows.map((r) => ident(r.name, 'constraint name')),
      indexes: indexes.rows.map((r) => ident(r.name, 'index name')),
    };
  } catch {
    return none;
  }
  const count = names.constraints.length + names.indexes.length;
  if (count === 0) return none;
  if (names.constraints.length > 0) {
    await client.query(
      `ALTER TABLE ${qualified} ${names.constraints.map((n) => `DROP CONSTRAINT ${n}`).join(', ')}`,
    );
  }
  for (const name of names.indexes) await client.query(`DROP INDEX ${name}`);
  return {
    count,
    async restore() {
      // Index builds sort in memory up to this much (per build), instead of spilling to disk.
      await client.query(`SET LOCAL maintenance_work_mem = '256MB'`);
      if (constraints.rows.length > 0) {
        const adds = constraints.rows.map(
          (r, i) => `ADD CONSTRAINT ${names.constraints[i] as string} ${r.definition}`,
        );
        await client.query(`ALTER TABLE ${qualified} ${adds.join(', ')}`);
      }
      for (const r of indexes.rows) await client.query(r.definition);
    },
  };
}
