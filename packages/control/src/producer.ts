import {
  checkRedis,
  createEsClient,
  createPool,
  createProducerRedis,
  createQueues,
  loadMediaCatalog,
  type Config,
  type EsClient,
  type MediaCatalog,
  type Pool,
  type Queues,
} from '@freshet/core';

/** Connections a producer command needs: the API database (run store), queues, media types. */
export interface Producer {
  readonly config: Config;
  readonly api: Pool;
  /** The catalog and Elasticsearch, for dry runs (pools connect lazily). */
  readonly catalog: Pool;
  readonly es: EsClient;
  readonly queues: Queues;
  readonly media: MediaCatalog;
  close(): Promise<void>;
}

export function openProducer(config: Config): Producer {
  const media = loadMediaCatalog(config.FRESHET_MEDIA_FILE);
  const api = createPool(config.API_DATABASE_URL, 'freshet-producer', 4);
  const catalog = createPool(config.CATALOG_DATABASE_URL, 'freshet-producer', 2);
  const es = createEsClient(config);
  const redis = createProducerRedis(config);
  const queues = createQueues(config, redis);
  return {
    config,
    api,
    catalog,
    es,
    queues,
    media,
    async close() {
      await queues.close();
      redis.disconnect();
      await Promise.allSettled([api.end(), catalog.end(), es.close()]);
    },
  };
}

/** Runs `fn` with a producer, checking Redis answers first; closes the producer afterwards. */
export async function withProducer(
  config: Config,
  fn: (p: Producer) => Promise<void>,
): Promise<void> {
  // Fail fast with one clear line (wrong password, nothing listening) instead of waiting on Redis.
  await checkRedis(config);
  const producer = openProducer(config);
  try {
    await fn(producer);
  } finally {
    await producer.close();
  }
}
