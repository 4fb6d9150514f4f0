import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import express, { type Express, type NextFunction, type Request, type Response } from 'express';
import {
  createNotifier,
  dashboardRunUrl,
  ensureRunStore,
  redisReadyWithin,
  startMonitor,
  startReconciler,
  watchRedis,
  type Config,
  type Logger,
  type Monitor,
  type Reconciler,
  type Notifier,
} from '@freshet/core';
import { openProducer, type Producer } from '@freshet/control';
import { createApi } from './api.js';
import { rejectCrossSite, requireAuth, roleTokens, type Role, type RoleTokens } from './auth.js';
import { boardPath, createBoards } from './board.js';
import { createHealth } from './health.js';
import { errorHandler, notFound, requireRedis } from './http-errors.js';
import { createLoginThrottle } from './login-throttle.js';
import { createMetrics, type DashboardMetrics } from './metrics.js';
import { createPages } from './pages.js';
import { rejectBadQuery } from './query-guard.js';
import { RunView } from '@freshet/control';
import { Schedules } from './schedules.js';

/** Options of {@link startDashboard}. */
export interface DashboardOptions {
  /** Address to listen on; default `0.0.0.0` (all interfaces, so a container's port works). */
  readonly host?: string;
}

/** A running dashboard. */
export interface Dashboard {
  /** Base URL to reach it from this machine, like `http://127.0.0.1:3000`. */
  readonly url: string;
  readonly port: number;
  /** Stops listening, ends open connections, then closes Redis and database connections. */
  close(): Promise<void>;
}

/** How long `close()` lets in-flight requests finish before cutting their connections (ms). */
const drainMs = 5_000;

/** Logs one line per request: method, path, status, duration and role; never headers or bodies. */
function requestLog(log: Logger) {
  return (req: Request, res: Response, next: NextFunction) => {
    const started = performance.now();
    res.on('finish', () => {
      const fields = {
        method: req.method,
        path: req.originalUrl.split('?')[0],
        status: res.statusCode,
        ms: Math.round(performance.now() - started),
        role: (res.locals as { role?: Role }).role,
      };
      if (res.statusCode >= 500) log.warn(fields, 'request');
      else if (req.method !== 'GET' && req.method !== 'HEAD') log.info(fields, 'request');
      else log.debug(fields, 'request');
    });
    next();
  };
}

function securityHeaders(_req: Request, res: Response, next: NextFunction): void {
  res.set({
    'X-Content-Type-Options': 'nosniff',
    'Referrer-Policy': 'no-referrer',
    'X-Frame-Options': 'DENY',
  });
  next();
}

/**
 * The dashboard's express app: `/healthz` and `/readyz` open; everything else (run view at
 * `/`, REST API at `/api`, Bull Board at `/queues`, Prometheus text at `/metrics`) behind the
 * operator or viewer token.
 */
export function createDashboardApp(deps: {
  producer: Producer;
  tokens: RoleTokens;
  logger: Logger;
  metrics: DashboardMetrics;
}): Express {
  const { producer, tokens, logger, metrics } = deps;
  const view = new RunView(producer.api, producer.queues.prefix);
  const schedules = new Schedules({
    config: producer.config,
    media: producer.media,
    api: producer.api,
    prefix: producer.queues.prefix,
  });
  // Requests that need Redis are refused at once while it is away, with the reason.
  const redis = watchRedis(producer.queues.redis, producer.config.REDIS_URL);
  const app = express();
  app.disable('x-powered-by');
  app.set('trust proxy', false);
  app.use(securityHeaders, requestLog(logger));
  app.use(createHealth({ queue: producer.queues.stage, db: producer.api, logger }));
  const throttle = createLoginThrottle({
    failures: producer.config.DASHBOARD_LOGIN_FAILURES,
    windowMs: producer.config.DASHBOARD_LOGIN_WINDOW_MS,
    logger,
  });
  app.use(
    requireAuth(tokens, throttle),
    rejectCrossSite(producer.config.DASHBOARD_PUBLIC_URL),
    rejectBadQuery(),
  );
  app.get('/metrics', requireRedis(redis), async (_req, res) => {
    const text = await metrics.render();
    res
      .set('Content-Type', metrics.registry.contentType)
      .set('Cache-Control', 'no-store')
      .send(text);
  });
  app.use('/api', createApi({ producer, view, schedules, logger, redis }), notFound());
  app.use(boardPath, createBoards(producer.queues.all(), { redis, logger }));
  app.use(createPages());
  app.use(notFound());
  app.use(errorHandler(logger, redis));
  return app;
}

function listen(server: Server, port: number, host: string): Promise<AddressInfo> {
  return new Promise((resolve, reject) => {
    const onError = (err: Error) => reject(err);
    server.once('error', onError);
    server.listen(port, host, () => {
      server.off('error', onError);
      resolve(server.address() as AddressInfo);
    });
  });
}

function closeServer(server: Server): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => server.closeAllConnections(), drainMs);
    server.close(() => {
      clearTimeout(timer);
      resolve();
    });
    server.closeIdleConnections();
  });
}

/** How long the dashboard waits for its Redis connection before it listens anyway (ms). */
const REDIS_START_WAIT_MS = 5_000;

/**
 * Starts the dashboard on DASHBOARD_PORT (0 picks a free port, for tests). It opens its own
 * producer connections (Redis queues, API database) and creates the run store schema if
 * missing. Throws a UserError before connecting anything if neither FRESHET_OPERATOR_TOKEN nor
 * FRESHET_VIEWER_TOKEN is set; a role whose token is not set cannot sign in.
 *
 * The dashboard is the always-on process, so it also runs the stuck-run monitor of its queue
 * prefix: every MONITOR_INTERVAL_MS it alerts (ALERT_WEBHOOK_URL) on runs without progress for
 * STUCK_AFTER_MS and re-sends failed, blocked and succeeded alerts that were never delivered,
 * with links to DASHBOARD_PUBLIC_URL. Without ALERT_WEBHOOK_URL the monitor stays idle. Alerts
 * are deduplicated in PostgreSQL, so several dashboard replicas may run it at once.
 */
export async function startDashboard(
  config: Config,
  logger: Logger,
  opts: DashboardOptions = {},
): Promise<Dashboard> {
  const tokens = roleTokens(config);
  const log = logger.child({ app: 'dashboard' });
  const host = opts.host ?? '0.0.0.0';
  const producer = openProducer(config);
  let server: Server | undefined;
  let notifier: Notifier | undefined;
  let monitor: Monitor | undefined;
  let reconciler: Reconciler | undefined;
  /** Stops the monitor and the reconciler, then lets alerts being sent finish; never throws. */
  const stopAlerts = async () => {
    for (const step of [
      () => reconciler?.close(),
      () => monitor?.close(),
      () => notifier?.close(),
    ]) {
      try {
        await step();
      } catch (err) {
        log.warn({ err }, 'error during shutdown');
      }
    }
  };
  try {
    await ensureRunStore(producer.api);
    notifier = createNotifier(config, log, {
      api: producer.api,
      runUrl: dashboardRunUrl(config),
    });
    monitor = startMonitor({
      config,
      api: producer.api,
      notifier,
      logger: log,
      prefix: producer.queues.prefix,
    });
    reconciler = startReconciler({
      api: producer.api,
      queues: producer.queues,
      prefix: producer.queues.prefix,
      logger: log,
      notifier,
      intervalMs: config.RECONCILE_INTERVAL_MS,
    });
    const metrics = createMetrics({
      queues: producer.queues.all(),
      redis: producer.queues.redis,
      db: producer.api,
      prefix: producer.queues.prefix,
      logger: log,
    });
    const app = createDashboardApp({ producer, tokens, logger: log, metrics });
    // Requests that need Redis are refused while its connection is not ready: the first ones
    // should not be refused only because the connection is still being made.
    if (!(await redisReadyWithin(producer.queues.redis, REDIS_START_WAIT_MS))) {
      log.warn(
        { waitedMs: REDIS_START_WAIT_MS },
        'Redis is not reachable yet; the dashboard starts and answers 503 where Redis is needed',
      );
    }
    server = createServer(app);
    const address = await listen(server, config.DASHBOARD_PORT, host);
    const shownHost = host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host;
    const url = `http://${shownHost.includes(':') ? `[${shownHost}]` : shownHost}:${address.port}`;
    log.info(
      {
        url,
        host,
        port: address.port,
        prefix: producer.queues.prefix,
        roles: Object.keys(tokens),
      },
      'dashboard started',
    );
    const listening = server;
    let closing: Promise<void> | undefined;
    return {
      url,
      port: address.port,
      close() {
        closing ??= (async () => {
          for (const step of [() => closeServer(listening), stopAlerts, () => producer.close()]) {
            try {
              await step();
            } catch (err) {
              log.warn({ err }, 'error during shutdown');
            }
          }
          log.info('dashboard stopped');
        })();
        return closing;
      },
    };
  } catch (err) {
    if (server?.listening) await closeServer(server);
    await stopAlerts();
    await producer.close();
    throw err;
  }
}
