import assert from 'node:assert/strict';
import { randomBytes, randomInt } from 'node:crypto';
import { describe, it } from 'node:test';
import {
  bigintToUuid,
  checkChunkCount,
  chunkCount,
  chunkSettings,
  loadConfig,
  PlanLimitError,
  summariseRanges,
  uuidRanges,
  type MediaDefinition,
  planIntegerChunks,
  planUuidChunks,
  rangeContains,
  rangePredicate,
  uuidFractionLimit,
  uuidToBigint,
  type KeyRange,
  type KeyType,
} from '@freshet/core';

/** Every key lies in exactly one range, and consecutive ranges meet with no gap. */
function assertPartition(type: KeyType, ranges: KeyRange[], keys: string[]): void {
  assert.equal(ranges[0]?.start, null, 'the first range is open below');
  assert.equal(ranges.at(-1)?.end, null, 'the last range is open above');
  for (let i = 1; i < ranges.length; i++) {
    assert.equal(ranges[i]?.start, ranges[i - 1]?.end, `ranges ${i - 1} and ${i} meet`);
  }
  for (const key of keys) {
    const holders = ranges.filter((r) => rangeContains(type, r, key));
    assert.equal(holders.length, 1, `key ${key} is in ${holders.length} ranges`);
  }
}

const randomUuid = () => {
  const b = randomBytes(16);
  return bigintToUuid(BigInt(`0x${b.toString('hex')}`));
};

describe('chunk planning', () => {
  it('uuid ranges partition random key sets, including the extremes', () => {
    for (let trial = 0; trial < 50; trial++) {
      const count = randomInt(1, 300);
      const keys = Array.from({ length: randomInt(1, 200) }, randomUuid);
      keys.push(bigintToUuid(0n), bigintToUuid((1n << 128n) - 1n));
      const ranges = planUuidChunks(count);
      assert.equal(ranges.length, count);
      assertPartition('uuid', ranges, keys);
    }
  });

  it('uuid ranges put every boundary key in the range it starts', () => {
    const ranges = planUuidChunks(7);
    for (let i = 1; i < ranges.length; i++) {
      const boundary = ranges[i]?.start as string;
      assert.equal(rangeContains('uuid', ranges[i] as KeyRange, boundary), true);
      assert.equal(rangeContains('uuid', ranges[i - 1] as KeyRange, boundary), false);
    }
  });

  it('uuid ranges are even over the key space', () => {
    const ranges = planUuidChunks(4);
    assert.deepEqual(
      ranges.map((r) => r.start),
      [
        null,
        '40000000-0000-0000-0000-000000000000',
        '80000000-0000-0000-0000-000000000000',
        'c0000000-0000-0000-0000-000000000000',
      ],
    );
  });

  it('integer ranges partition random, sparse and dense key sets', () => {
    for (let trial = 0; trial < 100; trial++) {
      const sparse = trial % 2 === 0;
      const n = randomInt(1, 300);
      const keys = Array.from({ length: n }, () =>
        sparse ? BigInt(randomInt(0, 2 ** 47)) * 1000n - 2n ** 40n : BigInt(randomInt(1, 500)),
      );
      const min = keys.reduce((a, b) => (a < b ? a : b));
      const max = keys.reduce((a, b) => (a > b ? a : b));
      const count = randomInt(1, 60);
      const ranges = planIntegerChunks(min, max, count);
      assert.ok(ranges.length <= count && ranges.length >= 1);
      // Keys outside what was planned (inserted later) still have a home.
      const probes = [...keys, min - 1n, max + 1n].map(String);
      assertPartition('integer', ranges, probes);
    }
  });

  it('a single row makes one range; integer limits are handled', () => {
    assertPartition('integer', planIntegerChunks(5n, 5n, 10), ['5', '4', '6']);
    assert.equal(planIntegerChunks(5n, 5n, 10).length, 1);
    const lo = -(2n ** 63n);
    const hi = 2n ** 63n - 1n;
    const ranges = planIntegerChunks(lo, hi, 16);
    assert.equal(ranges.length, 16);
    assertPartition('bigint', ranges, [lo, hi, 0n, -1n].map(String));
    assert.equal(planIntegerChunks(0n, -1n, 3).length, 1, 'an empty table is one open range');
  });

  it('chunk count rounds up and is at least one', () => {
    assert.equal(chunkCount(0, 100), 1);
    assert.equal(chunkCount(100, 100), 1);
    assert.equal(chunkCount(101, 100), 2);
    assert.equal(chunkCount(712_000_000, 100_000), 7120);
  });

  it('uuid text and integer value round-trip', () => {
    for (let i = 0; i < 100; i++) {
      const u = randomUuid();
      assert.equal(bigintToUuid(uuidToBigint(u)), u);
    }
  });

  it('range predicates are half-open and refuse anything but a key literal', () => {
    assert.equal(
      rangePredicate('integer', '"id"', { start: '10', end: '20' }),
      '"id" >= 10::bigint AND "id" < 20::bigint',
    );
    assert.equal(rangePredicate('uuid', '"k"', { start: null, end: null }), 'TRUE');
    assert.throws(() => rangePredicate('integer', '"id"', { start: '1; DROP TABLE x', end: null }));
    assert.throws(() =>
      rangePredicate('uuid', '"k"', {
        start: "00000000-0000-0000-0000-000000000000' OR '1'='1",
        end: null,
      }),
    );
  });
});

describe('chunk planning with a row cap (staging)', () => {
  it('uuid ranges cover exactly [0, limit) and nothing beyond', () => {
    const limit = uuidFractionLimit(0.25) as bigint;
    assert.equal(bigintToUuid(limit), '40000000-0000-0000-0000-000000000000');
    const ranges = planUuidChunks(5, limit);
    assert.equal(ranges.at(-1)?.end, '40000000-0000-0000-0000-000000000000');
    const inside = Array.from({ length: 200 }, () =>
      bigintToUuid(uuidToBigint(randomUuid()) % limit),
    );
    for (const key of inside) {
      assert.equal(ranges.filter((r) => rangeContains('uuid', r, key)).length, 1);
    }
    for (const key of [
      '40000000-0000-0000-0000-000000000000',
      'ffffffff-ffff-ffff-ffff-ffffffffffff',
    ]) {
      assert.equal(ranges.filter((r) => rangeContains('uuid', r, key)).length, 0, key);
    }
    assert.equal(uuidFractionLimit(1), undefined);
  });

  it('integer ranges end where the cap says', () => {
    const ranges = planIntegerChunks(10n, 59n, 5, 60n);
    assert.equal(ranges.at(-1)?.end, '60');
    assert.equal(ranges.filter((r) => rangeContains('integer', r, '60')).length, 0);
    assertPartition(
      'integer',
      [...ranges.slice(0, -1), { ...(ranges.at(-1) as KeyRange), end: null }],
      ['10', '59'],
    );
  });
});

describe('plan limits', () => {
  const config = loadConfig({});
  const def = { chunkSizeRows: 100_000 } as MediaDefinition;

  it('refuses a chunk size below MIN_CHUNK_SIZE_ROWS from the request, the config or the media', () => {
    assert.throws(
      () => chunkSettings(config, def, 'production', 1),
      (err: Error) =>
        err instanceof PlanLimitError &&
        /chunk size of 1 rows is below the floor of 1000/.test(err.message),
    );
    assert.throws(
      () => chunkSettings(loadConfig({ CHUNK_SIZE_ROWS: '999' }), def, 'production'),
      PlanLimitError,
    );
    assert.throws(() =>
      chunkSettings(config, { chunkSizeRows: 10 } as MediaDefinition, 'production'),
    );
    assert.equal(chunkSettings(config, def, 'production', 1000).chunkSizeRows, 1000);
    assert.equal(chunkSettings(config, def, 'staging').chunkSizeRows, 10_000);
  });

  it('refuses more chunks than MAX_CHUNKS_PER_RUN and names the chunk size that fits', () => {
    assert.doesNotThrow(() => checkChunkCount(1_000_000_000, 100_000, 10_000));
    assert.throws(
      () => checkChunkCount(700_000_000, 1000, 10_000),
      /700000000 rows in chunks of 1000 would be 700000 chunks, more than the 10000 .*at least 70000 rows/,
    );
    // The size it names does fit.
    assert.doesNotThrow(() => checkChunkCount(700_000_001, 70_001, 10_000));
  });

  it('computes ranges on demand: a billion-range plan is summarised without being built', () => {
    const ranges = uuidRanges(1_000_000_000);
    const lines = summariseRanges(ranges);
    assert.equal(lines.length, 7);
    assert.match(lines[3] ?? '', /999999994 more/);
    const last = ranges.at(999_999_999);
    assert.equal(last.end, null);
    assert.equal(ranges.at(999_999_998).end, last.start, 'neighbouring ranges meet');
    assert.deepEqual(
      uuidRanges(5).slice(0, 5),
      planUuidChunks(5),
      'the same ranges as the array form',
    );
    assert.throws(() => ranges.at(1_000_000_000), RangeError);
  });
});
