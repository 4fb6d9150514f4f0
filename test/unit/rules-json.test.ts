import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  arrayElementSpans,
  jsonbRefusal,
  memberSpan,
} from '../../packages/core/src/refresh/rules/json-scan.js';
import { compareJsonbKeys, jsonbText } from '../../packages/core/src/refresh/rules/jsonb-text.js';

const spans = (text: string) => {
  const s = arrayElementSpans(text);
  const out: string[] = [];
  for (let i = 0; i < s.length; i += 2) out.push(text.slice(s[i], s[i + 1]));
  return out;
};
const member = (text: string, key: string, unique = false) => {
  const at = memberSpan(text, 0, text.length, key, unique);
  return at && text.slice(at[0], at[1]);
};

void describe('JSON text scans', () => {
  void it('finds each array element as written, whatever it holds', () => {
    assert.deepEqual(spans('[]'), []);
    assert.deepEqual(spans(' [ ] '), []);
    assert.deepEqual(spans('[ {"a": "x,]}\\"y"} ,1e400,\n"s\\\\",[[1],{}], null,-0.0 ]'), [
      '{"a": "x,]}\\"y"}',
      '1e400',
      '"s\\\\"',
      '[[1],{}]',
      'null',
      '-0.0',
    ]);
    const deep = '['.repeat(5000) + ']'.repeat(5000);
    assert.deepEqual(spans(`[${deep},1]`), [deep, '1']);
  });

  void it('finds the last member with a key (as jsonb and ->> read duplicates), escapes decoded', () => {
    assert.equal(member('{"a": 1, "b": {"a": 2}, "a": 3}', 'a'), '3');
    assert.equal(member('{"a": 1, "b": {"a": 2}, "a": 3}', 'a', true), '1');
    assert.equal(member('{"n\\u0061me" : { "x" : 1 } }', 'name'), '{ "x" : 1 }');
    assert.equal(member('{"name\\"": 1}', 'name'), null);
    assert.equal(member('{}', 'a'), null);
    assert.equal(member('[{"a": 1}]', 'a'), null);
    assert.equal(member('"a"', 'a'), null);
  });

  void it("tells what jsonb refuses that json holds: \\u0000, lone surrogates, numbers beyond numeric's range", () => {
    for (const ok of [
      '{"a": "\\ud83d\\ude00"}',
      '["\\\\u0000"]',
      '["\\u0041", 1e131071, 1e-16383]',
      `[${'1,'.repeat(4000)}1]`,
      '"e12345 in a string"',
    ]) {
      assert.equal(jsonbRefusal(ok), null, ok.slice(0, 40));
    }
    for (const bad of [
      '["\\u0000"]',
      '{"\\u0000": 1}',
      '["\\ud800"]',
      '["\\udc00"]',
      '["\\ud800x"]',
      '["\\ud800\\u0041"]',
      '["\\ud800\\ud800\\udc00"]',
      '["a", "\\ud83d"]',
      '[1e131072]',
      '{"a": [0e-16384]}',
      `[0.${'0'.repeat(16_383)}1]`,
    ]) {
      assert.notEqual(jsonbRefusal(bad), null, bad.slice(0, 40));
    }
  });
});

void describe('jsonb text', () => {
  void it('prints values as jsonb does: sorted, unique keys, ", " and ": ", numbers as numeric', () => {
    // Each expected text is PostgreSQL 15's value::jsonb::text.
    assert.equal(
      jsonbText('{"b":1,"aa":2,"a":3,"é":4,"z":5,"a":6}'),
      '{"a": 6, "b": 1, "z": 5, "aa": 2, "é": 4}',
    );
    assert.equal(
      jsonbText('[-0, -0.0, 1.0E+2, 1E-3, 0.90, 12345678901234567890, -1.5e-3]'),
      '[0, 0.0, 100, 0.001, 0.90, 12345678901234567890, -0.0015]',
    );
    assert.equal(
      jsonbText('["\\u007f\\/\\u0001\\b\\f\\n\\r\\t\\"\\\\ é \\u00e9 \\ud83d\\ude00"]'),
      '["\u007f/\\u0001\\b\\f\\n\\r\\t\\"\\\\ é é 😀"]',
    );
    assert.equal(jsonbText(' { } '), '{}');
    assert.equal(
      jsonbText('[ [ ] , { "x" : [ true , false , null ] } ]'),
      '[[], {"x": [true, false, null]}]',
    );
    const text = '[1, {"name": "x", "a": 1}]';
    assert.equal(jsonbText(text, 4, text.length - 1), '{"a": 1, "name": "x"}');
    const deep = '['.repeat(4000) + ']'.repeat(4000);
    assert.equal(jsonbText(deep), deep);
  });

  void it('orders keys as jsonb: shorter in UTF-8 first, then by bytes', () => {
    const keys = ['é', 'b', 'aa', '\uffff', '😀', 'a', ''];
    assert.deepEqual(keys.sort(compareJsonbKeys), ['', 'a', 'b', 'aa', 'é', '\uffff', '😀']);
  });
});
