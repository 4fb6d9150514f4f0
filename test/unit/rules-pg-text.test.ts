import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  parsePgArray,
  pgArrayToJson,
  pgArrayToString,
} from '../../packages/core/src/refresh/rules/pg-array.js';
import { jsonOfText, timestampJson } from '../../packages/core/src/refresh/rules/json-values.js';
import { btrimSpaces, fixUrl, isBadUrl } from '../../packages/core/src/refresh/rules/urls.js';

void describe('PostgreSQL text as JSON', () => {
  void it('parses array text: quotes, escapes, NULL, nesting, bounds', () => {
    assert.deepEqual(parsePgArray('{}'), []);
    assert.deepEqual(parsePgArray('{rock,"hip hop",NULL,"NULL",null,""}'), [
      'rock',
      'hip hop',
      null,
      'NULL',
      null,
      '',
    ]);
    assert.deepEqual(parsePgArray('{"a \\"q\\" b","back\\\\slash","{x,y}"}'), [
      'a "q" b',
      'back\\slash',
      '{x,y}',
    ]);
    assert.deepEqual(parsePgArray('{{1,2},{3,NULL}}'), [
      ['1', '2'],
      ['3', null],
    ]);
    assert.deepEqual(parsePgArray('[0:1]={x,y}'), ['x', 'y']);
    assert.deepEqual(parsePgArray('{ a , b }'), ['a', 'b']);
    assert.throws(() => parsePgArray('rock'), /malformed array literal/);
    assert.throws(() => parsePgArray('{a,b'), /malformed array literal/);
  });

  void it('renders arrays as to_json and array_to_string do', () => {
    const a = parsePgArray('{{a,NULL},{"b c",""}}');
    assert.equal(pgArrayToJson(a, JSON.stringify), '[["a",null],["b c",""]]');
    assert.equal(pgArrayToString(a), 'a b c ');
    assert.equal(jsonOfText('integer[]')('{1,NULL,3}'), '[1,null,3]');
    assert.equal(jsonOfText('boolean[]')('{t,f}'), '[true,false]');
  });

  void it('renders timestamps as json_build_object does (ISO 8601, zone with minutes)', () => {
    // Each expected text is PostgreSQL 15's, with TimeZone UTC.
    const cases: [string, boolean, string][] = [
      ['2021-03-04 05:06:07.123456+00', true, '"2021-03-04T05:06:07.123456+00:00"'],
      ['2021-03-04 05:06:07+00', true, '"2021-03-04T05:06:07+00:00"'],
      ['1999-12-31 18:29:59.999999-05:30', true, '"1999-12-31T18:29:59.999999-05:30"'],
      ['0044-03-15 12:00:00+00 BC', true, '"0044-03-15T12:00:00+00:00 BC"'],
      ['10000-01-01 00:00:00.5+00', true, '"10000-01-01T00:00:00.5+00:00"'],
      ['infinity', true, '"infinity"'],
      ['-infinity', true, '"-infinity"'],
      ['2021-03-04 05:06:07.12', false, '"2021-03-04T05:06:07.12"'],
      ['0044-03-15 12:00:00 BC', false, '"0044-03-15T12:00:00 BC"'],
    ];
    for (const [text, zone, json] of cases) assert.equal(timestampJson(text, zone), json, text);
  });

  void it('renders the other types as json_build_object does', () => {
    assert.equal(jsonOfText('double precision')('NaN'), '"NaN"');
    assert.equal(jsonOfText('double precision')('-Infinity'), '"-Infinity"');
    assert.equal(jsonOfText('double precision')('1e+20'), '1e+20');
    assert.equal(jsonOfText('double precision')('-0'), '-0');
    assert.equal(jsonOfText('numeric')('Infinity'), '"Infinity"');
    assert.equal(jsonOfText('numeric')('0.1000'), '0.1000');
    assert.equal(jsonOfText('boolean')('t'), 'true');
    assert.equal(jsonOfText('date')('0044-03-15 BC'), '"0044-03-15 BC"');
    assert.equal(jsonOfText('jsonb')('{"a": 1}'), '{"a": 1}');
    assert.equal(jsonOfText('varchar(80)')('tab\t"q"\u0001'), '"tab\\t\\"q\\"\\u0001"');
    assert.equal(jsonOfText('text')('plain é 😀'), '"plain é 😀"');
  });
});

void describe('URL and license rules', () => {
  void it('adds https:// only where there is no scheme', () => {
    assert.equal(fixUrl('example.org/x'), 'https://example.org/x');
    assert.equal(fixUrl('1.2.3.4/x'), 'https://1.2.3.4/x');
    assert.equal(fixUrl('http://x'), 'http://x');
    assert.equal(fixUrl('localhost:3000/x'), 'localhost:3000/x'); // "localhost:" is a scheme
    assert.equal(fixUrl(''), '');
  });

  void it('calls a URL bad as the SQL does: empty, a space or control, not http(s) with a host', () => {
    for (const ok of ['https://x', 'HTTP://X', 'hTtPs://x/y?z', 'https://x\u00a0y', 'https://ü']) {
      assert.equal(isBadUrl(ok), false, ok);
    }
    for (const bad of [
      '',
      'https://',
      'https:///x',
      'https://?q',
      'https://#f',
      'ftp://x',
      'javascript:alert(1)',
      'https://x y',
      'https://x\u3000y',
      'https://x\u0085y',
      'https://x\u2028y',
      'https://x\u007f',
    ]) {
      assert.equal(isBadUrl(bad), true, JSON.stringify(bad));
    }
  });

  void it('btrim takes spaces only', () => {
    assert.equal(btrimSpaces('  BY  '), 'BY');
    assert.equal(btrimSpaces('\tby\t'), '\tby\t');
    assert.equal(btrimSpaces('   '), '');
    const s = 'by';
    assert.equal(btrimSpaces(s), s);
  });
});
