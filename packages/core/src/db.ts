import pg from 'pg';
import type { Config } from './config.js';
import { maskSecrets } from './redact.js';

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
  // A connection lost while checked out emits 'error' on the client: without a listener, a crash.
  const onError = () => undefined;
  client.on('error', onError);
  let broken: Error | undefined;
  try {
    await client.query('BEGIN');
    const result = await fn(client);
    await client.query('COMMIT');
    return result;
  } catch (err) {
    await client.query('ROLLBACK').catch((e: Error) => (broken = e));
    throw err;
  } finally {
    client.removeListener('error', onError);
    // A connection that could not even roll back is discarded, not handed to the next caller.
    client.release(broken);
  }
}

/** Checks a database answers; the error names the setting and the URL (password hidden). */
export async function checkDatabase(pool: pg.Pool, setting: string, url: string): Promise<void> {
  try {
    await pool.query('SELECT 1');
  } catch (err) {
    throw new Error(
      maskSecrets(`cannot reach PostgreSQL at ${url} (${setting}): ${(err as Error).message}`),
      { cause: err },
    );
  }
}

/** The advisory lock every schema change of Freshet's store takes, so two never race. */
export const schemaLock = 74657201;

/**
 * Runs `fn` on one session holding {@link schemaLock}, so processes starting together never race
 * on the schema. A session that could not unlock is discarded (closing it unlocks).
 */
export async function withSchemaLock(
  pool: pg.Pool,
  fn: (client: pg.PoolClient) => Promise<void>,
): Promise<void> {
  const client = await pool.connect();
  // A connection lost while checked out emits 'error' on the client: without a listener, a crash.
  const onError = () => undefined;
  client.on('error', onError);
  let broken: Error | undefined;
  try {
    await client.query('SELECT pg_advisory_lock($1)', [schemaLock]);
    await fn(client);
  } finally {
    await client
      .query('SELECT pg_advisory_unlock($1)', [schemaLock])
      .catch((err: Error) => (broken = err));
    client.removeListener('error', onError);
    client.release(broken);
  }
}
