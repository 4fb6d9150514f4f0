import { createHash, timingSafeEqual } from 'node:crypto';
import type { NextFunction, Request, RequestHandler, Response } from 'express';
import { UserError, type Config } from '@freshet/core';
import type { LoginThrottle } from './login-throttle.js';

/** Who is signed in: the operator may change things, the viewer only looks. */
export type Role = 'operator' | 'viewer';

/** The roles, strongest first. */
export const roles: readonly Role[] = ['operator', 'viewer'];

/** The realm of the Basic challenge (the browser shows it in its login prompt). */
export const authRealm = 'freshet';

/** The configured token of each role; a role without a token cannot sign in. */
export type RoleTokens = Readonly<Partial<Record<Role, string>>>;

/**
 * The tokens from FRESHET_OPERATOR_TOKEN and FRESHET_VIEWER_TOKEN. Throws a {@link UserError}
 * naming both variables when neither is set: a dashboard nobody can sign in to is a mistake.
 */
export function roleTokens(
  config: Pick<Config, 'FRESHET_OPERATOR_TOKEN' | 'FRESHET_VIEWER_TOKEN'>,
): RoleTokens {
  const tokens: Partial<Record<Role, string>> = {};
  if (config.FRESHET_OPERATOR_TOKEN) tokens.operator = config.FRESHET_OPERATOR_TOKEN;
  if (config.FRESHET_VIEWER_TOKEN) tokens.viewer = config.FRESHET_VIEWER_TOKEN;
  if (!tokens.operator && !tokens.viewer) {
    throw new UserError(
      'the dashboard needs at least one of FRESHET_OPERATOR_TOKEN (may change runs and queues) ' +
        'and FRESHET_VIEWER_TOKEN (read-only), each 24 or more characters; set one and start again',
    );
  }
  return Object.freeze(tokens);
}

/**
 * Equality of two secrets in time independent of where they differ: both sides are hashed
 * first, so their lengths leak nothing either.
 */
export function safeEqual(a: string, b: string): boolean {
  const ha = createHash('sha256').update(a, 'utf8').digest();
  const hb = createHash('sha256').update(b, 'utf8').digest();
  return timingSafeEqual(ha, hb);
}

/**
 * The role an `Authorization` header proves, or undefined. Accepted forms:
 * `Bearer <token>` (either role's token) and `Basic base64(<role>:<token>)` with the user name
 * `operator` or `viewer`. Every configured token is compared, so timing does not tell which
 * role a guess came close to.
 */
export function roleFromAuthorization(
  header: string | undefined,
  tokens: RoleTokens,
): Role | undefined {
  if (!header) return undefined;
  const space = header.indexOf(' ');
  if (space < 0) return undefined;
  const scheme = header.slice(0, space).toLowerCase();
  const value = header.slice(space + 1).trim();
  let user: string | undefined;
  let secret: string;
  if (scheme === 'bearer') {
    secret = value;
  } else if (scheme === 'basic') {
    const decoded = Buffer.from(value, 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    if (colon < 0) return undefined;
    user = decoded.slice(0, colon);
    secret = decoded.slice(colon + 1);
  } else {
    return undefined;
  }
  let found: Role | undefined;
  for (const role of roles) {
    const token = tokens[role];
    if (token === undefined) continue;
    const match = safeEqual(secret, token);
    if (match && found === undefined && (user === undefined || user === role)) found = role;
  }
  return found;
}

/** The role of an authenticated request (set by {@link requireAuth}). */
export function roleOf(res: Response): Role {
  return (res.locals as { role: Role }).role;
}

/**
 * Answers 401 with a Basic challenge (so a browser shows its login prompt) unless the request
 * carries a valid token; stores the role in `res.locals.role`. With a `throttle`, a client
 * past its failed-login limit gets 429 whatever it sends, and each wrong credential counts.
 */
export function requireAuth(tokens: RoleTokens, throttle?: LoginThrottle): RequestHandler {
  const unauthorized = (res: Response) => {
    res.status(401).set('WWW-Authenticate', `Basic realm="${authRealm}"`).json({
      error:
        'authentication required: send Authorization: Bearer <token>, or sign in as operator or viewer with the token as password',
    });
  };
  const check = async (req: Request, res: Response, next: NextFunction) => {
    if (throttle && (await throttle.refused(req, res))) return;
    const role = roleFromAuthorization(req.headers.authorization, tokens);
    if (role) {
      (res.locals as { role: Role }).role = role;
      next();
    } else if (throttle && req.headers.authorization !== undefined) {
      throttle.failed(req, res, next, () => unauthorized(res));
    } else {
      unauthorized(res);
    }
  };
  return (req, res, next) => {
    check(req, res, next).catch(next);
  };
}

/** Answers 403 unless the signed-in role is the operator (for Freshet's own changing routes). */
export function requireOperator(): RequestHandler {
  return (_req: Request, res: Response, next: NextFunction) => {
    if (roleOf(res) !== 'operator') {
      res
        .status(403)
        .json({ error: 'the viewer role is read-only; sign in as operator to do this' });
      return;
    }
    next();
  };
}

const safeMethods = new Set(['GET', 'HEAD', 'OPTIONS']);

/** True for methods that change nothing. */
export function isSafeMethod(method: string): boolean {
  return safeMethods.has(method.toUpperCase());
}

/** The header a script may send instead of a JSON body (a cross-site form cannot set one). */
export const requestedWithHeader = 'x-requested-with';

/** The origin (`scheme://host[:port]`) of a URL, or undefined if it has none. */
function originOf(url: string | undefined): string | undefined {
  if (!url) return undefined;
  try {
    const origin = new URL(url).origin;
    return origin === 'null' ? undefined : origin;
  } catch {
    return undefined;
  }
}

/** True if the request carries a body (any length, or chunked). */
function hasBody(req: Request): boolean {
  const length = req.headers['content-length'];
  return (length !== undefined && length !== '0') || req.headers['transfer-encoding'] !== undefined;
}

/**
 * Refuses changing requests a browser sends on behalf of another site (CSRF): Basic credentials
 * are sent automatically, so a form on any page could otherwise post to the dashboard. Two
 * layers, each enough on its own against a browser:
 *
 * 1. Where the request comes from: `Sec-Fetch-Site` when the browser sends it (same-origin or
 *    none), else `Origin`, whose scheme, host and port must be the request's own (or those of
 *    DASHBOARD_PUBLIC_URL, for a dashboard behind a TLS proxy). Clients that are not browsers
 *    (curl, scripts) send neither.
 * 2. What it is: a body must be JSON (`Content-Type: application/json`), and a POST must be
 *    JSON or carry an `X-Requested-With` header. A cross-site form can only send a POST with a
 *    form or text body and no custom header; anything else makes the browser ask first (CORS),
 *    which this server never allows. Bull Board's PUTs without a body pass.
 */
export function rejectCrossSite(publicUrl?: string): RequestHandler {
  const publicOrigin = originOf(publicUrl);
  return (req: Request, res: Response, next: NextFunction) => {
    if (isSafeMethod(req.method)) {
      next();
      return;
    }
    const site = req.headers['sec-fetch-site'];
    const origin = req.headers.origin;
    let crossSite = false;
    if (typeof site === 'string') {
      crossSite = site !== 'same-origin' && site !== 'none';
    } else if (typeof origin === 'string') {
      const own = originOf(`${req.protocol}://${req.headers.host ?? ''}`);
      const seen = originOf(origin);
      crossSite = seen === undefined || (seen !== own && seen !== publicOrigin);
    }
    if (crossSite) {
      res.status(403).json({ error: 'cross-site requests cannot change anything here' });
      return;
    }
    const json = req.is('application/json') === 'application/json';
    if (hasBody(req) && !json) {
      res.status(415).json({ error: 'send the body as JSON with Content-Type: application/json' });
      return;
    }
    if (req.method.toUpperCase() === 'POST' && !json && !req.headers[requestedWithHeader]) {
      res.status(403).json({
        error:
          'a POST here needs Content-Type: application/json (with a JSON body) or an X-Requested-With header',
      });
      return;
    }
    next();
  };
}
