import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  compareDecimal,
  numericAccepts,
  numericText,
  parseDecimal,
  type Decimal,
} from '../../packages/core/src/refresh/rules/decimal.js';

const d = (text: string) => parseDecimal(text) as Decimal;
const cmp = (a: string, b: string) => compareDecimal(d(a), d(b));

void describe('exact decimals (numeric semantics)', () => {
  void it('parses what numeric_in reads, and refuses the rest', () => {
    assert.deepEqual(d('0.90'), { neg: false, digits: '9', exp: 0 });
    assert.deepEqual(d('-12.5e3'), { neg: true, digits: '125', exp: 5 });
    assert.deepEqual(d('0.000123'), { neg: false, digits: '123', exp: -3 });
    assert.deepEqual(d('-0.0'), { neg: false, digits: '', exp: 0 });
    assert.deepEqual(d('+.5'), { neg: false, digits: '5', exp: 0 });
    assert.deepEqual(d('5.'), { neg: false, digits: '5', exp: 1 });
    for (const bad of [
      '',
      '.',
      '-',
      'e5',
      '1e',
      '1.2.3',
      '0x10',
      ' 1',
      'NaN',
      '1e99999999999999999',
    ]) {
      assert.equal(parseDecimal(bad), null, bad);
    }
  });

  void it('compares exactly where doubles cannot tell', () => {
    assert.equal(Number('0.8999999999999999999999') < 0.9, false); // the reason for all this
    assert.equal(cmp('0.8999999999999999999999', '0.9'), -1);
    assert.equal(cmp('0.9000000000000000000001', '0.9'), 1);
    assert.equal(cmp('0.900000000000', '9e-1'), 0);
    assert.equal(cmp('3.40282346638528860000001e38', '3.4028234663852886e38'), 1);
    assert.equal(cmp('340282346638528860000000000000000000000', '3.4028234663852886e38'), 0);
    assert.equal(cmp('1e-400', '0'), 1);
    assert.equal(cmp('-1e-400', '0'), -1);
    assert.equal(cmp('-0', '0'), 0);
    assert.equal(cmp('-2', '-10'), 1);
    assert.equal(cmp('-0.5', '0.5'), -1);
    assert.equal(cmp('12345678901234567890', '12345678901234567891'), -1);
    assert.equal(cmp('1e400', '9'.repeat(400)), 1);
  });

  void it("knows numeric's range: jsonb refuses the numbers beyond it", () => {
    // Checked against PostgreSQL 15: each true one casts to jsonb, each false one fails with
    // "value overflows numeric format".
    const cases: [string, boolean][] = [
      ['1e131071', true],
      ['1e131072', false],
      ['9999e131068', true],
      ['10000e131068', false],
      ['0.0001e131072', true],
      ['1e-16383', true],
      ['1e-16384', false],
      ['1.0e-16383', false],
      ['0.00001e-16379', false],
      ['0e-16384', false],
      ['0e1073741822', true],
      ['0e1073741823', false],
      ['0.00e1073741823', false],
      ['0e-1073741823', false],
      [`0.${'0'.repeat(16_382)}1`, true],
      [`0.${'0'.repeat(16_383)}1`, false],
      ['1' + '0'.repeat(131_071), true],
      ['1' + '0'.repeat(131_072), false],
      ['12345678901234567890', true],
      ['-0', true],
    ];
    for (const [text, ok] of cases) assert.equal(numericAccepts(text), ok, text.slice(0, 30));
  });

  void it('prints numbers as numeric_out does (the text jsonb and ->> give)', () => {
    const cases: [string, string][] = [
      ['1.50', '1.50'],
      ['1E2', '100'],
      ['1.0E2', '100'],
      ['1.0E-3', '0.0010'],
      ['1e-3', '0.001'],
      ['100e-2', '1.00'],
      ['-0', '0'],
      ['-0.0', '0.0'],
      ['-0.0e5', '0'],
      ['00.5', '0.5'],
      ['-1.5e-3', '-0.0015'],
      ['12345678901234567890', '12345678901234567890'],
      ['0.90', '0.90'],
      ['5e+003', '5000'],
    ];
    for (const [input, output] of cases) assert.equal(numericText(input), output, input);
    assert.equal(numericText('1e400'), '1' + '0'.repeat(400));
    assert.equal(numericText('-1e-400'), `-0.${'0'.repeat(399)}1`);
  });
});
