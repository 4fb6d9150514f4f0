import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { BulkBody, sendBulk } from '@freshet/core';
import { createTestEnv, type TestEnv } from '../helpers/env.js';

/** sendBulk sends its pre-built NDJSON through the client's transport, as it is. */
describe('sendBulk against a real Elasticsearch', { timeout: 60_000 }, () => {
  let t: TestEnv;
  let index = '';

  before(async () => {
    t = await createTestEnv();
    index = `${t.config.ELASTICSEARCH_INDEX_PREFIX}send-bulk`;
    await t.es.indices.create({
      index,
      mappings: {
        dynamic: 'strict',
        properties: { title: { type: 'text' }, n: { type: 'integer' } },
      },
    });
  });
  after(async () => {
    await t?.close();
  });

  it('indexes every operation once and returns a content refusal by id, none dropped', async () => {
    const body = new BulkBody(1024);
    const action = (id: string) => `${JSON.stringify({ index: { _index: index, _id: id } })}\n`;
    for (let i = 0; i < 50; i++) body.addText(action(`d${i}`), `{"title":"doc ${i}","n":${i}}\n`);
    // Not in the strict mapping: refused for its content.
    body.addText(action('bad'), '{"title":"x","extra":1}\n');
    // Sent as bytes: a multi-byte character survives untouched.
    body.addText(action('utf8'), '{"title":"Ærøskøbing — 東京 🚲","n":-1}\n');
    const outcome = await sendBulk(t.es, body, AbortSignal.timeout(30_000));
    assert.equal(outcome.succeeded, 51);
    assert.equal(outcome.failed, 0);
    assert.deepEqual(
      outcome.refused.map((r) => [r.id, r.index, r.type]),
      [['bad', index, 'strict_dynamic_mapping_exception']],
    );
    await t.es.indices.refresh({ index });
    assert.equal((await t.es.count({ index })).count, 51);
    const doc = await t.es.get<{ title: string }>({ index, id: 'utf8' });
    assert.equal(doc._source?.title, 'Ærøskøbing — 東京 🚲');
  });

  it('throws on a request the server refuses as a whole, so the chunk is retried', async () => {
    const body = new BulkBody(256);
    body.addText('{"index":{"_index":"Not_A_Valid_Name"}\n', '{"title":"x"}\n');
    body.addText('not json at all\n', '{}\n');
    await assert.rejects(sendBulk(t.es, body, AbortSignal.timeout(30_000)), (err: Error) => {
      assert.match(err.name, /ResponseError/);
      return true;
    });
  });
});
