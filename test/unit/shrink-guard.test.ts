import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { compareCounts, judgeShrink, loadConfig, shrinkLimits } from '@freshet/core';

const limits = shrinkLimits(loadConfig({}));
const production = { profile: 'production' } as const;
const judge = (
  live: Record<string, number>,
  next: Record<string, number>,
  run: Parameters<typeof judgeShrink>[2] = production,
) => judgeShrink(compareCounts(live, next), limits, run);

void describe('the shrink guard decision', () => {
  void it('defaults: 10% of all rows, 50% of a source with at least 1000 rows', () => {
    assert.deepEqual(limits, { maxDrop: 0.1, maxSourceDrop: 0.5, sourceMinRows: 1000 });
  });

  void it('holds a drop of all rows beyond PROMOTE_MAX_DROP, naming the sources it came from', () => {
    const check = judge({ flickr: 4000, wiki: 6000 }, { flickr: 2800, wiki: 6000 });
    assert.equal(check.outcome, 'held');
    assert.deepEqual(check.totals, { live: 10000, shadow: 8800, change: -0.12 });
    assert.deepEqual(check.sources.flickr, { live: 4000, shadow: 2800, change: -0.3 });
    assert.deepEqual(check.drops, [
      'total rows drop 12.0% (10000 -> 8800), beyond PROMOTE_MAX_DROP 10%; most from source flickr -30% (4000 -> 2800)',
    ]);
  });

  void it('a total drop of exactly the limit is not held; one row more is', () => {
    assert.equal(judge({ a: 500, b: 500 }, { a: 400, b: 500 }).outcome, 'within-limits');
    assert.equal(judge({ a: 500, b: 500 }, { a: 399, b: 500 }).outcome, 'held');
  });

  void it('holds a source of at least PROMOTE_SOURCE_MIN_ROWS that loses more than half', () => {
    const check = judge({ big: 20000, flickr: 1000 }, { big: 20000, flickr: 499 });
    assert.ok(check.totals.change > -0.1, 'the total alone would pass');
    assert.equal(check.outcome, 'held');
    assert.deepEqual(check.drops, [
      'source flickr drops 50.1% (1000 -> 499), beyond PROMOTE_MAX_SOURCE_DROP 50% of a source with at least 1000 rows',
    ]);
    assert.equal(
      judge({ big: 20000, flickr: 1000 }, { big: 20000, flickr: 500 }).outcome,
      'within-limits',
      'exactly half is within the limit',
    );
  });

  void it('a source below PROMOTE_SOURCE_MIN_ROWS may vanish without holding (the total decides)', () => {
    const check = judge({ big: 20000, tiny: 999 }, { big: 20000 });
    assert.deepEqual(check.sources.tiny, { live: 999, shadow: 0, change: -1 });
    assert.equal(check.outcome, 'within-limits');
    assert.deepEqual(check.drops, []);
  });

  void it('growth never counts: a new source, or a source that doubles, is fine', () => {
    const check = judge({ a: 5000 }, { a: 10000, fresh: 3000 });
    assert.equal(check.outcome, 'within-limits');
    assert.deepEqual(check.sources.fresh, { live: 0, shadow: 3000, change: 3000 });
    // One source growing hides another's collapse from the total, not from the per-source rule.
    assert.equal(judge({ a: 5000, b: 5000 }, { a: 10000, b: 1000 }).outcome, 'held');
  });

  void it('a first promotion (nothing live) never holds', () => {
    assert.equal(judge({}, { a: 10 }).outcome, 'first-promotion');
    assert.equal(judge({ a: 0 }, {}).outcome, 'first-promotion');
  });

  void it('staging is exempt; the drops are still listed', () => {
    const check = judge({ a: 10000 }, { a: 1000 }, { profile: 'staging' });
    assert.equal(check.outcome, 'staging-exempt');
    assert.equal(check.drops.length, 2, check.drops.join('; '));
  });

  void it('allowShrink approves ahead of time: recorded, not held', () => {
    const check = judge({ a: 10000 }, { a: 1000 }, { ...production, allowShrink: true });
    assert.equal(check.outcome, 'approved-ahead');
    assert.equal(check.drops.length, 2);
    assert.equal(
      judge({ a: 10000 }, { a: 9999 }, { ...production, allowShrink: true }).outcome,
      'within-limits',
    );
  });

  void it('follows the configured limits', () => {
    const strict = shrinkLimits(
      loadConfig({
        PROMOTE_MAX_DROP: '0.01',
        PROMOTE_MAX_SOURCE_DROP: '0.2',
        PROMOTE_SOURCE_MIN_ROWS: '10',
      }),
    );
    const counts = compareCounts({ a: 100, b: 900 }, { a: 75, b: 900 });
    const check = judgeShrink(counts, strict, production);
    assert.equal(check.outcome, 'held');
    assert.deepEqual(check.drops, [
      'total rows drop 2.5% (1000 -> 975), beyond PROMOTE_MAX_DROP 1%; most from source a -25% (100 -> 75)',
      'source a drops 25.0% (100 -> 75), beyond PROMOTE_MAX_SOURCE_DROP 20% of a source with at least 10 rows',
    ]);
    assert.equal(judgeShrink(counts, limits, production).outcome, 'within-limits');
  });
});
