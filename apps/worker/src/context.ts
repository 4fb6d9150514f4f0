import { readFileSync } from 'node:fs';
import {
  AdmissionControl,
  createNotifier,
  dashboardRunUrl,
  createDatabases,
  createEsClient,
  loadMediaCatalog,
  parseSensitiveTerms,
  RunStore,
  Slots,
  BufferPool,
  type Config,
  type Logger,
  type RefreshContext,
} from '@freshet/core';

/** Opens the connections a worker's processors share. */
export function createRefreshContext(
  config: Config,
  logger: Logger,
): RefreshContext & {
  close(): Promise<void>;
} {
  const dbs = createDatabases(config, 'freshet-worker');
  const es = createEsClient(config);
  const runUrl = dashboardRunUrl(config);
  const notifier = createNotifier(config, logger, { api: dbs.api, ...(runUrl ? { runUrl } : {}) });
  return {
    config,
    dbs,
    es,
    admission: new AdmissionControl(config, es, [
      { name: 'catalog', pool: dbs.catalog },
      { name: 'api', pool: dbs.api },
    ]),
    media: loadMediaCatalog(config.FRESHET_MEDIA_FILE),
    // The record of attempts, stages and runs survives a database that is away for a while.
    store: new RunStore(dbs.api, {
      retryMs: config.TRANSIENT_RETRY_MS,
      onRetry: (err, delayMs) =>
        logger.warn({ error: (err as Error).message, delayMs }, 'run store unreachable; retrying'),
    }),
    sensitiveTerms: parseSensitiveTerms(readFileSync(config.SENSITIVE_TERMS_FILE, 'utf8')),
    logger,
    notifier,
    bulkSlots: new Slots(config.INDEX_BULK_CONCURRENCY),
    bulkBuffers: new BufferPool(config.INDEX_BULK_CONCURRENCY + 1),
    async close() {
      await notifier.close();
      await Promise.allSettled([dbs.close(), es.close()]);
    },
  };
}
