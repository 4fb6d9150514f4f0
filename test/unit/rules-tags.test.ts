import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { compileSensitiveMatcher } from '../../packages/core/src/refresh/rules/sensitive.js';
import {
  compileTagRules,
  type TagRulesConfig,
} from '../../packages/core/src/refresh/rules/tags.js';

const config: TagRulesConfig = {
  column: 'tags',
  minAccuracy: 0.9,
  denylistedProviders: ['rekognition', '100'],
  denylist: ['no person', 'BY'],
  denylistSubstrings: ['uploaded', 'cc0'],
  maxNameLength: 9,
};

const split = (columnType: string, text: string) =>
  compileTagRules(config, columnType).split(text, JSON.parse(text) as unknown[]);

void describe('tag splitting', () => {
  void it('keeps an array with nothing to drop as it is', () => {
    const text = '[{"name": "ok", "accuracy": 0.95}, {"name": "fine"}]';
    const s = split('jsonb', text);
    assert.equal(s.text, text);
    assert.equal(s.dropped, null);
    assert.equal(s.kept.length, 2);
  });

  void it('drops by the first rule that matches, and counts by reason', () => {
    const s = split(
      'jsonb',
      '[5, {"name": "no person", "accuracy": 0.1}, {"name": "x", "provider": "rekognition"}, {"name": "x", "provider": 100}, {"name": "by"}, {"name": "CC0 x"}, {"name": "much too long"}, {"name": "ok", "provider": {"a": 1}, "accuracy": 0.1}, {"name": "kept"}]',
    );
    assert.deepEqual(s.dropped, {
      malformed: 3,
      'low-accuracy': 1,
      'denylisted-provider': 2,
      denylisted: 2,
    });
    assert.equal(s.text, '[{"name": "kept"}]');
  });

  void it('compares accuracies as exact decimals, never as doubles', () => {
    const s = split(
      'jsonb',
      '[{"name": "a", "accuracy": 0.8999999999999999999999}, {"name": "b", "accuracy": 0.9}, {"name": "c", "accuracy": "0.9000000000000000000001"}, {"name": "d", "accuracy": 3.40282346638528860000001e38}, {"name": "e", "accuracy": 3.4028234663852886e38}, {"name": "f", "accuracy": 1e400}, {"name": "g", "accuracy": 1e-400}]',
    );
    assert.deepEqual(s.dropped, { 'low-accuracy': 2, malformed: 2 });
    assert.equal(
      s.text,
      '[{"name": "b", "accuracy": 0.9}, {"name": "c", "accuracy": "0.9000000000000000000001"}, {"name": "e", "accuracy": 3.4028234663852886e38}]',
    );
  });

  void it('reads numeric strings as the SQL does (PostgreSQL spaces, at most 100 characters)', () => {
    const tags = [
      ' 0.95 ',
      '\u000b0.95\f',
      '+.95',
      '1e999',
      '0.5',
      '"0.95"',
      '\u00a00.95',
      '\u30000.95',
      `0.${'9'.repeat(98)}`, // 100 characters
      `0.${'9'.repeat(99)}`, // 101
    ];
    const s = split(
      'jsonb',
      JSON.stringify(tags.map((accuracy, i) => ({ name: `t${i}`, accuracy }))),
    );
    assert.deepEqual(
      s.kept.map((t) => (t as { name: string }).name),
      ['t0', 't1', 't2', 't8'],
    );
    assert.deepEqual(s.dropped, { malformed: 5, 'low-accuracy': 1 });
  });

  void it('writes kept elements back byte for byte (jsonb), or as jsonb prints them (json)', () => {
    const text = '[{"name":"a","x":12345678901234567890,"y":-0,"z":1E2},{"name":"no person"}]';
    assert.equal(
      split('jsonb', text).text,
      '[{"name":"a","x":12345678901234567890,"y":-0,"z":1E2}]',
    );
    assert.equal(
      split('json', text).text,
      '[{"x": 12345678901234567890, "y": 0, "z": 100, "name": "a"}]',
    );
  });

  void it('measures names in code points and lower-cases them as PostgreSQL does', () => {
    const s = split(
      'jsonb',
      `[{"name": "${'😀'.repeat(9)}"}, {"name": "${'😀'.repeat(10)}"}, {"name": "İİ"}, {"name": "bY"}]`,
    );
    assert.deepEqual(s.dropped, { malformed: 1, denylisted: 1 });
  });
});

void describe('the sensitive matcher', () => {
  const matches = (terms: string[], text: string) =>
    compileSensitiveMatcher(terms)?.(text) ?? false;

  void it('matches whole words, case-insensitively', () => {
    assert.equal(matches(['water'], 'Clear WATER today'), true);
    assert.equal(matches(['water'], 'waterfall'), false);
    assert.equal(matches(['water'], 'fresh_water'), false);
    assert.equal(matches(['water'], 'éwater'), false);
    assert.equal(matches(['water'], '😀water😀'), true);
    assert.equal(matches(['water'], 'water-water'), true);
    assert.equal(matches(['bird'], 'waterbird bird'), true);
  });

  void it('never matches a term that starts or ends with a non-word character (\\m, \\M)', () => {
    assert.equal(compileSensitiveMatcher(['c++', '-x']), null);
    assert.equal(matches(['c++', 'x.y'], 'c++ and x.y'), true);
  });

  void it('takes case variants from PostgreSQL, not from Unicode case folding', () => {
    assert.equal(matches(['kelvin'], '\u212aelvin'), false); // no folding of the Kelvin sign
    assert.equal(matches(['istanbul'], 'İSTANBUL'), false);
    assert.equal(matches(['straße'], 'STRASSE'), false);
    assert.equal(matches(['σίσυφος'], 'ΣΊΣΥΦΟΣ'), true);
  });
});
