import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { getMedia, PlanLimitError, seedSynthetic } from '@freshet/core';
import { startWorker } from '@freshet/worker';
import { describeError } from '../../apps/dashboard/src/http-errors.js';
import { planRefresh, startRefresh } from '@freshet/control';
import { createTestEnv, type TestEnv } from '../helpers/env.js';
import { waitForRunStatus } from '../helpers/faults.js';

describe('plan limits: a chunk-size floor and a chunk-count cap', { timeout: 120_000 }, () => {
  let t: TestEnv;
  const rows = 20_000;
  const deps = () => ({ config: t.config, api: t.dbs.api, media: t.media, queues: t.queues });
  const runCount = async () =>
    Number(
      (await t.dbs.api.query<{ n: number }>('SELECT count(*)::int AS n FROM freshet.runs')).rows[0]
        ?.n,
    );

  before(async () => {
    // The production floor, and a cap small enough to reach with a small table.
    t = await createTestEnv({ MIN_CHUNK_SIZE_ROWS: '1000', MAX_CHUNKS_PER_RUN: '5' });
    await seedSynthetic(t.dbs.catalog, getMedia(t.media, 'image'), { rows, seed: 8 });
  });

  after(async () => {
    await t?.close();
  });

  it('refuses a chunk size below the floor before recording a run (a 400 from the API)', async () => {
    await assert.rejects(
      startRefresh(deps(), { media: 'image', chunkSizeRows: 1 }),
      (err: Error) => {
        assert.ok(err instanceof PlanLimitError);
        assert.match(err.message, /chunk size of 1 rows is below the floor of 1000/);
        assert.deepEqual(describeError(err), { status: 400, message: err.message });
        return true;
      },
    );
    assert.equal(await runCount(), 0, 'no run is recorded');
    await assert.rejects(
      planRefresh(
        { ...deps(), catalog: t.dbs.catalog, es: t.es },
        { media: 'image', chunkSizeRows: 999 },
      ),
      PlanLimitError,
    );
  });

  it('refuses a dry run beyond the chunk cap, naming the size that fits, which then plans', async () => {
    const planDeps = { ...deps(), catalog: t.dbs.catalog, es: t.es };
    await assert.rejects(
      planRefresh(planDeps, { media: 'image', chunkSizeRows: 1000 }),
      new RegExp(
        `${rows} rows in chunks of 1000 would be 20 chunks, more than the 5 .*at least 4000 rows`,
      ),
    );
    const plan = await planRefresh(planDeps, { media: 'image', chunkSizeRows: 4000 });
    assert.equal(plan.chunks.count, 5);
    assert.equal(plan.chunks.ranges.length, 5);
  });

  it('fails a run whose table outgrew the cap at preflight, without retrying it', async () => {
    const worker = await startWorker(t.config, t.logger);
    try {
      const runId = await startRefresh(deps(), { media: 'image', chunkSizeRows: 2000 });
      const run = await waitForRunStatus(t.store, runId);
      assert.equal(run?.status, 'failed');
      assert.match(
        run?.error ?? '',
        /preflight failed: .*10 chunks, more than the 5 .*MAX_CHUNKS_PER_RUN/,
      );
      const { rows: attempts } = await t.dbs.api.query<{ status: string }>(
        `SELECT status FROM freshet.attempts WHERE run_id = $1 AND step = 'preflight'`,
        [runId],
      );
      assert.deepEqual(
        attempts.map((a) => a.status),
        ['failed'],
        'one attempt: the same plan would fail again',
      );
      const { rows: chunks } = await t.dbs.api.query<{ n: number }>(
        'SELECT count(*)::int AS n FROM freshet.chunks WHERE run_id = $1',
        [runId],
      );
      assert.equal(chunks[0]?.n, 0, 'no chunk was planned');
    } finally {
      await worker.close();
    }
  });
});
