import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { BinaryCopyParser, BulkBody, BufferPool, Slots } from '@freshet/core';

/** A binary COPY stream as PostgreSQL writes it, for rows of text fields (null = NULL). */
function copyStream(rows: (string | null)[][], extension = Buffer.alloc(0)): Buffer {
  const parts: Buffer[] = [Buffer.from('PGCOPY\n\xff\r\n\0', 'latin1')];
  const u32 = (n: number) => {
    const b = Buffer.alloc(4);
    b.writeUInt32BE(n);
    return b;
  };
  parts.push(u32(0), u32(extension.length), extension);
  for (const row of rows) {
    const count = Buffer.alloc(2);
    count.writeInt16BE(row.length);
    parts.push(count);
    for (const field of row) {
      const len = Buffer.alloc(4);
      if (field === null) {
        len.writeInt32BE(-1);
        parts.push(len);
      } else {
        const bytes = Buffer.from(field, 'utf8');
        len.writeInt32BE(bytes.length);
        parts.push(len, bytes);
      }
    }
  }
  parts.push(Buffer.from([0xff, 0xff]));
  return Buffer.concat(parts);
}

function parseAll(chunks: Buffer[]): (string | null)[][] {
  const parser = new BinaryCopyParser();
  const out: (string | null)[][] = [];
  let counted = 0;
  for (const chunk of chunks) {
    counted += parser.push(chunk, (buf, f) => {
      const row: (string | null)[] = [];
      for (let i = 0; i < f.length / 2; i++) {
        const start = f[2 * i] ?? -1;
        row.push(start < 0 ? null : buf.toString('utf8', start, f[2 * i + 1]));
      }
      out.push(row.slice(0, 3));
    });
  }
  parser.end();
  assert.equal(counted, out.length);
  return out;
}

const rows: (string | null)[][] = [
  ['{"index":{"_id":"a"}}\n', null, '{"title":"é ✓ \\" \\\\n"}\n'],
  ['', 'x', 'y'.repeat(5000)],
  ['{"index":{}}\n', '{"index":{"_index":"f"}}\n', '{}\n'],
];

void describe('binary COPY parser', () => {
  void it('reads every row and NULL however the stream is split', () => {
    const stream = copyStream(rows, Buffer.from('ext'));
    assert.deepEqual(parseAll([stream]), rows);
    for (let cut = 1; cut < stream.length; cut += 7) {
      assert.deepEqual(
        parseAll([stream.subarray(0, cut), stream.subarray(cut)]),
        rows,
        `cut ${cut}`,
      );
    }
    const bytes = [...stream].map((b) => Buffer.from([b]));
    assert.deepEqual(parseAll(bytes), rows);
  });

  void it('refuses a stream that is not binary COPY, or that ends early', () => {
    assert.throws(
      () => new BinaryCopyParser().push(Buffer.from('id,title\n1,a\n'.repeat(3)), () => undefined),
      /signature/,
    );
    const stream = copyStream(rows);
    const parser = new BinaryCopyParser();
    parser.push(stream.subarray(0, stream.length - 10), () => undefined);
    assert.throws(() => parser.end(), /ended early/);
    assert.throws(() => parseAll([stream, Buffer.from([0, 1])]), /after the trailer/);
  });
});

void describe('bulk bodies and slots', () => {
  void it('lays operations back to back and gives each one back', () => {
    const src = Buffer.from('A1\nB22\nDOC\n');
    const pool = new BufferPool(1);
    const body = new BulkBody(4, pool);
    body.add(src, 0, 3, 7, 11);
    body.add(src, 3, 7, 7, 11);
    assert.equal(body.view().toString(), 'A1\nDOC\nB22\nDOC\n');
    assert.equal(body.count, 2);
    assert.equal(body.op(1).toString(), 'B22\nDOC\n');
    body.dispose();
    const again = new BulkBody(8, pool);
    assert.equal(again.bytes, 0);
  });

  void it('never lets more holders in than its size, and serves waiters in order', async () => {
    const slots = new Slots(2);
    const order: number[] = [];
    const a = await slots.acquire();
    const b = await slots.acquire();
    const c = slots.acquire().then((r) => (order.push(3), r));
    const d = slots.acquire().then((r) => (order.push(4), r));
    const aborted = new AbortController();
    const e = slots.acquire(aborted.signal);
    aborted.abort(new Error('gone'));
    await assert.rejects(e, /gone/);
    a();
    a(); // a second release of the same slot is ignored
    const releaseC = await c;
    assert.deepEqual(order, [3]);
    b();
    const releaseD = await d;
    assert.deepEqual(order, [3, 4]);
    releaseC();
    releaseD();
    const f = await slots.acquire();
    const g = await slots.acquire();
    let third = false;
    const h = slots.acquire().then((r) => ((third = true), r));
    await Promise.resolve();
    assert.equal(third, false);
    f();
    (await h)();
    g();
  });
});
