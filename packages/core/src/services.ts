import type { Config } from './config.js';
import { checkDatabase, createPool } from './db.js';
import { checkElasticsearch, createEsClient } from './elasticsearch.js';
import { checkRedis } from './redis.js';

export type ServiceName = 'redis' | 'catalog' | 'api' | 'elasticsearch';

/**
 * Checks that each named service answers, in parallel, with short timeouts.
 * Throws one error whose message has one line per unreachable service.
 */
export async function checkServices(
  config: Config,
  services: readonly ServiceName[] = ['redis', 'catalog', 'api', 'elasticsearch'],
): Promise<void> {
  const checks = services.map(async (name) => {
    switch (name) {
      case 'redis':
        return checkRedis(config);
      case 'catalog':
      case 'api': {
        const url = name === 'catalog' ? config.CATALOG_DATABASE_URL : config.API_DATABASE_URL;
        const setting = name === 'catalog' ? 'CATALOG_DATABASE_URL' : 'API_DATABASE_URL';
        const pool = createPool(url, 'freshet-check', 1);
        try {
          return await checkDatabase(pool, setting, url);
        } finally {
          await pool.end();
        }
      }
      case 'elasticsearch': {
        const client = createEsClient(config);
        try {
          return await checkElasticsearch(client, config.ELASTICSEARCH_URL);
        } finally {
          await client.close();
        }
      }
    }
  });
  const results = await Promise.allSettled(checks);
  const failures = results.flatMap((r) =>
    r.status === 'rejected' ? [(r.reason as Error).message] : [],
  );
  if (failures.length > 0) throw new Error(failures.join('\n'));
}
