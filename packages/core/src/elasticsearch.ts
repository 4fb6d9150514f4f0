import { readFileSync } from 'node:fs';
import { Client, ClusterConnectionPool } from '@elastic/elasticsearch';
import { splitUrlList, type Config } from './config.js';
import { maskSecrets } from './redact.js';

export type { Client as EsClient } from '@elastic/elasticsearch';

/** The nodes of ELASTICSEARCH_URL (one URL, or several separated by commas). */
export function elasticsearchNodes(config: Pick<Config, 'ELASTICSEARCH_URL'>): string[] {
  return splitUrlList(config.ELASTICSEARCH_URL);
}

/**
 * An Elasticsearch client from config: basic auth or API key, and a CA file for TLS.
 *
 * With several nodes the client uses the cluster connection pool: a request that meets a
 * connection error (refused, reset: a node down) marks that node dead and is sent again to the
 * next node (up to `maxRetries` times, a request body is a buffer, never a stream, so it can be
 * resent); dead nodes are left out until their resurrect time (1 min, doubling per failure) when
 * a ping (`HEAD /`) brings them back. Timeouts are not retried by the client (a slow bulk is
 * the chunk's to retry). Resending a bulk is safe: every document is indexed by `_id`, so a bulk
 * applied twice, in part or whole, leaves the same documents. (The default weighted pool keeps
 * sending a share of requests to a dead node, each costing a refused or timed-out attempt.)
 */
export function createEsClient(config: Config): Client {
  const auth = config.ELASTICSEARCH_API_KEY
    ? { apiKey: config.ELASTICSEARCH_API_KEY }
    : config.ELASTICSEARCH_USERNAME
      ? { username: config.ELASTICSEARCH_USERNAME, password: config.ELASTICSEARCH_PASSWORD ?? '' }
      : undefined;
  const nodes = elasticsearchNodes(config);
  return new Client({
    ...(nodes.length > 1 ? { nodes, ConnectionPool: ClusterConnectionPool } : { node: nodes[0] }),
    ...(auth ? { auth } : {}),
    ...(config.ELASTICSEARCH_CA_FILE
      ? { tls: { ca: readFileSync(config.ELASTICSEARCH_CA_FILE) } }
      : {}),
    requestTimeout: config.ELASTICSEARCH_REQUEST_TIMEOUT_MS,
    maxRetries: 3,
  });
}

/**
 * Request options of a quick probe (health, stats): a short timeout, and no retry on the same
 * node, but one try of each other node of the list, so one node down does not fail the probe.
 */
export function probeOptions(
  client: Client,
  requestTimeout = 5_000,
): { requestTimeout: number; maxRetries: number } {
  return { requestTimeout, maxRetries: Math.max(0, client.connectionPool.size - 1) };
}

/** Checks the cluster answers (cluster health: the test distribution has no `GET /`). */
export async function checkElasticsearch(client: Client, url: string): Promise<void> {
  try {
    await client.cluster.health({ timeout: '5s' }, probeOptions(client));
  } catch (err) {
    throw new Error(
      maskSecrets(
        `cannot reach Elasticsearch at ${url} (ELASTICSEARCH_URL): ${(err as Error).message}`,
      ),
      { cause: err },
    );
  }
}
