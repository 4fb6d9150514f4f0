import express, { type Router } from 'express';
import type { Queue } from 'bullmq';
import type { Logger, Pool } from '@freshet/core';

/** How long each readiness check may take (ms) before it counts as down. */
export const readyTimeoutMs = 3_000;

function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not answer within ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/**
 * `/healthz` (the process is up) and `/readyz` (Redis and the API database answer; 503 if
 * not), both without authentication so container and load-balancer probes can use them. They
 * reveal only up or down, never why: the reason goes to the log.
 */
export function createHealth(deps: { queue: Queue; db: Pool; logger: Logger }): Router {
  const router = express.Router();
  router.get('/healthz', (_req, res) => {
    res.set('Cache-Control', 'no-store').json({ status: 'ok' });
  });
  router.get('/readyz', async (_req, res) => {
    const checks = {
      redis: async () => {
        // Any command is a round trip; this one reads a single hash field.
        await deps.queue.isPaused();
      },
      api: async () => {
        await deps.db.query('SELECT 1');
      },
    };
    const results = await Promise.all(
      Object.entries(checks).map(async ([name, check]) => {
        try {
          await withTimeout(check(), readyTimeoutMs, name);
          return [name, 'ok'] as const;
        } catch (err) {
          deps.logger.warn({ err, service: name }, 'readiness check failed');
          return [name, 'down'] as const;
        }
      }),
    );
    const ready = results.every(([, s]) => s === 'ok');
    res
      .status(ready ? 200 : 503)
      .set('Cache-Control', 'no-store')
      .json({ status: ready ? 'ready' : 'not ready', checks: Object.fromEntries(results) });
  });
  return router;
}
