/** The fixed start of PostgreSQL's binary COPY format: signature, flags, header extension. */
const SIGNATURE = Buffer.from('PGCOPY\n\xff\r\n\0', 'latin1');
const HEADER_BYTES = SIGNATURE.length + 8;

/**
 * Where the fields of one row lie in `buf`: field i spans `buf[fields[2i], fields[2i+1])`, and a
 * NULL field has start -1. Valid only during the call.
 */
export type RowHandler = (buf: Buffer, fields: Int32Array) => void;

/** The length of the row (or trailer) at the start of `buf`, or -1 while its headers are not all in it. */
function rowEnd(buf: Buffer): number {
  if (buf.length < 2) return -1;
  const fields = buf.readInt16BE(0);
  if (fields === -1) return 2;
  let p = 2;
  for (let f = 0; f < fields; f++) {
    if (buf.length - p < 4) return -1;
    const len = buf.readInt32BE(p);
    p += 4 + Math.max(0, len);
  }
  return p;
}

/**
 * Splits a PostgreSQL binary COPY stream (`COPY ... TO STDOUT (FORMAT binary)`) into rows of raw
 * field bytes, without decoding them: a text field arrives as its UTF-8 bytes and can be sent on
 * as is. Feed it the stream's chunks in order; `onRow` gets each completed row's field offsets
 * (no copy, no allocation per row).
 */
export class BinaryCopyParser {
  private pending: Buffer = Buffer.alloc(0);
  private headerRead = false;
  private ended = false;

  private fields = new Int32Array(0);

  /** Parses `chunk`, calling `onRow` for each row it completes; returns how many. */
  push(chunk: Buffer, onRow: RowHandler): number {
    let rows = 0;
    let offset = 0;
    if (!this.headerRead) {
      const buf = Buffer.concat([this.pending, chunk]);
      if (buf.length >= SIGNATURE.length && !buf.subarray(0, SIGNATURE.length).equals(SIGNATURE)) {
        throw new Error('not a binary COPY stream (bad signature)');
      }
      const start =
        buf.length < HEADER_BYTES ? -1 : HEADER_BYTES + buf.readUInt32BE(HEADER_BYTES - 4);
      if (start < 0 || buf.length < start) {
        this.pending = buf;
        return rows;
      }
      this.headerRead = true;
      this.pending = Buffer.alloc(0);
      chunk = buf;
      offset = start;
    }
    // A row split across chunks is finished with only the bytes it needs (not the whole chunk).
    while (this.pending.length > 0 && offset < chunk.length) {
      const end = rowEnd(this.pending);
      const take = Math.min(end < 0 ? 4096 : end - this.pending.length, chunk.length - offset);
      this.pending = Buffer.concat([this.pending, chunk.subarray(offset, offset + take)]);
      offset += take;
      const [n, at] = this.parse(this.pending, 0, onRow);
      rows += n;
      if (at > 0) this.pending = Buffer.from(this.pending.subarray(at));
    }
    if (this.pending.length > 0) return rows;
    const [n, at] = this.parse(chunk, offset, onRow);
    rows += n;
    // Keep only the unparsed tail (copied, so the consumed chunk can be freed).
    if (at < chunk.length) this.pending = Buffer.from(chunk.subarray(at));
    return rows;
  }

  /** Parses the complete rows of `buf` from `at`; returns how many and where the rest starts. */
  private parse(buf: Buffer, at: number, onRow: RowHandler): [number, number] {
    let rows = 0;
    for (;;) {
      if (this.ended) {
        if (at < buf.length) throw new Error('binary COPY stream: data after the trailer');
        break;
      }
      if (buf.length - at < 2) break;
      const fields = buf.readInt16BE(at);
      if (fields === -1) {
        this.ended = true;
        at += 2;
        continue;
      }
      let p = at + 2;
      if (this.fields.length < fields * 2) this.fields = new Int32Array(fields * 2);
      const row = this.fields;
      let complete = true;
      for (let f = 0; f < fields; f++) {
        if (buf.length - p < 4) {
          complete = false;
          break;
        }
        const len = buf.readInt32BE(p);
        p += 4;
        if (len < -1) throw new Error(`binary COPY stream: corrupt field length ${len}`);
        if (len === -1) {
          row[2 * f] = -1;
          row[2 * f + 1] = -1;
          continue;
        }
        if (buf.length - p < len) {
          complete = false;
          break;
        }
        row[2 * f] = p;
        row[2 * f + 1] = p + len;
        p += len;
      }
      if (!complete) break;
      onRow(buf, row);
      rows++;
      at = p;
    }
    return [rows, at];
  }

  /** Throws unless the stream ended exactly after its trailer. */
  end(): void {
    if (!this.headerRead || !this.ended || this.pending.length > 0) {
      throw new Error('binary COPY stream ended early (no trailer, or a partial row)');
    }
  }
}
