import { randomBytes } from 'node:crypto';
import { Writable } from 'node:stream';
import { createLogger, type Logger } from '@freshet/core';
import { startDashboard, type Dashboard } from '@freshet/dashboard';
import { createTestEnv, type TestEnv } from './env.js';

/** How a request signs in: as a role (Bearer or Basic), with raw headers, or not at all. */
export type As = 'operator' | 'viewer' | 'operator-basic' | 'viewer-basic' | 'nobody';

/** A dashboard on an isolated test world, with its log lines captured. */
export interface DashboardWorld {
  readonly t: TestEnv;
  readonly dashboard: Dashboard;
  readonly tokens: { readonly operator: string; readonly viewer: string };
  /** Every log line the dashboard wrote (JSON text). */
  readonly logs: string[];
  readonly logger: Logger;
  /** Headers that sign in as `as`. */
  auth(as: As): Record<string, string>;
  /** A request to the dashboard; `json` is sent as a JSON body. */
  request(
    path: string,
    opts?: {
      as?: As;
      method?: string;
      json?: unknown;
      body?: string;
      headers?: Record<string, string>;
    },
  ): Promise<Response>;
  close(): Promise<void>;
}

/**
 * Starts a dashboard on a random port of 127.0.0.1 over a fresh test world (its own databases,
 * queue prefix and index prefix), with random operator and viewer tokens.
 */
export async function createDashboardWorld(
  overrides: Record<string, string> = {},
): Promise<DashboardWorld> {
  const tokens = {
    operator: `op-${randomBytes(12).toString('hex')}`,
    viewer: `vw-${randomBytes(12).toString('hex')}`,
  };
  const t = await createTestEnv({
    FRESHET_OPERATOR_TOKEN: tokens.operator,
    FRESHET_VIEWER_TOKEN: tokens.viewer,
    DASHBOARD_PORT: '0',
    LOG_LEVEL: 'debug',
    ...overrides,
  });
  const logs: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      logs.push(...chunk.toString('utf8').split('\n').filter(Boolean));
      done();
    },
  });
  const logger = createLogger(t.config, sink);
  let dashboard: Dashboard;
  try {
    dashboard = await startDashboard(t.config, logger, { host: '127.0.0.1' });
  } catch (err) {
    await t.close();
    throw err;
  }
  const auth = (as: As): Record<string, string> => {
    switch (as) {
      case 'operator':
      case 'viewer':
        return { authorization: `Bearer ${tokens[as]}` };
      case 'operator-basic':
      case 'viewer-basic': {
        const role = as === 'operator-basic' ? 'operator' : 'viewer';
        const basic = Buffer.from(`${role}:${tokens[role]}`).toString('base64');
        return { authorization: `Basic ${basic}` };
      }
      default:
        return {};
    }
  };
  return {
    t,
    dashboard,
    tokens,
    logs,
    logger,
    auth,
    request(path, opts = {}) {
      // As the run view's script does: every changing request says it is not a form.
      const method = opts.method ?? 'GET';
      const headers: Record<string, string> = {
        ...auth(opts.as ?? 'nobody'),
        ...(method === 'GET' ? {} : { 'x-requested-with': 'freshet-test' }),
        ...opts.headers,
      };
      let body = opts.body;
      if (opts.json !== undefined) {
        body = JSON.stringify(opts.json);
        headers['content-type'] ??= 'application/json';
      }
      return fetch(`${dashboard.url}${path}`, {
        method,
        headers,
        ...(body !== undefined ? { body } : {}),
        redirect: 'manual',
      });
    },
    async close() {
      await dashboard.close();
      await t.close();
    },
  };
}
