import path from 'node:path';
import { fileURLToPath } from 'node:url';
import express, { type NextFunction, type Request, type Response, type Router } from 'express';

/** The run view's static files (HTML, CSS, browser JavaScript; no build step). */
export const publicDir = path.join(path.dirname(fileURLToPath(import.meta.url)), 'public');

/** The files served under `/assets/`. */
const assets = ['app.js', 'style.css', 'favicon.svg'] as const;

/** Strict policy for Freshet's own pages: only this origin's scripts, styles and requests. */
const contentSecurityPolicy = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'",
].join('; ');

function strictPolicy(_req: Request, res: Response, next: NextFunction): void {
  res.set('Content-Security-Policy', contentSecurityPolicy);
  next();
}

/**
 * The run view: `/` (runs list and the start form) and `/runs/:id` (one run) serve the same
 * page, whose script renders from the REST API; `/assets/*` are its script and style.
 */
export function createPages(): Router {
  const router = express.Router();
  const sendIndex = (_req: Request, res: Response) => {
    res.set('Cache-Control', 'no-cache').sendFile(path.join(publicDir, 'index.html'));
  };
  router.get('/', strictPolicy, sendIndex);
  router.get('/runs/:id', strictPolicy, sendIndex);
  // Named files only: the folder also holds the tsconfig that type-checks the script.
  for (const file of assets) {
    router.get(`/assets/${file}`, strictPolicy, (_req, res) => {
      res.set('Cache-Control', 'no-cache').sendFile(path.join(publicDir, file));
    });
  }
  return router;
}
