import type { NextFunction, Request, Response } from 'express';
import { ipKeyGenerator, rateLimit, type RateLimitInfo } from 'express-rate-limit';
import type { Logger } from '@freshet/core';

/** Options of {@link createLoginThrottle}. */
export interface LoginThrottleOptions {
  /** Failed logins one client address may make per window (DASHBOARD_LOGIN_FAILURES, 20). */
  readonly failures: number;
  /** The window, from the first failure (DASHBOARD_LOGIN_WINDOW_MS, 60000 ms). */
  readonly windowMs: number;
  readonly logger: Logger;
}

/** Counts failed logins per client address and refuses a client past its limit. */
export interface LoginThrottle {
  /**
   * Answers 429 (with Retry-After) and returns true if the client is past its limit: then no
   * credentials of its are even compared, the right token included, until the window ends.
   */
  refused(req: Request, res: Response): Promise<boolean>;
  /**
   * Counts a failed login, then calls `unauthorized` (or answers 429 if this one was over);
   * a store error goes to `next`.
   */
  failed(req: Request, res: Response, next: NextFunction, unauthorized: () => void): void;
}

/** The scheme of an Authorization header, for the log: never any part of a credential. */
function schemeOf(header: string | undefined): string {
  const scheme = header?.split(' ', 1)[0]?.toLowerCase();
  return scheme === 'bearer' || scheme === 'basic' ? scheme : 'other';
}

/** The client address a limit applies to (IPv6 by its /56, as express-rate-limit does). */
function clientKey(req: Request): string {
  return ipKeyGenerator(req.ip ?? 'unknown');
}

/**
 * Failed-login throttling on express-rate-limit (its fixed-window memory store, key
 * generation and headers), per dashboard process. Only requests whose Authorization header
 * proves no role count: a browser's first request without credentials does not, nor do the
 * signed-in requests, however many (a limiter counting every request would throttle a busy
 * run view).
 */
export function createLoginThrottle(opts: LoginThrottleOptions): LoginThrottle {
  const log = opts.logger;
  const answer = (req: Request, res: Response, resetTime: Date | undefined) => {
    const retryAfterS = Math.max(1, Math.ceil(((resetTime?.getTime() ?? 0) - Date.now()) / 1000));
    log.warn(
      { client: req.ip, method: req.method, path: req.path, retryAfterS },
      'login throttled: too many failed logins from this address',
    );
    res
      .status(429)
      .set('Retry-After', String(retryAfterS))
      .json({
        error: `too many failed logins from this address; try again in ${retryAfterS} s`,
      });
  };
  const limiter = rateLimit({
    windowMs: opts.windowMs,
    limit: opts.failures,
    standardHeaders: 'draft-8',
    legacyHeaders: false,
    keyGenerator: clientKey,
    handler: (req, res) => {
      answer(req, res, (req as Request & { rateLimit?: RateLimitInfo }).rateLimit?.resetTime);
    },
  });
  return {
    async refused(req, res) {
      const info = await limiter.getKey(clientKey(req));
      if (!info || info.totalHits <= opts.failures) return false;
      answer(req, res, info.resetTime);
      return true;
    },
    failed(req, res, next, unauthorized) {
      log.warn(
        {
          client: req.ip,
          method: req.method,
          path: req.path,
          scheme: schemeOf(req.headers.authorization),
        },
        'login failed',
      );
      void limiter(req, res, (err?: unknown) => {
        if (err) next(err);
        else unauthorized();
      });
    },
  };
}
