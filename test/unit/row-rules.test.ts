import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  compileRowRules,
  getMedia,
  loadMediaCatalog,
  parseMediaDefinition,
  repoRoot,
  type CleanedRow,
} from '@freshet/core';

const media = loadMediaCatalog(`${repoRoot}/packages/core/media/media.json`);
const image = getMedia(media, 'image');
const rules = compileRowRules(image, ['water', 'bird']);

/** An image row as COPY TO text gives it, with `over` replacing columns by name. */
function row(over: Record<string, string | null> = {}): (string | null)[] {
  const base: Record<string, string | null> = {
    identifier: '4f70f6bc-605a-4043-9385-d84b249dd3ad',
    created_on: '2018-11-09 10:31:06.910129+00',
    updated_on: '2019-08-05 17:04:33.955919+00',
    provider: 'flickr',
    url: 'https://live.staticflickr.com/1740/42848471642_d0625bfcc2_b.jpg',
    license: 'by',
    title: 'A quiet river',
    meta_data: '{"pub_date": "1529412298", "description": "Birds over the water"}',
    tags: '[{"name": "river", "accuracy": 0.95, "provider": "clarifai"}]',
    removed_from_source: 'f',
    width: '1024',
    standardized_popularity: '0.5',
  };
  const values = { ...base, ...over };
  return image.columns.map((c) => values[c.name] ?? null);
}

const cleaned = (values: (string | null)[]): CleanedRow => {
  const outcome = rules.clean(values);
  if (outcome.rejected !== undefined) assert.fail(`rejected: ${outcome.rejected}`);
  return outcome;
};

void describe('compiled row rules', () => {
  void it('an untouched row costs nothing: the same array back, no changes', () => {
    const values = row();
    const outcome = cleaned(values);
    assert.equal(outcome.values, values);
    assert.equal(outcome.changed.length, 0);
    assert.equal(outcome.tagsDropped, null);
  });

  void it('builds the document field by field, with "sensitive" last', () => {
    const doc = JSON.parse(cleaned(row()).document) as Record<string, unknown>;
    assert.deepEqual(Object.keys(doc), [...Object.keys(image.document.fields), 'sensitive']);
    assert.equal(doc.description, 'Birds over the water');
    assert.equal(doc.created_on, '2018-11-09T10:31:06.910129+00:00');
    assert.equal(doc.width, 1024);
    assert.equal(doc.standardized_popularity, 0.5);
    assert.deepEqual(doc.tags, [{ name: 'river', accuracy: 0.95, provider: 'clarifai' }]);
    assert.equal(doc.sensitive, true); // "water" in the description ("Birds" is not "bird")
  });

  void it('counts a rule once per column it changed, and keeps unchanged values as they were', () => {
    const values = row({
      foreign_landing_url: 'www.flickr.com/photos/x',
      creator_url: 'www.flickr.com/people/x',
      thumbnail: 'not a url at all',
      license: ' BY ',
    });
    const outcome = cleaned(values);
    assert.deepEqual([...outcome.changed].sort(), [
      'invalid-url-nulled',
      'license-normalised',
      'url-scheme-added',
      'url-scheme-added',
    ]);
    const at = (name: string) => image.columns.findIndex((c) => c.name === name);
    assert.equal(outcome.values[at('foreign_landing_url')], 'https://www.flickr.com/photos/x');
    assert.equal(outcome.values[at('thumbnail')], null);
    assert.equal(outcome.values[at('license')], 'by');
    assert.equal(outcome.values[at('title')], values[at('title')]);
    assert.notEqual(outcome.values, values);
  });

  void it('rejects an invalid URL before a missing license, and never changes a rejected row', () => {
    assert.deepEqual(rules.clean(row({ url: 'javascript:alert(1)', license: '' })), {
      rejected: 'invalid-url',
    });
    assert.deepEqual(rules.clean(row({ license: '   ' })), { rejected: 'missing-license' });
    assert.deepEqual(cleaned(row({ url: 'example.org/x' })).changed, ['url-scheme-added']);
  });

  void it('drops tags, counting them, and sets tags that are not an array to NULL', () => {
    const outcome = cleaned(
      row({ tags: '[{"name": "cc0"}, {"name": "sky", "accuracy": 0.5}, {"name": "river"}]' }),
    );
    assert.deepEqual(outcome.changed, ['tags-filtered']);
    assert.deepEqual(outcome.tagsDropped, { denylisted: 1, 'low-accuracy': 1 });
    const notArray = cleaned(row({ tags: '{}' }));
    assert.deepEqual(notArray.changed, ['tags-not-array-nulled']);
    assert.equal((JSON.parse(notArray.document) as { tags: unknown }).tags, null);
  });

  void it('refuses a row of the wrong width, and definitions the SQL could not run', () => {
    assert.throws(() => rules.clean(['a']), /a row of 1 values, expected 26/);
    const input = (over: object) => ({
      upstreamTable: 'x',
      downstreamTable: 'x',
      key: { column: 'id', type: 'bigint' },
      providerColumn: 'id',
      columns: [
        { name: 'id', type: 'bigint', notNull: true },
        { name: 'meta', type: 'text' },
      ],
      document: { mapping: 'mappings/image.json', fields: { id: 'id' } },
      ...over,
    });
    const parse = (over: object) =>
      parseMediaDefinition('x', input(over), `${repoRoot}/packages/core/media`);
    // The definition itself refuses a field named like the one every document gets.
    assert.throws(
      () => parse({ document: { mapping: 'mappings/image.json', fields: { sensitive: 'id' } } }),
      /document field sensitive is reserved/,
    );
    assert.throws(
      () =>
        compileRowRules(
          parse({
            document: {
              mapping: 'mappings/image.json',
              fields: { d: { column: 'meta', key: 'description' } },
            },
          }),
          [],
        ),
      /only json and jsonb columns have keys/,
    );
  });
});
