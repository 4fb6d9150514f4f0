import closeWithGrace from 'close-with-grace';
import type { Logger } from './logger.js';

/**
 * Keeps a started app running until SIGINT/SIGTERM, then closes it within `timeoutMs`
 * (a second signal exits at once). Only CLI entry points call this.
 */
export function closeOnSignal(
  app: { close(): Promise<void> },
  logger: Logger,
  timeoutMs: number,
): void {
  closeWithGrace(
    { delay: timeoutMs, logger: { error: (msg: unknown) => logger.error({ msg }, 'shutdown') } },
    async ({ signal, err }) => {
      if (err) logger.error({ err }, 'fatal error, shutting down');
      else logger.info({ signal }, 'shutting down');
      await app.close();
    },
  );
}
