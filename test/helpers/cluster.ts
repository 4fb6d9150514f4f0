import { getMedia, refreshNames, type EsClient, type RefreshNames } from '@freshet/core';
import { startRefresh } from '@freshet/control';
import { waitUntil } from './backends.js';
import { createTestEnv, type TestEnv } from './env.js';
import {
  alive,
  faultDefinition,
  faultMapping,
  runServices,
  seedFaultTable,
  startWorkerPool,
  writeFaultMedia,
  type WorkerPool,
} from './faults.js';

// ---------------------------------------------------------------------------------------------
// The shared 3-node Elasticsearch cluster of `scripts/services.sh cluster` (9201-9203 by
// default), started once and reused by every file of test/cluster. Tests stop, kill and start
// single nodes of it; each file leaves every node running when it ends.
// ---------------------------------------------------------------------------------------------

/** One node of the cluster, known to services.sh by its number. */
export interface ClusterNode {
  readonly n: number;
  /** Its node name in the cluster (`freshet-cluster-<n>`). */
  readonly name: string;
  /** The pid of its Elasticsearch process, or null when it is not running. */
  pid(): Promise<number | null>;
  /** SIGKILLs the node's process and waits for it to be gone. */
  kill(): Promise<void>;
  /** Stops the node (SIGTERM, a clean shutdown) and waits for it to be gone. */
  stop(): Promise<void>;
  /** Starts the node again (with its data) and waits until the cluster is green with it. */
  start(): Promise<void>;
}

export interface EsCluster {
  /** ELASTICSEARCH_URL for the cluster: its nodes separated by commas. */
  readonly url: string;
  readonly nodes: readonly ClusterNode[];
  /** The node with this node name. */
  node(name: string): ClusterNode;
  /** Starts any node that is not running and waits for green (as at the start). */
  ensureUp(): Promise<void>;
}

function clusterNode(n: number): ClusterNode {
  const pid = async () => {
    const out = (await runServices(['cluster-node-pid', String(n)])).trim();
    return out === 'none' ? null : Number(out);
  };
  return {
    n,
    name: `freshet-cluster-${n}`,
    pid,
    async kill() {
      const p = await pid();
      if (p === null) throw new Error(`cluster node ${n} is not running: nothing to kill`);
      process.kill(p, 'SIGKILL');
      await waitUntil(() => !alive(p), `cluster node ${n} (pid ${p}) is gone`, 30_000);
    },
    async stop() {
      await runServices(['stop-cluster-node', String(n)]);
    },
    async start() {
      await runServices(['start-cluster-node', String(n)]);
    },
  };
}

/**
 * Starts the cluster with `services.sh cluster` unless it is already green (then it answers at
 * once): about a minute the first time on a busy 2-core machine.
 */
export async function startCluster(): Promise<EsCluster> {
  const out = await runServices(
    ['cluster'],
    process.env,
    'the 3-node Elasticsearch cluster did not start',
  );
  const url = /ELASTICSEARCH_URL=(\S+)/.exec(out)?.[1];
  if (url === undefined)
    throw new Error(`services.sh cluster printed no ELASTICSEARCH_URL:\n${out}`);
  const nodes = url.split(',').map((_, i) => clusterNode(i + 1));
  return {
    url,
    nodes,
    node(name) {
      const found = nodes.find((x) => x.name === name);
      if (!found) throw new Error(`no cluster node named ${name}`);
      return found;
    },
    async ensureUp() {
      await runServices(['cluster'], process.env, 'the cluster could not be brought back up');
    },
  };
}

/** Where each copy of an index's shards is: shard number, primary or replica, state, node. */
export async function shardCopies(
  es: EsClient,
  index: string,
): Promise<{ shard: string; primary: boolean; state: string; node: string | null }[]> {
  const rows = await es.cat.shards({ index, format: 'json', h: 'shard,prirep,state,node' });
  return rows.map((r) => ({
    shard: String(r.shard),
    primary: r.prirep === 'p',
    state: String(r.state),
    node: r.node ?? null,
  }));
}

/** The name of the elected master node. */
export async function masterNode(es: EsClient): Promise<string> {
  const [row] = await es.cat.master({ format: 'json' });
  if (!row?.node) throw new Error('the cluster has no elected master');
  return row.node;
}

/**
 * Writes a definitions file of cluster-test media types over fault tables (see
 * {@link faultDefinition}): each entry maps a media name to its table and primary shards. Their
 * mapping keeps a replica whose node left unassigned for 30 minutes (instead of copying it
 * elsewhere after one), so a stopped node leaves the indices yellow until it is back.
 */
export function writeClusterMedia(
  types: Record<string, { table: string; shards: number }>,
): string {
  const definitions = Object.fromEntries(
    Object.entries(types).map(([name, { table, shards }]) => {
      const def = faultDefinition(table);
      return [name, { ...def, shards, document: { ...def.document, mapping: 'cluster.json' } }];
    }),
  );
  const mapping = {
    ...faultMapping,
    settings: {
      index: {
        ...faultMapping.settings.index,
        unassigned: { node_left: { delayed_timeout: '30m' } },
      },
    },
  };
  return writeFaultMedia(definitions, { 'cluster.json': mapping });
}

/** A run's names (indices, aliases, tables) under the test's index prefix. */
export function runNames(t: TestEnv, media: string, runId: string): RefreshNames {
  return refreshNames(
    getMedia(t.media, media),
    'production',
    runId,
    t.config.ELASTICSEARCH_INDEX_PREFIX,
  );
}

/**
 * Rows per source three ways: the clean rows of the catalog table by the rules the seed's dirt
 * breaks (no license, a URL that is not one: see seedFaultTable), the rows of the promoted table,
 * and the documents of the run's index (a terms aggregation over every source).
 */
export async function perSourceCounts(
  t: TestEnv,
  names: RefreshNames,
  upstreamTable: string,
): Promise<{
  seeded: Record<string, number>;
  table: Record<string, number>;
  docs: Record<string, number>;
}> {
  const byProvider = (rows: { provider: string; n: number }[]) =>
    Object.fromEntries(rows.map((r) => [r.provider, Number(r.n)]));
  const seeded = await t.dbs.catalog.query<{ provider: string; n: number }>(
    `SELECT provider, count(*)::bigint AS n FROM "${upstreamTable}"
      WHERE license <> '' AND url NOT LIKE 'javascript:%' GROUP BY provider ORDER BY provider`,
  );
  const table = await t.dbs.api.query<{ provider: string; n: number }>(
    `SELECT provider, count(*)::bigint AS n FROM "${names.table}" GROUP BY provider ORDER BY provider`,
  );
  await t.es.indices.refresh({ index: names.index });
  const res = await t.es.search({
    index: names.index,
    size: 0,
    aggs: { sources: { terms: { field: 'provider', size: 10_000 } } },
  });
  const buckets = (res.aggregations?.sources as { buckets: { key: string; doc_count: number }[] })
    .buckets;
  const docs = Object.fromEntries(
    [...buckets].sort((a, b) => (a.key < b.key ? -1 : 1)).map((b) => [b.key, b.doc_count]),
  );
  return { seeded: byProvider(seeded.rows), table: byProvider(table.rows), docs };
}

/** A cluster test's world: the cluster, a test env on it, and worker processes. */
export interface ClusterWorld {
  readonly cluster: EsCluster;
  readonly t: TestEnv;
  readonly pool: WorkerPool;
  /** Starts a production refresh of `media`; resolves with its run id. */
  refresh(media: string): Promise<string>;
  /** Stops the workers, removes the test's world, and starts any node a test left down. */
  close(): Promise<void>;
}

/**
 * Starts (or reuses) the cluster and builds a world on it: media types over fault tables of
 * `rows` seeded rows each, with their primary shards, 1 replica restored at finalize, and two
 * worker processes. `overrides`: more environment variables.
 */
export async function createClusterWorld(
  types: Record<string, { table: string; shards: number; rows: number }>,
  overrides: Record<string, string> = {},
): Promise<ClusterWorld> {
  const cluster = await startCluster();
  const t = await createTestEnv({
    ELASTICSEARCH_URL: cluster.url,
    FRESHET_MEDIA_FILE: writeClusterMedia(types),
    ELASTICSEARCH_REPLICAS: '1',
    WORKER_CONCURRENCY: '2',
    ADMISSION_RETRY_MS: '500',
    ADMISSION_CACHE_MS: '0',
    LOG_LEVEL: 'info',
    ...overrides,
  });
  for (const { table, rows } of Object.values(types))
    await seedFaultTable(t.dbs.catalog, table, rows);
  const pool = startWorkerPool(t.env, 2);
  await pool.ready();
  return {
    cluster,
    t,
    pool,
    refresh: (media) =>
      startRefresh(
        { config: t.config, api: t.dbs.api, media: t.media, queues: t.queues },
        { media },
      ),
    async close() {
      await pool.close();
      await t.close();
      // The next file finds every node up, whatever happened here.
      await cluster.ensureUp();
    },
  };
}
