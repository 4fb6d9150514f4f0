import { pgCntrlClass, pgSpaceClass } from './pg-ctype.js';

/** `col !~ '^[a-zA-Z][a-zA-Z0-9+.-]*:'`: the value has no scheme. */
const scheme = /^[a-zA-Z][a-zA-Z0-9+.-]*:/;
/** `x ~ '[[:space:][:cntrl:]]'`, with PostgreSQL's classes. */
const spaceOrControl = new RegExp(`[${pgSpaceClass}${pgCntrlClass}]`, 'u');
/** `x ~* '^https?://[^/?#[:space:]]+'` (PostgreSQL's case-insensitivity, ASCII letters only here). */
const httpUrl = new RegExp(`^[hH][tT][tT][pP][sS]?://[^/?#${pgSpaceClass}]`, 'u');

/** The scheme fix: `https://` before a non-empty value without a scheme. */
export function fixUrl(value: string): string {
  return value !== '' && !scheme.test(value) ? `https://${value}` : value;
}

/** Whether a (fixed) URL is not one the index serves: empty, spaces or controls, not http(s). */
export function isBadUrl(value: string): boolean {
  return value === '' || spaceOrControl.test(value) || !httpUrl.test(value);
}

/** `btrim(text)`: spaces (U+0020 only) removed from both ends. */
export function btrimSpaces(text: string): string {
  let start = 0;
  let end = text.length;
  while (start < end && text.charCodeAt(start) === 0x20) start++;
  while (end > start && text.charCodeAt(end - 1) === 0x20) end--;
  return start === 0 && end === text.length ? text : text.slice(start, end);
}
