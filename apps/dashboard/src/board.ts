import type { Queue } from 'bullmq';
import express, { type NextFunction, type Request, type Response, type Router } from 'express';
import { createBullBoard } from '@bull-board/api';
import { BullMQAdapter } from '@bull-board/api/bullMQAdapter';
import { ExpressAdapter } from '@bull-board/express';
import type { Logger, RedisWatch } from '@freshet/core';
import { isSafeMethod, roleOf, type Role } from './auth.js';

/** What the boards need besides their queues. */
export interface BoardDeps {
  /** The queues' connection: while it is away, the board's API answers 503 at once. */
  readonly redis: RedisWatch;
  readonly logger: Logger;
}

/** Where Bull Board is mounted. */
export const boardPath = '/queues';

/** Most jobs one Bull Board list answers (its `jobsPerPage`): a few hundred, never all kept. */
export const maxJobsPerPage = 200;
/** Highest page number passed on (higher ones would overflow Redis's range arguments). */
export const maxPage = 100_000;

/**
 * The URL with Bull Board's `jobsPerPage` and `page` clamped to {@link maxJobsPerPage} and
 * {@link maxPage}; other parameters are left byte for byte (Bull Board decodes them itself).
 * A value that is not a finite number is left for Bull Board's own validation (a 400).
 */
export function clampBoardQuery(url: string): string {
  const q = url.indexOf('?');
  if (q < 0) return url;
  const limits: Record<string, number> = { jobsPerPage: maxJobsPerPage, page: maxPage };
  const query = url
    .slice(q + 1)
    .split('&')
    .map((pair) => {
      const eq = pair.indexOf('=');
      const max = eq < 0 ? undefined : limits[pair.slice(0, eq)];
      if (max === undefined) return pair;
      const n = Number(decodeURIComponent(pair.slice(eq + 1)));
      return Number.isFinite(n) && n > max ? `${pair.slice(0, eq)}=${max}` : pair;
    })
    .join('&');
  return `${url.slice(0, q)}?${query}`;
}

/** A link from a job in Bull Board to its run's page. */
function runLink(job: { data?: unknown }) {
  const runId = (job.data as { runId?: unknown } | undefined)?.runId;
  return typeof runId === 'string'
    ? { displayText: `Run ${runId}`, href: `/runs/${encodeURIComponent(runId)}` }
    : { href: '/' };
}

/**
 * Bull Board's page: its own scripts, styles and workers only. Styles may be inline (its
 * loading screen and its components set them), scripts may not; its `<base href>` is ours.
 */
export const boardContentSecurityPolicy = [
  "default-src 'none'",
  "script-src 'self'",
  "worker-src 'self'",
  "style-src 'self' 'unsafe-inline'",
  "img-src 'self' data:",
  "font-src 'self'",
  "connect-src 'self'",
  "base-uri 'self'",
  "form-action 'self'",
  "frame-ancestors 'none'",
].join('; ');

/**
 * Bull Board's page links a public font service's stylesheet: a dashboard on a closed network
 * would try to reach the internet on every first visit (and the policy above refuses it). Its
 * CSS falls back to the system's sans-serif and monospace fonts.
 */
export function withoutExternalFonts(html: string): string {
  return html.replace(
    /<link\b[^>]*\bhref="https?:\/\/fonts\.(googleapis|gstatic)\.com[^>]*>\s*/gi,
    '',
  );
}

type RenderEngine = (
  path: string,
  options: object,
  callback: (err: Error | null, html?: string) => void,
) => void;

/** What Bull Board's error handler returns. */
type BoardAnswer = ReturnType<Parameters<ExpressAdapter['setErrorHandler']>[0]>;
/** Bull Board's types list the statuses it uses itself; its express adapter sends any. */
const unavailable = 503 as BoardAnswer['status'];

function board(queues: readonly Queue[], role: Role, deps: BoardDeps): express.Express {
  const readOnly = role === 'viewer';
  const adapter = new ExpressAdapter().setBasePath(boardPath);
  createBullBoard({
    queues: queues.map(
      (q) =>
        new BullMQAdapter(q, {
          readOnlyMode: readOnly,
          allowRetries: !readOnly,
          description: `prefix ${q.opts.prefix ?? 'bull'}`,
          externalJobUrl: runLink,
        }),
    ),
    serverAdapter: adapter,
    options: {
      uiConfig: {
        boardTitle: 'Freshet queues',
        miscLinks: [{ text: 'Freshet runs', url: '/' }],
        hideDocsLink: true,
        ...(readOnly
          ? { environment: { label: 'viewer: read-only', color: '#5b6472', textColor: '#fff' } }
          : {}),
      },
    },
  });
  const app = adapter.getRouter() as express.Express & { engines: Record<string, RenderEngine> };
  const render = app.engines['.ejs'];
  if (!render) throw new Error('Bull Board renders no ejs view: its adapter changed');
  app.engine('ejs', (file, options, callback) => {
    render(file, options, (err, html) =>
      callback(err, html === undefined ? html : withoutExternalFonts(html)),
    );
  });
  // Bull Board's own handler answers every error as a 500 with its message (Redis's own words
  // included). Errors it raises itself (bad input, unknown queue or job) keep their status.
  const boardErrors = adapter['errorHandler'];
  adapter.setErrorHandler((err: Error & { statusCode?: number }): BoardAnswer => {
    const explained = deps.redis.explain(err);
    if (explained !== err) {
      deps.logger.warn({ err: explained }, 'Bull Board request failed: Redis is unreachable');
      return { status: unavailable, body: { error: (explained as Error).message } };
    }
    if (err.statusCode && err.statusCode < 500 && boardErrors) return boardErrors(err);
    deps.logger.error({ err }, 'Bull Board request failed');
    return { status: 500, body: { error: 'internal error; the dashboard log has the details' } };
  });
  return adapter.getRouter() as express.Express;
}

/**
 * Bull Board for both roles, to mount at {@link boardPath} behind authentication: the operator
 * gets the full board (retry, clean, promote, pause/resume per queue); the viewer gets a board
 * whose queues are in `readOnlyMode` (Bull Board answers 405 to writes and hides the buttons).
 * As a second line, any changing method from the viewer is answered 405 here, before Bull Board:
 * its pause-all and resume-all routes skip read-only queues but still answer 200.
 */
export function createBoards(queues: readonly Queue[], deps: BoardDeps): Router {
  const boards: Record<Role, express.Express> = {
    operator: board(queues, 'operator', deps),
    viewer: board(queues, 'viewer', deps),
  };
  const router = express.Router();
  router.use((req: Request, res: Response, next: NextFunction) => {
    const role = roleOf(res);
    if (role === 'viewer' && !isSafeMethod(req.method)) {
      res
        .status(405)
        .set('Allow', 'GET, HEAD')
        .json({ error: 'the queues are read-only for the viewer role' });
      return;
    }
    // Every call of the board's API needs Redis: while it is away, say so at once (its pages
    // and assets do not, and still load).
    const away = req.path.startsWith('/api/') ? deps.redis.unavailable() : undefined;
    if (away) {
      res.status(503).json({ error: away.message });
      return;
    }
    res.set('Content-Security-Policy', boardContentSecurityPolicy);
    // Bull Board's own schema has no upper bound: a viewer could ask for every kept job at once.
    req.url = clampBoardQuery(req.url);
    boards[role](req, res, next);
  });
  return router;
}
