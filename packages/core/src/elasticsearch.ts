import { readFileSync } from 'node:fs';
import { Client } from '@elastic/elasticsearch';
import type { Config } from './config.js';
import { maskSecrets } from './redact.js';

export type { Client as EsClient } from '@elastic/elasticsearch';

/** An Elasticsearch client from config: basic auth or API key, and a CA file for TLS. */
export function createEsClient(config: Config): Client {
  const auth = config.ELASTICSEARCH_API_KEY
    ? { apiKey: config.ELASTICSEARCH_API_KEY }
    : config.ELASTICSEARCH_USERNAME
      ? { username: config.ELASTICSEARCH_USERNAME, password: config.ELASTICSEARCH_PASSWORD ?? '' }
      : undefined;
  return new Client({
    node: config.ELASTICSEARCH_URL,
    ...(auth ? { auth } : {}),
    ...(config.ELASTICSEARCH_CA_FILE
      ? { tls: { ca: readFileSync(config.ELASTICSEARCH_CA_FILE) } }
      : {}),
    requestTimeout: config.ELASTICSEARCH_REQUEST_TIMEOUT_MS,
    maxRetries: 3,
  });
}

/** Checks the cluster answers (cluster health: the test distribution has no `GET /`). */
export async function checkElasticsearch(client: Client, url: string): Promise<void> {
  try {
    await client.cluster.health({ timeout: '5s' }, { requestTimeout: 5_000, maxRetries: 0 });
  } catch (err) {
    throw new Error(
      maskSecrets(
        `cannot reach Elasticsearch at ${url} (ELASTICSEARCH_URL): ${(err as Error).message}`,
      ),
      { cause: err },
    );
  }
}
