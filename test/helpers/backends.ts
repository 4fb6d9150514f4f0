import pg from 'pg';

export interface SeenBackend {
  readonly pid: number;
  readonly firstSeen: Date;
  readonly lastSeen: Date;
  /** The first observation (server clock) at which the backend was no longer there. */
  readonly goneBy: Date;
}

export interface BackendWatch {
  /** Backends whose query contained the pattern, in order of first sight. */
  backends(): SeenBackend[];
  stop(): Promise<void>;
}

/**
 * Samples pg_stat_activity every 50 ms (server clock) for active backends of `url`'s database
 * (other test runs share the server) whose query contains `pattern`, recording when each was first and last seen and when it was first seen gone. This
 * is a measurement, not a wait: tests await events and read the record afterwards.
 */
export function watchBackends(url: string, pattern: string): BackendWatch {
  const client = new pg.Client({ connectionString: url, application_name: 'freshet-test-watch' });
  client.on('error', () => undefined);
  const seen = new Map<number, { firstSeen: Date; lastSeen: Date; goneBy?: Date }>();
  let running = true;
  const loop = (async () => {
    await client.connect();
    while (running) {
      const { rows } = await client.query<{ now: Date; pid: number | null }>(
        `SELECT now() AS now, a.pid FROM (SELECT 1) one LEFT JOIN pg_stat_activity a
           ON a.state = 'active' AND a.pid <> pg_backend_pid() AND position($1 in a.query) > 0
              AND a.application_name LIKE 'freshet %' AND a.datname = current_database()`,
        [pattern],
      );
      const now = rows[0]?.now ?? new Date();
      const present = new Set(rows.flatMap((r) => (r.pid === null ? [] : [r.pid])));
      for (const pid of present) {
        const s = seen.get(pid);
        if (s) s.lastSeen = now;
        else seen.set(pid, { firstSeen: now, lastSeen: now });
      }
      for (const [pid, s] of seen) if (!present.has(pid) && !s.goneBy) s.goneBy = now;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    await client.end();
  })();
  return {
    backends: () =>
      [...seen.entries()].map(([pid, s]) => ({
        pid,
        firstSeen: s.firstSeen,
        lastSeen: s.lastSeen,
        goneBy: s.goneBy ?? new Date(8.64e15),
      })),
    async stop() {
      running = false;
      await loop;
    },
  };
}

/** Polls `condition` every 50 ms until it holds, or fails after `timeoutMs` naming `what`. */
export async function waitUntil(
  condition: () => boolean | Promise<boolean>,
  what: string,
  timeoutMs = 30_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline)
      throw new Error(`timed out after ${timeoutMs} ms waiting until ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}
