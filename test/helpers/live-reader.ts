import type { EsClient } from '@freshet/core';
import pg from 'pg';

/** A transaction that keeps an ACCESS SHARE lock on a table until released. */
export interface TableHold {
  /** The backend holding the lock. */
  readonly pid: number;
  /** Commits the transaction (the lock goes) and closes the connection. */
  release(): Promise<void>;
}

/**
 * Opens a connection that starts a transaction and reads `table` (`SELECT count(*)`), then keeps
 * the transaction open, the way a long reporting query holds a live table.
 */
export async function holdTable(url: string, table: string): Promise<TableHold> {
  const client = new pg.Client({ connectionString: url, application_name: 'freshet-test-reader' });
  client.on('error', () => undefined);
  await client.connect();
  const { rows } = await client.query<{ pid: number }>('SELECT pg_backend_pid() AS pid');
  await client.query('BEGIN');
  await client.query(`SELECT count(*) FROM "${table}"`);
  return {
    pid: rows[0]?.pid ?? -1,
    async release() {
      try {
        await client.query('COMMIT');
      } finally {
        await client.end();
      }
    },
  };
}

export interface ProbeRecord {
  /** Probes answered or failed so far. */
  readonly done: number;
  /** Row counts answered, in order. */
  readonly answers: readonly number[];
  /** Error messages of failed probes. */
  readonly failures: readonly string[];
  /** Longest probe, in ms (a measurement to report, not to assert). */
  readonly slowestMs: number;
}

export interface Probes {
  record(): ProbeRecord;
  /** Stops firing, waits for the probes in flight and closes their connections. */
  stop(): Promise<ProbeRecord>;
}

/**
 * The API's load on a live table: every `everyMs` a `SELECT count(*)` of `table` starts on its
 * own pooled connection with a 1 s statement timeout, without waiting for the previous one, so a
 * probe stuck behind a lock never holds the next one back. Failures are recorded, never thrown.
 */
export function startProbes(url: string, table: string, everyMs = 150): Probes {
  const pool = new pg.Pool({
    connectionString: url,
    application_name: 'freshet-test-probe',
    statement_timeout: 1000,
    max: 20,
  });
  pool.on('error', () => undefined);
  const answers: number[] = [];
  const failures: string[] = [];
  const inFlight = new Set<Promise<void>>();
  let done = 0;
  let slowestMs = 0;
  const probe = async () => {
    const started = performance.now();
    try {
      const { rows } = await pool.query<{ n: string }>(`SELECT count(*) AS n FROM "${table}"`);
      answers.push(Number(rows[0]?.n ?? -1));
    } catch (err) {
      failures.push((err as Error).message);
    } finally {
      slowestMs = Math.max(slowestMs, performance.now() - started);
      done++;
    }
  };
  const timer = setInterval(() => {
    const p = probe();
    inFlight.add(p);
    void p.finally(() => inFlight.delete(p));
  }, everyMs);
  const record = (): ProbeRecord => ({
    done,
    answers: [...answers],
    failures: [...failures],
    slowestMs,
  });
  return {
    record,
    async stop() {
      clearInterval(timer);
      await Promise.all(inFlight);
      await pool.end();
      return record();
    },
  };
}

/** Searches running without pause, each loop against one index or alias. */
export interface SearchLoad<K extends string> {
  /** Hit counts answered, per kind of loop, in order. */
  readonly answers: Record<K, number[]>;
  /** Failed searches, as `<kind>: <message>`. */
  readonly failures: string[];
  /** Stops the loops and waits for their searches in flight. */
  stop(): Promise<void>;
}

/**
 * The search load of a public API: each of `loops` (a kind and the index or alias it searches)
 * runs a `match_all` count again and again, one at a time, without retries, so a search that
 * fails is seen failing. Failures are recorded, never thrown.
 */
export function startSearchLoad<K extends string>(
  es: EsClient,
  loops: readonly (readonly [K, string])[],
): SearchLoad<K> {
  const answers = Object.fromEntries(loops.map(([kind]) => [kind, [] as number[]])) as Record<
    K,
    number[]
  >;
  const failures: string[] = [];
  let searching = true;
  const running = loops.map(([kind, index]) =>
    (async () => {
      while (searching) {
        try {
          const res = await es.search(
            { index, size: 0, track_total_hits: true, query: { match_all: {} } },
            { maxRetries: 0 },
          );
          const total = res.hits.total;
          answers[kind].push(typeof total === 'number' ? total : (total?.value ?? -1));
        } catch (err) {
          failures.push(`${kind}: ${(err as Error).message}`);
        }
      }
    })(),
  );
  return {
    answers,
    failures,
    async stop() {
      searching = false;
      await Promise.all(running);
    },
  };
}
