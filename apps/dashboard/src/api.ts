import express, { type Request, type Response, type Router } from 'express';
import { profiles, runIdPattern, type Logger, type RedisWatch } from '@freshet/core';
import {
  approveRun,
  buildsView,
  cancelRun,
  discardRun,
  pauseRun,
  resumeRun,
  rollbackMedia,
  planRefresh,
  type Producer,
  retryRun,
  startRefresh,
} from '@freshet/control';
import { requireOperator, roleOf } from './auth.js';
import { bodyLimitBytes, HttpError, requireRedis } from './http-errors.js';
import type { RunView } from '@freshet/control';
import { maxUpcoming, type Schedules } from './schedules.js';

/** Fields `POST /api/runs` accepts. */
const startFields = new Set([
  'media',
  'profile',
  'chunkSizeRows',
  'shadow',
  'allowShrink',
  'dryRun',
]);

/** The body of `POST /api/runs`, checked. */
export interface StartBody {
  media: string;
  profile?: string;
  chunkSizeRows?: number;
  /** Build beside the live table and index, compare, promote within thresholds or on approval. */
  shadow?: boolean;
  /** Approve ahead of time a build that shrank beyond the shrink guard's limits: promote at once. */
  allowShrink?: boolean;
  /** Answer the plan of the refresh instead of starting it; nothing is changed anywhere. */
  dryRun?: boolean;
}

function optionalBoolean(b: Record<string, unknown>, name: string): boolean | undefined {
  const v = b[name];
  if (v === undefined) return undefined;
  if (typeof v !== 'boolean') {
    throw new HttpError(400, `${name} must be true or false, got ${String(JSON.stringify(v))}`);
  }
  return v;
}

/** Checks a start request; every problem is a 400 with a message naming the field. */
export function parseStartBody(body: unknown): StartBody {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw new HttpError(400, 'send a JSON object like {"media": "image", "profile": "staging"}');
  }
  const b = body as Record<string, unknown>;
  const unknown = Object.keys(b).filter((k) => !startFields.has(k));
  if (unknown.length > 0) {
    throw new HttpError(
      400,
      `unknown field(s) ${unknown.map((k) => JSON.stringify(k)).join(', ')}; expected ${[...startFields].join(', ')}`,
    );
  }
  if (typeof b.media !== 'string' || b.media === '') {
    throw new HttpError(400, 'media is required: the media type to refresh, like "image"');
  }
  const out: StartBody = { media: b.media };
  if (b.profile !== undefined) {
    if (typeof b.profile !== 'string') {
      throw new HttpError(400, `profile must be one of ${profiles.join(', ')}`);
    }
    out.profile = b.profile;
  }
  if (b.chunkSizeRows !== undefined) {
    const n = b.chunkSizeRows;
    if (typeof n !== 'number' || !Number.isSafeInteger(n) || n <= 0) {
      throw new HttpError(
        400,
        `chunkSizeRows must be a positive integer, got ${String(JSON.stringify(n))}`,
      );
    }
    out.chunkSizeRows = n;
  }
  const shadow = optionalBoolean(b, 'shadow');
  if (shadow !== undefined) out.shadow = shadow;
  const allowShrink = optionalBoolean(b, 'allowShrink');
  if (allowShrink !== undefined) out.allowShrink = allowShrink;
  const dryRun = optionalBoolean(b, 'dryRun');
  if (dryRun !== undefined) out.dryRun = dryRun;
  return out;
}

/**
 * A 409 naming the missing upstream table when a dry run's catalog query failed because the
 * table does not exist (PostgreSQL's undefined_table); undefined for any other error.
 */
function missingUpstream(err: unknown, media: string): HttpError | undefined {
  if ((err as { code?: unknown }).code !== '42P01') return undefined;
  return new HttpError(
    409,
    `cannot plan a refresh of ${media}: its upstream table is not in the catalog (${(err as Error).message})`,
  );
}

/** The `:id` of a route, checked against the run id format (400 when malformed). */
export function runIdParam(req: Request): string {
  const id = req.params.id;
  if (typeof id !== 'string' || !runIdPattern.test(id)) {
    throw new HttpError(
      400,
      `not a run id: ${JSON.stringify(id)}; run ids look like 20261124-070102-ab12`,
    );
  }
  return id;
}

/**
 * A positive integer query parameter, clamped to `max` (asking for more gets the most there is
 * to give); 400 when it is not a positive integer.
 */
function intQuery(req: Request, name: string, def: number, max: number): number {
  const raw = req.query[name];
  if (raw === undefined) return def;
  const n = typeof raw === 'string' && /^\d{1,16}$/.test(raw) ? Number(raw) : NaN;
  if (!Number.isInteger(n) || n < 1) {
    throw new HttpError(400, `${name} must be a positive integer (at most ${max} are given)`);
  }
  return Math.min(n, max);
}

function stringQuery(req: Request, name: string): string | undefined {
  const raw = req.query[name];
  if (raw === undefined) return undefined;
  if (typeof raw !== 'string' || raw.length > 64) {
    throw new HttpError(400, `${name} must be a single short value`);
  }
  return raw;
}

/**
 * The REST API, to mount at `/api` behind authentication. Reads are open to both roles;
 * changes need the operator (403 for the viewer) and record the role as the actor in the
 * run's audit log. `POST /runs` with `dryRun: true` answers the plan and changes nothing.
 */
export function createApi(deps: {
  producer: Producer;
  view: RunView;
  schedules: Schedules;
  logger: Logger;
  /** Starting a run and the run controls need Redis: refused at once (503) while it is away. */
  redis: RedisWatch;
}): Router {
  const { producer, view, schedules, logger } = deps;
  const needsRedis = requireRedis(deps.redis);
  const router = express.Router();
  const operatorOnly = requireOperator();
  const json = express.json({ limit: bodyLimitBytes, strict: false });
  const noStore = (_req: Request, res: Response, next: () => void) => {
    res.set('Cache-Control', 'no-store');
    next();
  };
  router.use(noStore);

  router.get('/session', (_req, res) => {
    const role = roleOf(res);
    res.json({
      role,
      canOperate: role === 'operator',
      media: [...producer.media.keys()],
      profiles,
      prefix: producer.queues.prefix,
    });
  });

  router.get('/schedules', async (req, res) => {
    res.json(await schedules.view(new Date(), intQuery(req, 'count', 3, maxUpcoming)));
  });

  router.get('/runs', async (req, res) => {
    const media = stringQuery(req, 'media');
    const status = stringQuery(req, 'status');
    const runs = await view.list({
      limit: intQuery(req, 'limit', 50, 500),
      ...(media ? { media } : {}),
      ...(status ? { status } : {}),
    });
    res.json({ runs });
  });

  router.post('/runs', operatorOnly, json, async (req, res) => {
    if (!req.is('application/json')) {
      throw new HttpError(415, 'send the body as JSON with Content-Type: application/json');
    }
    const { dryRun, ...request } = parseStartBody(req.body);
    const role = roleOf(res);
    if (dryRun) {
      const plan = await planRefresh(producer, request).catch((err: unknown) => {
        throw missingUpstream(err, request.media) ?? err;
      });
      logger.info({ media: plan.media, profile: plan.profile, actor: role }, 'dry run planned');
      res.json(plan);
      return;
    }
    // Checked here, after the body: a dry run only reads the catalog, and needs no Redis.
    const away = deps.redis.unavailable();
    if (away) throw away;
    const runId = await startRefresh(producer, { ...request, requestedBy: role });
    logger.info(
      {
        runId,
        media: request.media,
        profile: request.profile,
        shadow: request.shadow,
        allowShrink: request.allowShrink,
        actor: role,
      },
      'run started',
    );
    res.status(202).location(`/api/runs/${runId}`).json({ runId });
  });

  router.get('/runs/:id', async (req, res) => {
    res.json(await view.details(runIdParam(req)));
  });

  // Approve and discard answer 409 unless the run is awaiting approval (a held shadow build).
  const controls = {
    pause: pauseRun,
    resume: resumeRun,
    cancel: cancelRun,
    approve: approveRun,
    discard: discardRun,
  } as const;
  for (const [action, control] of Object.entries(controls)) {
    router.post(`/runs/:id/${action}`, operatorOnly, json, needsRedis, async (req, res) => {
      const id = runIdParam(req);
      await view.run(id); // 404 for a run of another prefix, before anything changes
      const role = roleOf(res);
      await control(producer, id, role);
      logger.info({ runId: id, actor: role, action }, 'run control');
      const run = await view.run(id);
      res.json({ runId: id, status: run.status });
    });
  }

  // The live and kept build of each media type, with what a rollback would do.
  router.get('/builds', async (_req, res) => {
    res.json({ builds: await buildsView(producer) });
  });

  // Rollback needs PostgreSQL and Elasticsearch only; 409 when it is refused.
  router.post('/media/:media/rollback', operatorOnly, json, async (req, res) => {
    const body: unknown = req.body ?? {};
    if (typeof body !== 'object' || body === null || Array.isArray(body)) {
      throw new HttpError(400, 'send a JSON object like {"profile": "staging"}, or no body');
    }
    const { profile, ...rest } = body as Record<string, unknown>;
    if (Object.keys(rest).length > 0) {
      throw new HttpError(
        400,
        `unknown field(s) ${Object.keys(rest)
          .map((k) => JSON.stringify(k))
          .join(', ')}; expected profile`,
      );
    }
    if (profile !== undefined && typeof profile !== 'string') {
      throw new HttpError(400, `profile must be one of ${profiles.join(', ')}`);
    }
    const role = roleOf(res);
    const result = await rollbackMedia(
      { ...producer, logger },
      String(req.params.media),
      profile,
      role,
    );
    res.json(result);
  });

  router.post('/runs/:id/retry', operatorOnly, json, needsRedis, async (req, res) => {
    const id = runIdParam(req);
    await view.run(id);
    const role = roleOf(res);
    const jobs = await retryRun(producer, id, role);
    logger.info({ runId: id, actor: role, jobs }, 'run retried');
    const run = await view.run(id);
    res.json({ runId: id, status: run.status, retried: jobs });
  });

  return router;
}
