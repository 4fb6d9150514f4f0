import { numericAccepts } from './decimal.js';

/**
 * Scans of JSON text that JSON.parse cannot do: where each value lies (so a kept tag is written
 * back byte for byte and a number read exactly), and what jsonb refuses beyond JSON's syntax.
 * Every function expects text JSON.parse accepts; all are iterative, so nesting depth is no limit.
 */

const QUOTE = 0x22;
const BACKSLASH = 0x5c;

function isSpace(c: number): boolean {
  return c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09;
}

/** The index after the JSON string that opens at `at` (a quote). */
export function stringEnd(text: string, at: number): number {
  let i = at + 1;
  for (;;) {
    const q = text.indexOf('"', i);
    if (q < 0) throw new Error('unterminated JSON string');
    // The quote is escaped when an odd number of backslashes precede it.
    let b = q - 1;
    while (text.charCodeAt(b) === BACKSLASH) b--;
    if ((q - 1 - b) % 2 === 0) return q + 1;
    i = q + 1;
  }
}

/** The index of the first non-space character at or after `at`. */
export function skipSpace(text: string, at: number): number {
  while (at < text.length && isSpace(text.charCodeAt(at))) at++;
  return at;
}

/** The index after the JSON value that starts at `at` (not a space). */
export function valueEnd(text: string, at: number): number {
  const c = text.charCodeAt(at);
  if (c === QUOTE) return stringEnd(text, at);
  if (c !== 0x7b && c !== 0x5b) {
    // A number or literal: up to the next delimiter.
    let i = at + 1;
    for (; i < text.length; i++) {
      const d = text.charCodeAt(i);
      if (d === 0x2c || d === 0x5d || d === 0x7d || isSpace(d)) break;
    }
    return i;
  }
  let depth = 0;
  for (let i = at; i < text.length; i++) {
    const d = text.charCodeAt(i);
    if (d === QUOTE) i = stringEnd(text, i) - 1;
    else if (d === 0x7b || d === 0x5b) depth++;
    else if (d === 0x7d || d === 0x5d) {
      depth--;
      if (depth === 0) return i + 1;
    }
  }
  throw new Error('unterminated JSON container');
}

/**
 * The elements of the JSON array `text` (which must be one), as flat `[start, end)` pairs in
 * order.
 */
export function arrayElementSpans(text: string): number[] {
  const spans: number[] = [];
  let i = skipSpace(text, 0);
  if (text.charCodeAt(i) !== 0x5b) throw new Error('not a JSON array');
  i = skipSpace(text, i + 1);
  if (text.charCodeAt(i) === 0x5d) return spans;
  for (;;) {
    const end = valueEnd(text, i);
    spans.push(i, end);
    i = skipSpace(text, end);
    if (text.charCodeAt(i) === 0x5d) return spans;
    i = skipSpace(text, i + 1); // past the comma
  }
}

/** Whether the JSON string at `[start, end)` is `key` (compared without copying when it can). */
function keyIs(text: string, start: number, end: number, key: string): boolean {
  if (end - start - 2 === key.length && text.startsWith(key, start + 1)) return true;
  // An escape can spell the key another way (`"n\u0061me"`); a plain key that differs cannot.
  const slash = text.indexOf('\\', start + 1);
  return slash >= 0 && slash < end && stringValue(text, start, end) === key;
}

/** A JSON string's value (its escapes decoded), the string at `[start, end)`. */
export function stringValue(text: string, start: number, end: number): string {
  const raw = text.slice(start + 1, end - 1);
  return raw.includes('\\') ? (JSON.parse(text.slice(start, end)) as string) : raw;
}

/**
 * Where the value of member `key` of the JSON object at `[start, end)` lies, as `[start, end)`;
 * the last such member, as jsonb, json's `->>` and JSON.parse read duplicate keys (`unique`:
 * the text has none, as jsonb's never has, so the first one is the one). Null when there is none
 * or the value is not an object.
 */
export function memberSpan(
  text: string,
  start: number,
  end: number,
  key: string,
  unique = false,
): [number, number] | null {
  let i = skipSpace(text, start);
  if (text.charCodeAt(i) !== 0x7b) return null;
  let found: [number, number] | null = null;
  i = skipSpace(text, i + 1);
  if (text.charCodeAt(i) === 0x7d) return null;
  while (i < end) {
    const keyEnd = stringEnd(text, i);
    const valueStart = skipSpace(text, skipSpace(text, keyEnd) + 1); // past the colon
    const valueStop = valueEnd(text, valueStart);
    if (keyIs(text, i, keyEnd, key)) {
      found = [valueStart, valueStop];
      if (unique) break;
    }
    i = skipSpace(text, valueStop);
    if (text.charCodeAt(i) === 0x7d) break;
    i = skipSpace(text, i + 1);
  }
  return found;
}

function hex4(text: string, at: number): number {
  return parseInt(text.slice(at, at + 4), 16);
}

/**
 * Why jsonb refuses JSON text that JSON.parse (and PostgreSQL's json) accepts, or null when it
 * does not: a `\u0000` escape, a surrogate escape not in a high-low pair, a number numeric cannot
 * hold. (jsonb's other limits, about 268 MB per value and PostgreSQL's stack depth, around 15,000
 * levels of nesting at the default max_stack_depth, are not checked.)
 */
export function jsonbRefusal(text: string): string | null {
  const escapes = text.includes('\\u');
  // A number numeric refuses has an exponent of 5+ digits or thousands of digits.
  const numbers = text.length > 6000 || /[eE][+-]?[0-9]{5}/.test(text);
  if (!escapes && !numbers) return null;
  // The next backslash (-1: not searched yet), found once per string at most: the scan stays
  // linear however many strings there are.
  let backslash = -1;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === QUOTE) {
      const end = stringEnd(text, i);
      if (escapes) {
        if (backslash < i) {
          const b = text.indexOf('\\', i);
          backslash = b < 0 ? text.length : b;
        }
        if (backslash < end) {
          const bad = escapeRefusal(text, backslash, end - 1);
          if (bad) return bad;
          backslash = -1;
        }
      }
      i = end - 1;
    } else if (numbers && (c === 0x2d || (c >= 0x30 && c <= 0x39))) {
      const end = valueEnd(text, i);
      if (!numericAccepts(text.slice(i, end))) return 'a number beyond numeric range';
      i = end - 1;
    }
  }
  return null;
}

/** What jsonb refuses in the escapes of the string body `[start, end)`, as PostgreSQL does. */
function escapeRefusal(text: string, start: number, end: number): string | null {
  let high = false; // a high surrogate escape waits for its low half, which must come next
  for (let i = start; ;) {
    const b = text.indexOf('\\', i);
    if (b < 0 || b >= end) break;
    if (high && b !== i) return 'a high surrogate escape without its low half';
    if (text.charCodeAt(b + 1) !== 0x75) {
      if (high) return 'a high surrogate escape without its low half';
      i = b + 2;
      continue;
    }
    const cp = hex4(text, b + 2);
    if (cp >= 0xd800 && cp <= 0xdbff) {
      if (high) return 'a high surrogate escape after a high surrogate';
      high = true;
    } else if (cp >= 0xdc00 && cp <= 0xdfff) {
      if (!high) return 'a low surrogate escape without its high half';
      high = false;
    } else if (high) {
      return 'a high surrogate escape without its low half';
    } else if (cp === 0) {
      return 'a \\u0000 escape';
    }
    i = b + 6;
  }
  return high ? 'a high surrogate escape without its low half' : null;
}
