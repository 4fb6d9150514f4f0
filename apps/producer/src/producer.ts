import {
  createPool,
  createProducerRedis,
  createQueues,
  loadMediaCatalog,
  type Config,
  type MediaCatalog,
  type Pool,
  type Queues,
} from '@freshet/core';

/** Connections a producer command needs: the API database (run store), queues, media types. */
export interface Producer {
  readonly config: Config;
  readonly api: Pool;
  readonly queues: Queues;
  readonly media: MediaCatalog;
  close(): Promise<void>;
}

export function openProducer(config: Config): Producer {
  const media = loadMediaCatalog(config.FRESHET_MEDIA_FILE);
  const api = createPool(config.API_DATABASE_URL, 'freshet-producer', 4);
  const redis = createProducerRedis(config);
  const queues = createQueues(config, redis);
  return {
    config,
    api,
    queues,
    media,
    async close() {
      await queues.close();
      redis.disconnect();
      await api.end();
    },
  };
}
