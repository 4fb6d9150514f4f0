import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { documentDiff, SENSITIVE_FIELD } from '@freshet/core';

void describe('documentDiff (shadow comparison of sampled documents)', () => {
  const live = {
    title: 'A red bicycle',
    tags: [
      { name: 'bicycle', accuracy: 0.97 },
      { name: 'red', accuracy: 0.95 },
    ],
    meta: { width: 640, height: 480, license: { code: 'by', version: '4.0' } },
    creator: null,
  };

  void it('finds no difference when only the order of keys differs, at any depth', () => {
    const shadow = {
      creator: null,
      meta: { license: { version: '4.0', code: 'by' }, height: 480, width: 640 },
      tags: [
        { accuracy: 0.97, name: 'bicycle' },
        { accuracy: 0.95, name: 'red' },
      ],
      title: 'A red bicycle',
    };
    // The old comparison (JSON text) held these apart.
    assert.notEqual(JSON.stringify(live.meta), JSON.stringify(shadow.meta));
    assert.deepEqual(documentDiff(live, shadow), {});
  });

  void it('reports each changed value, a missing field, and a reordered array', () => {
    const shadow = {
      title: 'A red bicycle',
      tags: [
        { name: 'red', accuracy: 0.95 },
        { name: 'bicycle', accuracy: 0.97 },
      ],
      meta: { width: 640, height: 481, license: { code: 'by', version: '4.0' } },
    };
    const diff = documentDiff(live, shadow);
    assert.deepEqual(Object.keys(diff).sort(), ['creator', 'meta', 'tags']);
    assert.deepEqual(diff.creator, { live: null, shadow: undefined });
    assert.equal((diff.meta?.shadow as { height: number }).height, 481);
  });

  void it('tells a number from its text and null from a missing value', () => {
    assert.deepEqual(Object.keys(documentDiff({ a: 1, b: null }, { a: '1', b: undefined })), [
      'a',
      'b',
    ]);
  });

  void it(`ignores ${SENSITIVE_FIELD} when the live build predates it`, () => {
    assert.deepEqual(documentDiff({ title: 'x' }, { title: 'x', [SENSITIVE_FIELD]: false }), {});
    assert.deepEqual(
      Object.keys(documentDiff({ [SENSITIVE_FIELD]: true }, { [SENSITIVE_FIELD]: false })),
      [SENSITIVE_FIELD],
    );
  });
});
