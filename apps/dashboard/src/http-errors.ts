import type { ErrorRequestHandler, RequestHandler } from 'express';
import {
  ConflictError,
  NotFoundError,
  PlanLimitError,
  RedisUnavailableError,
  UnknownMediaError,
  UserError,
  type Logger,
  type RedisWatch,
} from '@freshet/core';

/** An error with the HTTP status it answers; its message is shown to the caller. */
export class HttpError extends Error {
  override readonly name = 'HttpError';
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

/** Largest request body the REST API reads (bytes). */
export const bodyLimitBytes = 16 * 1024;

interface BodyParserError {
  status?: number;
  type?: string;
}

/**
 * The status and caller-facing message for an error. Errors Freshet raises for the caller
 * (bad input, unknown run, conflicting state) keep their message; anything else is a 500 whose
 * details stay in the log, so no stack trace, SQL or connection string reaches a response.
 */
export function describeError(err: unknown): { status: number; message: string } {
  if (err instanceof HttpError) return { status: err.status, message: err.message };
  if (
    err instanceof UnknownMediaError ||
    err instanceof UserError ||
    err instanceof PlanLimitError
  ) {
    return { status: 400, message: err.message };
  }
  if (err instanceof NotFoundError) return { status: 404, message: err.message };
  if (err instanceof ConflictError) return { status: 409, message: err.message };
  // Its message names the URL with any password masked, and the connection's error.
  if (err instanceof RedisUnavailableError) return { status: 503, message: err.message };
  const parser = err as BodyParserError;
  switch (parser.type) {
    case 'entity.parse.failed':
      return { status: 400, message: 'the request body is not valid JSON' };
    case 'entity.too.large':
      return {
        status: 413,
        message: `the request body is larger than ${bodyLimitBytes / 1024} kB`,
      };
    case 'encoding.unsupported':
    case 'charset.unsupported':
      return { status: 415, message: 'send the body as UTF-8 JSON' };
    default:
      break;
  }
  if (typeof parser.status === 'number' && parser.status >= 400 && parser.status < 500) {
    return { status: parser.status, message: parser.status === 404 ? 'not found' : 'bad request' };
  }
  return { status: 500, message: 'internal error; the dashboard log has the details' };
}

/**
 * Last handler of the app: answers `{ error }` with the right status, logs server errors. With
 * `redis`, a Redis connection error is a 503 naming Redis and why it cannot be reached.
 */
export function errorHandler(log: Logger, redis?: RedisWatch): ErrorRequestHandler {
  return (raw: unknown, req, res, next) => {
    if (res.headersSent) {
      next(raw);
      return;
    }
    const err = redis ? redis.explain(raw) : raw;
    const { status, message } = describeError(err);
    if (status === 503) log.warn({ err, method: req.method, path: req.path }, 'request refused');
    else if (status >= 500)
      log.error({ err, method: req.method, path: req.path }, 'request failed');
    res.status(status).json({ error: message });
  };
}

/** Passes a request on only while Redis is reachable; else a 503 with the reason, at once. */
export function requireRedis(redis: RedisWatch): RequestHandler {
  return (_req, _res, next) => {
    next(redis.unavailable());
  };
}

/** Answers 404 in JSON for any path no route took. */
export function notFound(): RequestHandler {
  return (req, res) => {
    res.status(404).json({ error: `no route for ${req.method} ${req.path}` });
  };
}
