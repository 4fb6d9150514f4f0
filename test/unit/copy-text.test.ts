import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { CopyTextParser, encodeCopyTextRow, escapeCopyTextValue } from '@freshet/core';

type Row = (string | null)[];

function parseChunks(chunks: Buffer[], columns?: number): Row[] {
  const parser = new CopyTextParser(columns);
  const rows: Row[] = [];
  let counted = 0;
  for (const chunk of chunks) counted += parser.push(chunk, (fields) => rows.push(fields));
  parser.end();
  assert.equal(counted, rows.length);
  return rows;
}

/** The stream cut into pieces of `size` bytes (so rows, escapes and characters are split). */
function cut(bytes: Buffer, size: number): Buffer[] {
  const out: Buffer[] = [];
  for (let i = 0; i < bytes.length; i += size) out.push(bytes.subarray(i, i + size));
  return out;
}

const nasty: Row[] = [
  ['plain', '', null, '\\N', 'N'],
  ['tab\there', 'new\nline', 'carriage\rreturn', 'back\\slash', '\\'],
  ['émoji 😀 שלום', '\u0001\u0007\b\f\v\u001f\u007f', 'ends with backslash\\', '\\\\N', ' '],
  ['x'.repeat(70_000), '😀'.repeat(5_000), null, '', '\t\n\r\\'],
];

void describe('COPY text parser and encoder', () => {
  void it('round-trips nasty values, however the stream is cut', () => {
    const bytes = Buffer.from(nasty.map(encodeCopyTextRow).join(''), 'utf8');
    for (const size of [1, 2, 3, 5, 7, 64, 1000, 65_536, bytes.length]) {
      assert.deepEqual(parseChunks(cut(bytes, size), 5), nasty, `chunks of ${size} bytes`);
    }
  });

  void it('reads what COPY TO writes: every escape it emits, NULL and the empty string', () => {
    const line = 'a\\\\b\t\\b\\f\\n\\r\\t\\v\t\\N\t\t\\\\N\n';
    assert.deepEqual(parseChunks([Buffer.from(line)]), [['a\\b', '\b\f\n\r\t\v', null, '', '\\N']]);
  });

  void it('reads the escapes COPY FROM also accepts: octal, hex, and any other character', () => {
    const line = '\\303\\251\t\\xC3\\xa9\t\\x\t\\q\\"\t\\101\\1\\0123\ta\\\tb\n';
    assert.deepEqual(parseChunks([Buffer.from(line)]), [
      ['é', 'é', 'x', 'q"', 'A\u0001\n3', 'a\tb'],
    ]);
  });

  void it('refuses octal or hex escapes that are not UTF-8, or NUL', () => {
    assert.throws(() => parseChunks([Buffer.from('\\377\n')]), /not valid UTF-8/);
    assert.throws(() => parseChunks([Buffer.from('\\000\n')]), /not valid UTF-8/);
  });

  void it('accepts CRLF line ends and stops at the end-of-data marker', () => {
    assert.deepEqual(parseChunks([Buffer.from('a\tb\r\nc\td\n\\.\n')]), [
      ['a', 'b'],
      ['c', 'd'],
    ]);
    const parser = new CopyTextParser();
    assert.throws(
      () => parser.push(Buffer.from('a\n\\.\nb\n'), () => undefined),
      /data after the end-of-data marker/,
    );
  });

  void it('checks the number of fields, and that the stream ends after a row', () => {
    assert.throws(
      () => parseChunks([Buffer.from('a\tb\nc\n')], 2),
      /row 2 has 1 fields, expected 2/,
    );
    const parser = new CopyTextParser();
    parser.push(Buffer.from('a\tb\nc'), () => undefined);
    assert.throws(() => parser.end(), /ended inside a row \(1 bytes/);
  });

  void it('encodes only what COPY FROM needs escaped', () => {
    assert.equal(
      encodeCopyTextRow(['a\tb', null, '', '\\N', 'x\ny\r']),
      'a\\tb\t\\N\t\t\\\\N\tx\\ny\\r\n',
    );
    const plain = 'nothing to escape: "quotes" \u0001 😀';
    assert.equal(escapeCopyTextValue(plain), plain);
  });

  void it('round-trips random strings', () => {
    const alphabet = ['a', 'é', '😀', '\t', '\n', '\r', '\\', 'N', '.', '"', '\b', ' '];
    let seed = 7;
    const next = () => (seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31) / 2 ** 31;
    const rows: Row[] = [];
    for (let r = 0; r < 500; r++) {
      const row: Row = [];
      for (let f = 0; f < 4; f++) {
        if (next() < 0.1) row.push(null);
        else {
          let s = '';
          for (let n = Math.floor(next() * 12); n > 0; n--)
            s += alphabet[Math.floor(next() * alphabet.length)];
          row.push(s);
        }
      }
      rows.push(row);
    }
    const bytes = Buffer.from(rows.map(encodeCopyTextRow).join(''), 'utf8');
    assert.deepEqual(parseChunks(cut(bytes, 13), 4), rows);
  });
});
