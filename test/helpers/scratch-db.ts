import { randomBytes } from 'node:crypto';
import pg from 'pg';

const adminUrl =
  process.env.FRESHET_TEST_ADMIN_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';

/** A database of the test's own on the shared server: a pool on it, and `drop()` to remove it. */
export interface ScratchDb {
  readonly name: string;
  readonly url: string;
  readonly pool: pg.Pool;
  drop(): Promise<void>;
}

/** Creates `freshet_t<random>_<label>`; `drop()` closes the pool and drops it (forcefully). */
export async function createScratchDb(label: string): Promise<ScratchDb> {
  const name = `freshet_t${randomBytes(3).toString('hex')}_${label}`;
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  try {
    await admin.query(`CREATE DATABASE ${name}`);
  } finally {
    await admin.end();
  }
  const u = new URL(adminUrl);
  u.pathname = `/${name}`;
  const pool = new pg.Pool({ connectionString: u.toString(), max: 4 });
  pool.on('error', () => undefined);
  return {
    name,
    url: u.toString(),
    pool,
    async drop() {
      await pool.end();
      const a = new pg.Client({ connectionString: adminUrl });
      await a.connect();
      try {
        await a.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      } finally {
        await a.end();
      }
    },
  };
}
