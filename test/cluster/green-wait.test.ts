import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { aliasFilters } from '@freshet/core';
import { waitUntil } from '../helpers/backends.js';
import { createClusterWorld, runNames, type ClusterWorld } from '../helpers/cluster.js';
import { endStatuses, waitForRunStatus } from '../helpers/faults.js';

/**
 * More replicas than the cluster can place (3 replicas need 4 nodes): finalize restores them,
 * waits GREEN_WAIT_MS for green with the shard numbers as the run's waiting reason, then blocks
 * the run (retryable, not failed as a verification would) naming the fix; nothing is promoted.
 */
describe('finalize waits for green, bounded by GREEN_WAIT_MS', { timeout: 600_000 }, () => {
  let w: ClusterWorld;
  let runId = '';
  let reason = '';

  before(async () => {
    w = await createClusterWorld(
      { clip: { table: 'clip', shards: 2, rows: 300 } },
      { ELASTICSEARCH_REPLICAS: '3', GREEN_WAIT_MS: '8000' },
    );
    runId = await w.refresh('clip');
    await waitUntil(
      async () => {
        const run = await w.t.store.getRun(runId);
        reason = run.waiting_reason ?? '';
        return reason.startsWith('finalize waits') || endStatuses.includes(run.status as never);
      },
      'finalize waits for green',
      240_000,
    );
  });

  after(async () => {
    await w?.close();
  });

  it('says why the run waits, with the shard numbers', () => {
    const index = runNames(w.t, 'clip', runId).index;
    assert.match(
      reason,
      new RegExp(
        `^finalize waits for ${index} to be green \\(yellow: [1-9]\\d* unassigned shards,`,
      ),
    );
  });

  it('past the bound the run is blocked (retryable), naming the fix, and nothing is promoted', async () => {
    const run = await waitForRunStatus(w.t.store, runId, undefined, 120_000);
    assert.equal(run.status, 'blocked', run.error ?? '');
    assert.match(
      run.error ?? '',
      /^finalize failed: the new indices .* are not green after \d+ ms \(yellow: .*ELASTICSEARCH_REPLICAS=3 .*lower ELASTICSEARCH_REPLICAS or raise GREEN_WAIT_MS, then retry the run \(freshet retry /,
    );
    assert.equal(run.waiting_reason, null);
    const { rows } = await w.t.dbs.api.query<{ error: string }>(
      `SELECT error FROM freshet.attempts WHERE run_id = $1 AND step = 'finalize'`,
      [runId],
    );
    assert.deepEqual(
      rows.map((r) => r.error.split(':')[0]),
      ['GreenWaitError'],
    );
    const names = runNames(w.t, 'clip', runId);
    assert.deepEqual(await aliasFilters(w.t.es, names.alias), []);
    const { rows: live } = await w.t.dbs.api.query<{ t: string | null }>(
      `SELECT to_regclass($1)::text AS t`,
      [names.table],
    );
    assert.equal(live[0]?.t, null, 'no live table was swapped in');
  });
});
