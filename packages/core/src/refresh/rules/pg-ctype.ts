import { cntrlRanges, lowerRuns, spaceRanges, upperRuns, wordRanges } from './pg-ctype-data.js';

/**
 * PostgreSQL's view of characters, for the rules that depend on the database's locale:
 * `lower()`, the case variants a case-insensitive regular expression accepts, and the classes
 * `\w` (word characters, for `\m` and `\M`), `[[:space:]]` and `[[:cntrl:]]`. The tables come
 * from a live server (scripts/gen-pg-ctype.ts) rather than from JavaScript's Unicode data: glibc's
 * tables are not Node's (`İ` lower-cases to `i` in PostgreSQL, to `i̇` in JavaScript; Node knows
 * letters glibc does not).
 */

function mapFromRuns(runs: readonly number[]): Map<number, number> {
  const map = new Map<number, number>();
  for (let r = 0; r + 3 < runs.length; r += 4) {
    const [start, count, stride, delta] = runs.slice(r, r + 4) as [number, number, number, number];
    for (let k = 0; k < count; k++) map.set(start + k * stride, start + k * stride + delta);
  }
  return map;
}

const lowerMap = mapFromRuns(lowerRuns);
const upperMap = mapFromRuns(upperRuns);

/** PostgreSQL's `lower()` of one code point. */
export function pgLowerChar(cp: number): number {
  return lowerMap.get(cp) ?? cp;
}

/** PostgreSQL's `upper()` of one code point. */
export function pgUpperChar(cp: number): number {
  return upperMap.get(cp) ?? cp;
}

const nonAscii = /[^\0-\x7f]/;

/** PostgreSQL's `lower(text)`: one code point at a time (no final-sigma rule, no expansion). */
export function pgLower(text: string): string {
  if (!nonAscii.test(text)) return text.toLowerCase();
  let out = '';
  let from = 0;
  for (let i = 0; i < text.length;) {
    const cp = text.codePointAt(i) as number;
    const size = cp > 0xffff ? 2 : 1;
    const lc = lowerMap.get(cp);
    if (lc !== undefined) {
      out += text.slice(from, i) + String.fromCodePoint(lc);
      from = i + size;
    }
    i += size;
  }
  return from === 0 ? text : out + text.slice(from);
}

function inRanges(ranges: readonly number[], cp: number): boolean {
  let lo = 0;
  let hi = ranges.length / 2 - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    if (cp < (ranges[2 * mid] as number)) hi = mid - 1;
    else if (cp > (ranges[2 * mid + 1] as number)) lo = mid + 1;
    else return true;
  }
  return false;
}

/** Whether PostgreSQL's regular expressions count the code point as a word character (`\w`). */
export function isPgWordChar(cp: number): boolean {
  return inRanges(wordRanges, cp);
}

/** A code point escaped for a `u`-flag regular expression (inside or outside a class). */
export function regexChar(cp: number): string {
  return `\\u{${cp.toString(16)}}`;
}

function classBody(ranges: readonly number[]): string {
  let body = '';
  for (let r = 0; r + 1 < ranges.length; r += 2) {
    const first = ranges[r] as number;
    const last = ranges[r + 1] as number;
    body += first === last ? regexChar(first) : `${regexChar(first)}-${regexChar(last)}`;
  }
  return body;
}

/** The inside of a `u`-flag character class matching PostgreSQL's `\w`. */
export const pgWordClass = classBody(wordRanges);
/** The inside of a `u`-flag character class matching PostgreSQL's `[[:space:]]` (and `\s`). */
export const pgSpaceClass = classBody(spaceRanges);
/** The inside of a `u`-flag character class matching PostgreSQL's `[[:cntrl:]]`. */
export const pgCntrlClass = classBody(cntrlRanges);
