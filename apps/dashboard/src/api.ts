import express, { type Request, type Response, type Router } from 'express';
import { profiles, runIdPattern, type Logger } from '@freshet/core';
import { cancelRun, pauseRun, resumeRun } from '../../producer/src/control.js';
import type { Producer } from '../../producer/src/producer.js';
import { retryRun, startRefresh } from '../../producer/src/refresh.js';
import { requireOperator, roleOf } from './auth.js';
import { bodyLimitBytes, HttpError } from './http-errors.js';
import type { RunView } from './run-view.js';

/** Fields `POST /api/runs` accepts. */
const startFields = new Set(['media', 'profile', 'chunkSizeRows']);

/** The body of `POST /api/runs`, checked. */
export interface StartBody {
  media: string;
  profile?: string;
  chunkSizeRows?: number;
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
      `unknown field(s) ${unknown.map((k) => JSON.stringify(k)).join(', ')}; expected media, profile, chunkSizeRows`,
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
  return out;
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

function intQuery(req: Request, name: string, def: number, max: number): number {
  const raw = req.query[name];
  if (raw === undefined) return def;
  const n = typeof raw === 'string' && /^\d{1,6}$/.test(raw) ? Number(raw) : NaN;
  if (!Number.isInteger(n) || n < 1 || n > max) {
    throw new HttpError(400, `${name} must be an integer from 1 to ${max}`);
  }
  return n;
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
 * run's audit log.
 */
export function createApi(deps: { producer: Producer; view: RunView; logger: Logger }): Router {
  const { producer, view, logger } = deps;
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
    const body = parseStartBody(req.body);
    const role = roleOf(res);
    const runId = await startRefresh(producer, { ...body, requestedBy: role });
    logger.info({ runId, media: body.media, profile: body.profile, actor: role }, 'run started');
    res.status(202).location(`/api/runs/${runId}`).json({ runId });
  });

  router.get('/runs/:id', async (req, res) => {
    res.json(await view.details(runIdParam(req)));
  });

  const controls = {
    pause: pauseRun,
    resume: resumeRun,
    cancel: cancelRun,
  } as const;
  for (const [action, control] of Object.entries(controls)) {
    router.post(`/runs/:id/${action}`, operatorOnly, json, async (req, res) => {
      const id = runIdParam(req);
      await view.run(id); // 404 for a run of another prefix, before anything changes
      const role = roleOf(res);
      await control(producer, id, role);
      logger.info({ runId: id, actor: role, action }, 'run control');
      const run = await view.run(id);
      res.json({ runId: id, status: run.status });
    });
  }

  router.post('/runs/:id/retry', operatorOnly, json, async (req, res) => {
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
