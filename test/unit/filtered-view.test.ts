import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import {
  buildIndexBody,
  parseMediaDefinition,
  refreshNames,
  repoRoot,
  type MediaDefinition,
} from '@freshet/core';

const mediaDir = path.join(repoRoot, 'packages/core/media');
const shipped = JSON.parse(readFileSync(path.join(mediaDir, 'media.json'), 'utf8')) as {
  image: Record<string, unknown> & { document: Record<string, unknown> };
};
const image = (extra: Record<string, unknown> = {}, dir = mediaDir): MediaDefinition =>
  parseMediaDefinition('image', { ...shipped.image, ...extra }, dir);
const runId = '20261201-101500-abcd';

describe('the filtered option of a media definition', () => {
  const dirs: string[] = [];
  after(() => {
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  it('defaults to alias and accepts index', () => {
    assert.equal(image().filtered, 'alias');
    assert.equal(image({ filtered: 'index' }).filtered, 'index');
  });

  it('refuses another value, naming the field', () => {
    assert.throws(
      () => image({ filtered: 'both' }),
      /media type image is invalid: filtered: must be "alias" \(a filtered alias over the main index\) or "index" \(a second index\), got "both"/,
    );
  });

  it('refuses a document field named sensitive (every document gets it)', () => {
    const document = {
      ...shipped.image.document,
      fields: { ...(shipped.image.document.fields as object), sensitive: 'title' },
    };
    assert.throws(() => image({ document }), /document field sensitive is reserved/);
  });

  it('refuses a mapping that maps sensitive as anything but a boolean', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'freshet-unit-'));
    dirs.push(dir);
    const mapping = (type: string) => {
      writeFileSync(
        path.join(dir, 'm.json'),
        JSON.stringify({ mappings: { properties: { sensitive: { type } } } }),
      );
      return image({ document: { ...shipped.image.document, mapping: 'm.json' } }, dir);
    };
    assert.throws(() => mapping('keyword'), /maps sensitive as \{"type":"keyword"\}/);
    assert.equal(mapping('boolean').filtered, 'alias');
  });
});

describe('names and bodies follow the mode', () => {
  it('alias mode: one index; the filtered alias is a filter over it', () => {
    const n = refreshNames(image(), 'production', runId, 'p-');
    assert.equal(n.filtered, 'alias');
    assert.equal(n.filteredIndex, null);
    assert.deepEqual(n.indices, [`p-image-${runId}`]);
    assert.deepEqual(n.aliases, [
      { alias: 'p-image', index: `p-image-${runId}` },
      {
        alias: 'p-image-filtered',
        index: `p-image-${runId}`,
        filter: { term: { sensitive: false } },
      },
    ]);
  });

  it('index mode: two indices, one per alias, no filter', () => {
    const n = refreshNames(image({ filtered: 'index' }), 'staging', runId);
    assert.deepEqual(n.indices, [`staging-image-${runId}`, `staging-image-${runId}-filtered`]);
    assert.deepEqual(n.aliases, [
      { alias: 'staging-image', index: `staging-image-${runId}` },
      { alias: 'staging-image-filtered', index: `staging-image-${runId}-filtered` },
    ]);
  });

  it('either mode recognises the indices of both modes as earlier builds', () => {
    for (const filtered of ['alias', 'index']) {
      const n = refreshNames(image({ filtered }), 'production', runId);
      assert.ok(n.indexPattern.test('image-20261130-101500-beef'));
      assert.ok(n.indexPattern.test('image-20261130-101500-beef-filtered'));
      assert.ok(!n.indexPattern.test('image_index-20261130-101500-beef'));
    }
  });

  it('the index body maps sensitive as a boolean, next to a strict mapping', () => {
    const body = buildIndexBody(image()) as {
      mappings: { dynamic: string; properties: Record<string, unknown> };
      settings: { index: Record<string, unknown> };
    };
    assert.equal(body.mappings.dynamic, 'strict');
    assert.deepEqual(body.mappings.properties.sensitive, { type: 'boolean' });
    assert.ok('title' in body.mappings.properties);
    assert.equal(body.settings.index.number_of_replicas, 0);
    // The definition's own mapping body is left as it was.
    assert.equal(
      'sensitive' in ((image().mappingBody.mappings as { properties: object }).properties ?? {}),
      false,
    );
  });

  it("primary shards: the mapping file's by default, the definition's shards when set", () => {
    const settingsOf = (def: MediaDefinition) =>
      (
        buildIndexBody(def) as {
          settings: Record<string, unknown> & { index: Record<string, unknown> };
        }
      ).settings;
    assert.equal(settingsOf(image()).index.number_of_shards, 1);
    const three = settingsOf(image({ shards: 3 }));
    assert.equal(three.index.number_of_shards, 3);
    assert.equal(three.index.number_of_replicas, 0);
    for (const shards of [0, 1.5, 2000, '3']) {
      assert.throws(
        () => image({ shards }),
        /media type image is invalid: shards: must be a whole number of primary shards from 1 to 1024, like 3/,
      );
    }
  });
});
