import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { aliasFilters } from '@freshet/core';
import { waitUntil } from '../helpers/backends.js';
import {
  createClusterWorld,
  masterNode,
  perSourceCounts,
  runNames,
  shardCopies,
  type ClusterWorld,
} from '../helpers/cluster.js';
import type { TestEnv } from '../helpers/env.js';
import {
  accounting,
  chunkDisagreements,
  exactnessProblems,
  openCheckpoints,
  waitForRunStatus,
  type Checkpoints,
} from '../helpers/faults.js';

/**
 * On the real 3-node cluster: a build with 3 primary shards gets 1 replica back at finalize and
 * is promoted only once green; a second build whose cluster loses a node between finalize and
 * promotion waits (the run says why), leaves the live table and both aliases on the first build
 * all the while, and completes once the node is back.
 */
describe('replicas and green before promotion on a 3-node cluster', { timeout: 900_000 }, () => {
  let w: ClusterWorld;
  let t: TestEnv;
  let cp: Checkpoints | undefined;
  let runA = '';

  const health = async (index: string) => t.es.cluster.health({ index });
  const refresh = () => w.refresh('clip');

  before(async () => {
    w = await createClusterWorld(
      { clip: { table: 'clip', shards: 3, rows: 2000 } },
      { CHUNK_SIZE_ROWS: '200', INDEX_BULK_FLUSH_BYTES: '50000' },
    );
    t = w.t;
  });

  after(async () => {
    await cp?.close();
    await w?.close();
  });

  it('a refresh with 3 primary shards and 1 replica ends green and exact, per source', async () => {
    runA = await refresh();
    const run = await waitForRunStatus(t.store, runA, undefined, 300_000);
    assert.equal(run.status, 'succeeded', run.error ?? '');
    const names = runNames(t, 'clip', runA);
    const h = await health(names.index);
    assert.equal(h.status, 'green');
    assert.equal(h.active_primary_shards, 3);
    assert.equal(h.active_shards, 6, 'each of the 3 primaries has its replica');
    const copies = await shardCopies(t.es, names.index);
    assert.equal(new Set(copies.map((c) => c.node)).size, 3, 'the copies are spread over 3 nodes');
    const settings = await t.es.indices.getSettings({ index: names.index });
    assert.equal(settings[names.index]?.settings?.index?.number_of_replicas, '1');

    const acc = await accounting(t, runA);
    assert.deepEqual(exactnessProblems(acc), []);
    const counts = await perSourceCounts(t, names, 'clip');
    assert.equal(Object.keys(counts.seeded).length, 13);
    assert.deepEqual(counts.table, counts.seeded, 'table rows per source == seeded clean rows');
    assert.deepEqual(counts.docs, counts.seeded, 'documents per source == seeded clean rows');
    assert.deepEqual(await chunkDisagreements(t, runA), []);
  });

  it('a node stopped before promotion: the run waits for green, serves the old build meanwhile, and completes once the node is back', async (c) => {
    assert.ok(runA, 'the first build is live');
    const namesA = runNames(t, 'clip', runA);
    cp = await openCheckpoints(t.config.API_DATABASE_URL);
    // Promote's attempt is held as it starts (after finalize saw the new index green).
    const held = await cp.arm('freshet.attempts', 'INSERT', `NEW.step = 'promote'`);
    const runB = await refresh();
    const namesB = runNames(t, 'clip', runB);
    await held.reached(300_000);
    assert.equal((await health(namesB.index)).status, 'green', 'finalize waited for green');

    // A node holding a copy of the new index, not the master (no election to wait for).
    const master = await masterNode(t.es);
    const holders = new Set((await shardCopies(t.es, namesB.index)).map((s) => s.node));
    const victim = w.cluster.nodes.find((n) => n.name !== master && holders.has(n.name));
    assert.ok(victim, `a non-master node holds a copy of ${namesB.index}`);
    await victim.stop();
    // Its replicas stay unassigned (delayed_timeout 30m): the new index is yellow, not red.
    await waitUntil(
      async () => (await health(namesB.index)).status === 'yellow',
      `${namesB.index} is yellow without ${victim.name}`,
      120_000,
    );
    await held.release();

    let reason = '';
    await waitUntil(
      async () => {
        reason = (await t.store.getRun(runB)).waiting_reason ?? '';
        return /^promotion waits for .* to be green/.test(reason);
      },
      'the run says promotion waits for green',
      120_000,
    );
    c.diagnostic(`waiting reason: ${reason}`);
    assert.match(
      reason,
      new RegExp(
        `${namesB.index} to be green \\(yellow: [1-9]\\d* unassigned shards, .*; [1-9]\\d* shard copies in the cluster wait for a node that left`,
      ),
    );
    const run = await t.store.getRun(runB);
    assert.equal(run.status, 'running');
    assert.equal(run.stage, 'promote');
    // Neither the aliases nor the table moved while the new index is not green.
    const holdersOf = async (alias: string) =>
      (await aliasFilters(t.es, alias)).map((h) => h.index);
    assert.deepEqual(await holdersOf(namesA.alias), [namesA.index]);
    assert.deepEqual(await holdersOf(namesA.filteredAlias), [namesA.index]);
    const { rows } = await t.dbs.api.query<{ c: string | null }>(
      `SELECT obj_description('"${namesA.table}"'::regclass, 'pg_class') AS c`,
    );
    assert.equal(rows[0]?.c, `freshet run ${runA}`, 'the live table is still the first build');

    await victim.start();
    const done = await waitForRunStatus(t.store, runB, undefined, 300_000);
    assert.equal(done.status, 'succeeded', done.error ?? '');
    assert.equal(done.waiting_reason, null);
    assert.equal((await health(namesB.index)).status, 'green');
    const acc = await accounting(t, runB);
    assert.deepEqual(exactnessProblems(acc), []);
    assert.deepEqual(await holdersOf(namesB.alias), [namesB.index]);
    const { rows: logs } = await t.dbs.api.query<{ message: string }>(
      `SELECT msg AS message FROM freshet.logs WHERE run_id = $1 AND msg LIKE 'promotion%' ORDER BY id`,
      [runB],
    );
    assert.deepEqual(
      logs.map((l) => l.message),
      ['promotion waits for green', 'promotion: the new indices are green'],
    );
  });
});
