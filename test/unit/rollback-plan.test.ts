import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { nonSensitiveQuery, planRollback, type MediaBuilds } from '@freshet/core';

const A = '20261201-100000-aaaa';
const B = '20261201-110000-bbbb';
const C = '20261201-120000-cccc';

/** Live B (alias mode), kept A (index mode), aliases on B: the usual state after a promotion. */
const usual: MediaBuilds = {
  media: 'image',
  profile: 'production',
  table: 'image',
  previousTable: 'image_previous',
  liveRun: B,
  previousExists: true,
  keptRun: A,
  servingRun: B,
  liveIndices: [`image-${B}`],
  keptIndices: [`image-${A}`, `image-${A}-filtered`],
  alias: 'image',
  filteredAlias: 'image-filtered',
};

describe('planRollback', () => {
  it('swaps to the kept build, its filtered alias in the mode it was built in', () => {
    assert.deepEqual(planRollback(usual), {
      kind: 'swap',
      toRun: A,
      fromRun: B,
      targets: [
        { alias: 'image', index: `image-${A}` },
        { alias: 'image-filtered', index: `image-${A}-filtered` },
      ],
    });
    const back = planRollback({
      ...usual,
      liveRun: A,
      keptRun: B,
      servingRun: A,
      liveIndices: usual.keptIndices,
      keptIndices: usual.liveIndices,
    });
    assert.deepEqual(back.kind === 'swap' && back.targets, [
      { alias: 'image', index: `image-${B}` },
      { alias: 'image-filtered', index: `image-${B}`, filter: nonSensitiveQuery() },
    ]);
  });

  it('finishes a rollback that stopped between its table swap and its alias move', () => {
    const plan = planRollback({
      ...usual,
      liveRun: A,
      keptRun: B,
      liveIndices: usual.keptIndices,
      keptIndices: usual.liveIndices,
    });
    assert.equal(plan.kind, 'aliases');
    assert.equal(plan.kind === 'aliases' && plan.toRun, A);
  });

  const refusals: [string, Partial<MediaBuilds>, RegExp][] = [
    [
      'no kept table',
      { previousExists: false, keptRun: null },
      /^nothing to roll back to .*no kept table image_previous/,
    ],
    ['a kept table without a comment', { keptRun: null }, /has no "freshet run <runId>" comment/],
    [
      'the kept indices gone',
      { keptIndices: [] },
      /the indices of the kept build \(run 20261201-100000-aaaa\) are gone/,
    ],
    [
      'aliases on a third build',
      { servingRun: C },
      /they are of different builds, so nothing was changed/,
    ],
    [
      'a live table without a comment',
      { liveRun: null },
      /the live table image has no "freshet run/,
    ],
  ];
  for (const [name, change, message] of refusals) {
    it(`refuses: ${name}`, () => {
      const plan = planRollback({ ...usual, ...change });
      assert.equal(plan.kind, 'refused');
      assert.match(plan.kind === 'refused' ? plan.reason : '', message);
    });
  }
});
