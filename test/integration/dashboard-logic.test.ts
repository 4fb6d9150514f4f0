// The dashboard's pure parts, without any service: token checks,
// throughput and ETA, per-source counts, the shadow comparison and start-request validation. (Kept beside the other
// dashboard tests; it needs no Redis, PostgreSQL or Elasticsearch.)
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { UserError } from '@freshet/core';
import { roleFromAuthorization, roleTokens, safeEqual } from '@freshet/dashboard';
import { comparisonOf, computePace, sourceCounts } from '@freshet/control';
import { parseStartBody } from '../../apps/dashboard/src/api.js';

const op = 'operator-secret-1-0123456789abcdef';
const vw = 'viewer-secret-22-fedcba9876543210';
const basic = (user: string, pass: string) =>
  `Basic ${Buffer.from(`${user}:${pass}`).toString('base64')}`;

describe('dashboard logic', { timeout: 10_000 }, () => {
  it('maps Bearer and Basic credentials to roles', () => {
    const tokens = { operator: op, viewer: vw };
    assert.equal(roleFromAuthorization(`Bearer ${op}`, tokens), 'operator');
    assert.equal(roleFromAuthorization(`bearer ${vw}`, tokens), 'viewer');
    assert.equal(roleFromAuthorization(basic('operator', op), tokens), 'operator');
    assert.equal(roleFromAuthorization(basic('viewer', vw), tokens), 'viewer');
    // Basic with a password containing ':' keeps everything after the first one.
    assert.equal(
      roleFromAuthorization(basic('viewer', 'a:b:c-long'), { viewer: 'a:b:c-long' }),
      'viewer',
    );
    for (const header of [
      undefined,
      '',
      'Bearer',
      `Bearer ${op.slice(0, -1)}`,
      basic('viewer', op),
      basic('operator', vw),
      basic('root', op),
      `Digest ${op}`,
    ]) {
      assert.equal(roleFromAuthorization(header, tokens), undefined, String(header));
    }
  });

  it('lets no one in as a role whose token is not configured', () => {
    const tokens = roleTokens({ FRESHET_VIEWER_TOKEN: vw });
    assert.deepEqual(Object.keys(tokens), ['viewer']);
    assert.equal(roleFromAuthorization(basic('operator', ''), tokens), undefined);
    assert.equal(roleFromAuthorization('Bearer ', tokens), undefined);
    assert.equal(roleFromAuthorization(basic('operator', vw), tokens), undefined);
    assert.throws(
      () => roleTokens({}),
      (err: Error) =>
        err instanceof UserError &&
        /FRESHET_OPERATOR_TOKEN/.test(err.message) &&
        /FRESHET_VIEWER_TOKEN/.test(err.message),
    );
  });

  it('compares secrets of any length', () => {
    assert.equal(safeEqual('abc', 'abc'), true);
    assert.equal(safeEqual('abc', 'abcd'), false);
    assert.equal(safeEqual('', 'x'), false);
  });

  it('derives rows/s and ETA from recent chunk progress while active', () => {
    const pace = computePace({
      active: true,
      sinceFirstChunkSeconds: 300,
      chunkPhaseSeconds: 290,
      totalChunks: 100,
      indexedChunks: 40,
      rowsIndexed: 40_000,
      windowChunks: 12,
      windowRows: 12_000,
    });
    assert.equal(pace.basis, 'recent');
    assert.equal(pace.windowSeconds, 60);
    assert.equal(pace.rowsPerSecond, 200);
    assert.equal(pace.chunksPerSecond, 0.2);
    assert.equal(pace.etaSeconds, 300);
    // Early in a run the window is the time since the first chunk started.
    const earlyInput = {
      active: true,
      sinceFirstChunkSeconds: 10,
      chunkPhaseSeconds: null,
      totalChunks: 10,
      indexedChunks: 2,
      rowsIndexed: 2000,
      windowChunks: 2,
      windowRows: 2000,
    };
    const early = computePace(earlyInput);
    assert.equal(early.windowSeconds, 10);
    assert.equal(early.rowsPerSecond, 200);
    assert.equal(early.etaSeconds, 40);
    // No chunk indexed recently: no ETA rather than infinity.
    const stalled = computePace({ ...earlyInput, windowChunks: 0, windowRows: 0 });
    assert.equal(stalled.etaSeconds, null);
    assert.equal(stalled.rowsPerSecond, 0);
    // Nothing started yet.
    assert.equal(computePace({ ...earlyInput, sinceFirstChunkSeconds: null }).basis, 'none');
  });

  it('reports the average of a finished run, with no ETA', () => {
    const pace = computePace({
      active: false,
      sinceFirstChunkSeconds: 1000,
      chunkPhaseSeconds: 50,
      totalChunks: 10,
      indexedChunks: 10,
      rowsIndexed: 10_000,
      windowChunks: 0,
      windowRows: 0,
    });
    assert.deepEqual(pace, {
      rowsPerSecond: 200,
      chunksPerSecond: 0.2,
      etaSeconds: null,
      basis: 'whole run',
      windowSeconds: 50,
    });
  });

  it('lists every source before and after, largest first', () => {
    assert.deepEqual(sourceCounts(null), []);
    assert.deepEqual(sourceCounts({ before: { a: 1, b: 5 } }), [
      { source: 'b', before: 5, after: null, change: null },
      { source: 'a', before: 1, after: null, change: null },
    ]);
    assert.deepEqual(sourceCounts({ before: { a: 1, b: 5 }, after: { b: 7, c: 2 } }), [
      { source: 'b', before: 5, after: 7, change: 2 },
      { source: 'c', before: 0, after: 2, change: 2 },
      { source: 'a', before: 1, after: 0, change: -1 },
    ]);
  });

  it("reads a shadow run's comparison from its counts, or null", () => {
    const report = {
      totals: { live: 10, shadow: 5, change: -0.5 },
      sources: { a: { live: 10, shadow: 5, change: -0.5 } },
      sampled: 2,
      diffs: [{ id: '7', fields: { title: { live: 'x', shadow: null } } }],
      diffRate: 0.5,
      shiftedFields: [],
      withinThresholds: false,
      reasons: ['total rows change -50.0% (10 -> 5)'],
    };
    assert.deepEqual(comparisonOf({ before: { a: 10 }, comparison: report }), report);
    for (const counts of [
      null,
      {},
      { comparison: null },
      { comparison: 'x' },
      { comparison: { ...report, reasons: undefined } },
      { comparison: { ...report, withinThresholds: 'no' } },
    ]) {
      assert.equal(comparisonOf(counts), null, JSON.stringify(counts));
    }
  });

  it('validates a start request', () => {
    assert.deepEqual(parseStartBody({ media: 'image' }), { media: 'image' });
    assert.deepEqual(parseStartBody({ media: 'audio', profile: 'staging', chunkSizeRows: 500 }), {
      media: 'audio',
      profile: 'staging',
      chunkSizeRows: 500,
    });
    assert.deepEqual(parseStartBody({ media: 'image', shadow: true, dryRun: false }), {
      media: 'image',
      shadow: true,
      dryRun: false,
    });
    for (const bad of [
      null,
      [],
      'image',
      {},
      { media: '' },
      { media: 'x', profile: 1 },
      { media: 'x', chunkSizeRows: 1.5 },
      { media: 'x', extra: 1 },
      { media: 'x', shadow: 'true' },
      { media: 'x', dryRun: 1 },
      { media: 'x', dryRun: null },
    ]) {
      assert.throws(() => parseStartBody(bad), { name: 'HttpError' }, JSON.stringify(bad));
    }
  });
});
