/**
 * PostgreSQL's COPY text format (`COPY ... TO STDOUT` / `FROM STDIN`, the default format): one
 * line per row, fields separated by tabs, `\N` for NULL, and backslash escapes for backslash,
 * tab, newline and carriage return (COPY TO also escapes backspace, form feed and vertical tab).
 */

/** A row's fields as text, `null` for NULL. Valid after the call: the parser keeps no reference. */
export type CopyTextRowHandler = (fields: (string | null)[]) => void;

const NEWLINE = 0x0a;
const TAB = 0x09;
const BACKSLASH = 0x5c;

/**
 * Splits a COPY text stream into rows. Feed it the stream's chunks in order; `onRow` gets each
 * complete row. Rows and UTF-8 characters may be split across chunks anywhere. The complete lines
 * of a chunk are decoded in one call, and a field without a backslash is a slice of that string
 * (no copy, no per-character work); only fields with escapes are rebuilt. Escapes are those
 * COPY FROM reads: `\b \f \n \r \t \v \\`, octal `\NNN` and hex `\xHH` (bytes, decoded as UTF-8),
 * and a backslash before any other character (including a tab) for that character. Lines end
 * with `\n` (a `\r\n` ending is accepted), always: COPY TO never escapes a raw newline, so the
 * backslash-newline that COPY FROM would read as data is not supported. A line `\.` ends the data.
 */
export class CopyTextParser {
  private pending: Buffer[] = [];
  private ended = false;
  private rows = 0;
  /** In the text being split: the next backslash at or after the field (-1: search again). */
  private slash = -1;

  /** `columns`: when given, a row with another number of fields is an error. */
  constructor(private readonly columns?: number) {}

  /** Parses `chunk`, calling `onRow` for each row it completes; returns how many. */
  push(chunk: Buffer, onRow: CopyTextRowHandler): number {
    let rows = 0;
    let start = 0;
    if (this.pending.length > 0) {
      const nl = chunk.indexOf(NEWLINE);
      if (nl < 0) {
        // Copied: the stream may reuse the chunk's memory.
        this.pending.push(Buffer.from(chunk));
        return 0;
      }
      this.pending.push(chunk.subarray(0, nl));
      const line = Buffer.concat(this.pending).toString('utf8');
      this.pending = [];
      rows += this.lines(line, onRow);
      start = nl + 1;
    }
    const last = chunk.lastIndexOf(NEWLINE);
    if (last >= start) {
      rows += this.lines(chunk.toString('utf8', start, last), onRow);
      start = last + 1;
    }
    if (start < chunk.length) this.pending.push(Buffer.from(chunk.subarray(start)));
    return rows;
  }

  /** Throws if the stream stopped inside a row (COPY TO ends every row with a newline). */
  end(): void {
    const partial = this.pending.reduce((n, b) => n + b.length, 0);
    if (partial > 0) {
      throw new Error(
        `COPY text stream ended inside a row (${partial} bytes after the last newline)`,
      );
    }
  }

  /** The rows of `text`: whole lines separated by newlines (the last one's newline cut off). */
  private lines(text: string, onRow: CopyTextRowHandler): number {
    let rows = 0;
    let at = 0;
    this.slash = -1;
    for (;;) {
      let end = text.indexOf('\n', at);
      if (end < 0) end = text.length;
      if (this.ended) throw new Error('COPY text stream: data after the end-of-data marker \\.');
      let stop = end;
      if (stop > at && text.charCodeAt(stop - 1) === 0x0d) stop--;
      if (
        stop - at === 2 &&
        text.charCodeAt(at) === BACKSLASH &&
        text.charCodeAt(at + 1) === 0x2e
      ) {
        this.ended = true;
      } else {
        onRow(this.fields(text, at, stop));
        rows++;
      }
      if (end >= text.length) return rows;
      at = end + 1;
    }
  }

  private fields(text: string, start: number, end: number): (string | null)[] {
    const fields: (string | null)[] = [];
    let at = start;
    for (;;) {
      let tab = text.indexOf('\t', at);
      if (tab < 0 || tab > end) tab = end;
      // One search per backslash, not per field: the split stays linear in the text.
      if (this.slash < at) {
        const slash = text.indexOf('\\', at);
        this.slash = slash < 0 ? text.length : slash;
      }
      if (this.slash < tab) {
        if (tab - at === 2 && text.charCodeAt(at + 1) === 0x4e) {
          fields.push(null); // \N
        } else {
          const [value, stop] = unescapeField(text, at, end);
          fields.push(value);
          tab = stop;
        }
      } else {
        fields.push(text.slice(at, tab));
      }
      if (tab >= end) break;
      at = tab + 1;
    }
    this.rows++;
    if (this.columns !== undefined && fields.length !== this.columns) {
      throw new Error(
        `COPY text row ${this.rows} has ${fields.length} fields, expected ${this.columns}`,
      );
    }
    return fields;
  }
}

const simpleEscapes: Readonly<Record<string, string>> = {
  b: '\b',
  f: '\f',
  n: '\n',
  r: '\r',
  t: '\t',
  v: '\v',
};

/**
 * The value of the escaped field that starts at `start` (it holds a backslash before the next
 * tab), and where it ends: at the first tab not escaped, or `end`.
 */
function unescapeField(text: string, start: number, end: number): [string, number] {
  let value = '';
  let from = start;
  let i = start;
  let bytes = false; // octal or hex escapes: bytes, decoded together as UTF-8
  for (; i < end; i++) {
    const c = text.charCodeAt(i);
    if (c === TAB) break;
    if (c !== BACKSLASH) continue;
    const next = text.charAt(i + 1);
    if (next === '') break; // a backslash ending the line is kept, as COPY FROM keeps it
    value += text.slice(from, i);
    const simple = simpleEscapes[next];
    if (simple !== undefined) value += simple;
    else if ((next >= '0' && next <= '7') || next === 'x') {
      bytes = true;
      value += text.slice(i, i + 2);
    } else value += next;
    i++;
    from = i + 1;
  }
  value += text.slice(from, i);
  if (bytes) value = unescapeBytes(text.slice(start, i));
  return [value, i];
}

/** The slow path: a field with octal or hex escapes, unescaped byte by byte, then decoded. */
function unescapeBytes(field: string): string {
  const input = Buffer.from(field, 'utf8');
  const output = Buffer.alloc(input.length);
  let n = 0;
  const isOctal = (b: number | undefined) => b !== undefined && b >= 0x30 && b <= 0x37;
  const hexValue = (b: number | undefined) => {
    if (b === undefined) return -1;
    if (b >= 0x30 && b <= 0x39) return b - 0x30;
    if (b >= 0x61 && b <= 0x66) return b - 0x57;
    if (b >= 0x41 && b <= 0x46) return b - 0x37;
    return -1;
  };
  for (let i = 0; i < input.length; i++) {
    const b = input[i] as number;
    if (b !== BACKSLASH || i + 1 >= input.length) {
      output[n++] = b;
      continue;
    }
    const c = input[++i] as number;
    if (isOctal(c)) {
      let v = c - 0x30;
      for (let k = 0; k < 2 && isOctal(input[i + 1]); k++)
        v = v * 8 + ((input[++i] as number) - 0x30);
      output[n++] = v & 0xff;
    } else if (c === 0x78 && hexValue(input[i + 1]) >= 0) {
      let v = hexValue(input[++i]);
      if (hexValue(input[i + 1]) >= 0) v = v * 16 + hexValue(input[++i]);
      output[n++] = v;
    } else {
      const simple = simpleEscapes[String.fromCharCode(c)];
      output[n++] = simple === undefined ? c : simple.charCodeAt(0);
    }
  }
  const bytes = output.subarray(0, n);
  const text = bytes.toString('utf8');
  // PostgreSQL refuses what is not UTF-8, and NUL, in a text value.
  if (bytes.includes(0) || !Buffer.from(text, 'utf8').equals(bytes)) {
    throw new Error(
      `COPY text field is not valid UTF-8 after its escapes: ${JSON.stringify(field.slice(0, 60))}`,
    );
  }
  return text;
}

/** The COPY text spelling of SQL NULL. */
export const copyNull = '\\N';

const special = /[\\\t\n\r]/;
const specialGlobal = /[\\\t\n\r]/g;
const escapes: Readonly<Record<string, string>> = {
  '\\': '\\\\',
  '\t': '\\t',
  '\n': '\\n',
  '\r': '\\r',
};
const escapeChar = (ch: string) => escapes[ch] as string;

/** One value in COPY text format (not NULL: that is `\N`). */
export function escapeCopyTextValue(value: string): string {
  return special.test(value) ? value.replace(specialGlobal, escapeChar) : value;
}

/**
 * One row as a COPY text line for `COPY ... FROM STDIN`, with its newline: values separated by
 * tabs, `\N` for null, backslash, tab, newline and carriage return escaped.
 */
export function encodeCopyTextRow(values: readonly (string | null)[]): string {
  let line = '';
  for (let i = 0; i < values.length; i++) {
    const value = values[i];
    if (i > 0) line += '\t';
    line += value === null || value === undefined ? copyNull : escapeCopyTextValue(value);
  }
  return line + '\n';
}
