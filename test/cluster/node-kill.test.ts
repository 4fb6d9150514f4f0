import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { waitUntil } from '../helpers/backends.js';
import {
  createClusterWorld,
  masterNode,
  perSourceCounts,
  runNames,
  shardCopies,
  type ClusterNode,
  type ClusterWorld,
} from '../helpers/cluster.js';
import type { TestEnv } from '../helpers/env.js';
import {
  accounting,
  chunkDisagreements,
  exactnessProblems,
  waitForRunStatus,
} from '../helpers/faults.js';

/**
 * On the real 3-node cluster, an Elasticsearch node is SIGKILLed in the middle of indexing (some
 * chunks done, more to come), twice:
 * - a node with none of the new index's shards (2 primaries, built without replicas, on the
 *   other two nodes): every client has the dead node in its list and must skip it; the bulks go
 *   on through the other nodes and the run completes exactly while the node is still down;
 * - a node holding a primary of the new index (3 primaries): that shard is gone until the node is
 *   back (no replica during the build), so chunks wait (admission: the cluster is red) or fail
 *   and are retried; once the node is started again the run completes exactly.
 */
describe(
  'an Elasticsearch node SIGKILLed mid-index on a 3-node cluster',
  { timeout: 900_000 },
  () => {
    let w: ClusterWorld;
    let t: TestEnv;

    /** Starts a refresh of `media` and resolves with its run id once 4 chunks are indexed. */
    const midIndex = async (media: string) => {
      const runId = await w.refresh(media);
      await waitUntil(
        async () => (await t.store.chunkProgress(runId)).indexed >= 4,
        `4 chunks of ${runId} indexed`,
        240_000,
      );
      const progress = await t.store.chunkProgress(runId);
      const run = await t.store.getRun(runId);
      assert.ok(progress.indexed < (run.chunk_count ?? 0), 'the kill comes while chunks are left');
      return runId;
    };

    /** The run ended exactly, per source too. */
    const assertExact = async (media: string, table: string, runId: string) => {
      const acc = await accounting(t, runId);
      assert.deepEqual(exactnessProblems(acc), []);
      const counts = await perSourceCounts(t, runNames(t, media, runId), table);
      assert.deepEqual(counts.table, counts.seeded);
      assert.deepEqual(counts.docs, counts.seeded);
      assert.deepEqual(await chunkDisagreements(t, runId), []);
    };

    before(async () => {
      w = await createClusterWorld(
        {
          pair: { table: 'pair', shards: 2, rows: 4000 },
          trio: { table: 'trio', shards: 3, rows: 4000 },
        },
        {
          CHUNK_SIZE_ROWS: '100',
          CHUNK_ATTEMPTS: '12',
          CHUNK_BACKOFF_MS: '500',
          INDEX_BULK_FLUSH_BYTES: '20000',
          ELASTICSEARCH_REQUEST_TIMEOUT_MS: '30000',
        },
      );
      t = w.t;
    });

    after(async () => {
      await w?.close();
    });

    it('a node holding none of the new index: bulks go on through the other nodes, the run completes exactly while it is down', async () => {
      const runId = await midIndex('pair');
      const index = runNames(t, 'pair', runId).index;
      const holders = new Set((await shardCopies(t.es, index)).map((s) => s.node));
      const master = await masterNode(t.es);
      const victim: ClusterNode | undefined = w.cluster.nodes.find(
        (n) => !holders.has(n.name) && n.name !== master,
      );
      // With 3 nodes and 2 shard copies one node holds none; it may be the master, then kill it all the same.
      const target = victim ?? w.cluster.nodes.find((n) => !holders.has(n.name));
      assert.ok(target, `a node holds no copy of ${index}`);
      await target.kill();
      const run = await waitForRunStatus(t.store, runId, undefined, 300_000);
      assert.equal(run.status, 'succeeded', run.error ?? '');
      assert.equal(await target.pid(), null, `${target.name} stayed down for the whole run`);
      // Finalize restored 1 replica: 2 primaries and 2 replicas fit on the 2 nodes left.
      const h = await t.es.cluster.health({ index });
      assert.equal(h.status, 'green');
      assert.equal(h.number_of_nodes, 2);
      await assertExact('pair', 'pair', runId);
      await target.start();
    });

    it('a node holding a primary of the new index: chunks wait or retry until it is back, then the run completes exactly', async (c) => {
      const runId = await midIndex('trio');
      const index = runNames(t, 'trio', runId).index;
      const master = await masterNode(t.es);
      const primaries = new Set(
        (await shardCopies(t.es, index)).filter((s) => s.primary).map((s) => s.node),
      );
      const victim = w.cluster.nodes.find((n) => primaries.has(n.name) && n.name !== master);
      assert.ok(victim, `a non-master node holds a primary of ${index}`);
      await victim.kill();

      // The run notices: chunk attempts wait for headroom (red) or fail on the missing shard.
      let noticed = '';
      await waitUntil(
        async () => {
          const reason = (await t.store.getRun(runId)).waiting_reason ?? '';
          if (/red/.test(reason)) noticed = reason;
          const { rows } = await t.dbs.api.query<{ error: string }>(
            `SELECT error FROM freshet.attempts WHERE run_id = $1 AND status = 'failed' LIMIT 1`,
            [runId],
          );
          if (noticed === '' && rows[0]) noticed = `a chunk attempt failed: ${rows[0].error}`;
          return noticed !== '';
        },
        'the run notices the lost shard',
        180_000,
      );
      c.diagnostic(`noticed: ${noticed}`);
      // The client still answers through the nodes left, whichever it tries first.
      for (let i = 0; i < 6; i++) {
        assert.equal((await t.es.cluster.health({ index })).number_of_nodes, 2);
      }
      assert.notEqual((await t.store.getRun(runId)).status, 'succeeded');

      await victim.start();
      const run = await waitForRunStatus(t.store, runId, undefined, 300_000);
      assert.equal(run.status, 'succeeded', run.error ?? '');
      assert.equal((await t.es.cluster.health({ index })).status, 'green');
      await assertExact('trio', 'trio', runId);
    });
  },
);
