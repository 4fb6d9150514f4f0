import { pino, type Logger } from 'pino';
import type { Config } from './config.js';

export type { Logger } from 'pino';

/** Paths whose values never reach the logs. */
const redact = [
  'password',
  'token',
  'authorization',
  '*.password',
  '*.token',
  '*.authorization',
  'req.headers.authorization',
  'headers.authorization',
];

/** The root logger: JSON lines to stdout (or `destination`), secrets redacted. */
export function createLogger(
  config: Pick<Config, 'LOG_LEVEL'>,
  destination?: NodeJS.WritableStream,
): Logger {
  const options = { level: config.LOG_LEVEL, redact, base: { pid: process.pid } };
  return destination ? pino(options, destination as pino.DestinationStream) : pino(options);
}
