import pg from 'pg';
import { redactUrl, type Config } from './config.js';

export type Pool = pg.Pool;
export type PoolClient = pg.PoolClient;

/** Connection pools for the two databases Freshet works between. */
export interface Databases {
  readonly catalog: pg.Pool;
  readonly api: pg.Pool;
  close(): Promise<void>;
}

/** Parse int8 as number when it fits (counts), else keep string; numeric stays string. */
pg.types.setTypeParser(pg.types.builtins.INT8, (v) => {
  const n = Number(v);
  return Number.isSafeInteger(n) ? n : v;
});

/**
 * Opens a pool on `url` with a short connect timeout so a wrong URL fails fast. Its sessions run
 * without JIT compilation unless `jit`: a chunk's statements are costed high enough to be
 * compiled, and compiling took longer (about 1.2 s a statement) than running them.
 */
export function createPool(url: string, applicationName: string, max = 10, jit = false): pg.Pool {
  const pool = new pg.Pool({
    connectionString: url,
    max,
    connectionTimeoutMillis: 5_000,
    application_name: applicationName,
    ...(jit ? {} : { options: '-c jit=off' }),
  });
  // An idle client losing its connection (server restart, terminated backend) must not crash the process.
  pool.on('error', () => undefined);
  return pool;
}

export function createDatabases(config: Config, applicationName = 'freshet'): Databases {
  const catalog = createPool(config.CATALOG_DATABASE_URL, applicationName, 10, config.PG_JIT);
  const api = createPool(config.API_DATABASE_URL, applicationName, 10, config.PG_JIT);
  return {
    catalog,
    api,
    async close() {
      await Promise.allSettled([catalog.end(), api.end()]);
    },
  };
}

/** Runs `fn` in a transaction on a client from `pool`; rolls back on error. */
export async function withTransaction<T>(
  pool: pg.Pool,
  fn: (client: pg.PoolClient) => Promise<T>,
): Promise<T> {
  const client = await pool.connect();
  try {
    await client.query('BEGIN');
    const result = await fn(client);
    await client.query('COMMIT');
    return result;
  } catch (err) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw err;
  } finally {
    client.release();
  }
}

/** Checks a database answers; the error names the setting and the URL (password hidden). */
export async function checkDatabase(pool: pg.Pool, setting: string, url: string): Promise<void> {
  try {
    await pool.query('SELECT 1');
  } catch (err) {
    throw new Error(
      `cannot reach PostgreSQL at ${redactUrl(url)} (${setting}): ${(err as Error).message}`,
      { cause: err },
    );
  }
}
