import { numericText } from './decimal.js';
import { skipSpace, stringEnd, stringValue, valueEnd } from './json-scan.js';

/**
 * The text PostgreSQL's jsonb output gives for a JSON value (what `value::jsonb::text` returns):
 * `", "` and `": "` separators, object keys without duplicates (the last one wins) in jsonb's
 * order (shorter first, then by bytes), strings re-escaped as `to_json` does, numbers as numeric
 * prints them (`1E2` is `100`, `-0` is `0`). For values that reach a json or text column the SQL
 * writes through jsonb (kept tags), so the row and its document match the SQL's byte for byte.
 *
 * `text` must be valid JSON that jsonb accepts; `[start, end)` delimits one value in it.
 */
export function jsonbText(text: string, start = 0, end = text.length): string {
  // An explicit stack, so nesting depth is no limit.
  type Frame =
    | { readonly array: true; readonly items: string[] }
    | { readonly array: false; readonly members: Map<string, string>; key: string | null };
  const stack: Frame[] = [];
  let result: string | null = null;
  const emit = (value: string) => {
    const top = stack[stack.length - 1];
    if (!top) result = value;
    else if (top.array) top.items.push(value);
    else {
      top.members.set(top.key as string, value);
      top.key = null;
    }
  };
  let i = skipSpace(text, start);
  while (i < end) {
    const c = text.charCodeAt(i);
    if (c === 0x5b) {
      stack.push({ array: true, items: [] });
      i++;
    } else if (c === 0x7b) {
      stack.push({ array: false, members: new Map(), key: null });
      i++;
    } else if (c === 0x5d || c === 0x7d) {
      const frame = stack.pop() as Frame;
      emit(frame.array ? `[${frame.items.join(', ')}]` : objectText(frame.members));
      i++;
    } else if (c === 0x2c || c === 0x3a) {
      i++;
    } else if (c === 0x22) {
      const stop = stringEnd(text, i);
      const value = stringValue(text, i, stop);
      const top = stack[stack.length - 1];
      if (top && !top.array && top.key === null) top.key = value;
      else emit(JSON.stringify(value));
      i = stop;
    } else {
      const stop = valueEnd(text, i);
      const token = text.slice(i, stop);
      emit(c === 0x74 || c === 0x66 || c === 0x6e ? token : numericText(token));
      i = stop;
    }
    i = skipSpace(text, i);
    if (result !== null && stack.length === 0) break;
  }
  if (result === null) throw new Error('jsonbText: not a complete JSON value');
  return result;
}

/** jsonb's key order: shorter (in UTF-8 bytes) first, then by bytes (code points). */
export function compareJsonbKeys(a: string, b: string): number {
  const la = Buffer.byteLength(a);
  const lb = Buffer.byteLength(b);
  if (la !== lb) return la - lb;
  if (a === b) return 0;
  for (let i = 0; ;) {
    const ca = a.codePointAt(i) as number;
    const cb = b.codePointAt(i) as number;
    if (ca !== cb) return ca - cb;
    i += ca > 0xffff ? 2 : 1;
  }
}

function objectText(members: Map<string, string>): string {
  if (members.size === 0) return '{}';
  const keys = [...members.keys()].sort(compareJsonbKeys);
  return `{${keys.map((k) => `${JSON.stringify(k)}: ${members.get(k) as string}`).join(', ')}}`;
}
