import { readFileSync } from 'node:fs';
import {
  AdmissionControl,
  createDatabases,
  createEsClient,
  loadMediaCatalog,
  parseSensitiveTerms,
  RunStore,
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
  return {
    config,
    dbs,
    es,
    admission: new AdmissionControl(config, es, [
      { name: 'catalog', pool: dbs.catalog },
      { name: 'api', pool: dbs.api },
    ]),
    media: loadMediaCatalog(config.FRESHET_MEDIA_FILE),
    store: new RunStore(dbs.api),
    sensitiveTerms: parseSensitiveTerms(readFileSync(config.SENSITIVE_TERMS_FILE, 'utf8')),
    logger,
    async close() {
      await Promise.allSettled([dbs.close(), es.close()]);
    },
  };
}
