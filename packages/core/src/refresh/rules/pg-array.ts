/**
 * PostgreSQL array text (`array_out`): `{rock,"hip hop",NULL}`, nested braces for more
 * dimensions, and an optional `[lower:upper]=` decoration when a lower bound is not 1.
 */

/** An array's elements (`null` for NULL), nested once per dimension. */
export type PgArray = (string | null | PgArray)[];

function isArraySpace(c: number): boolean {
  // array_in's array_isspace: space, \t, \n, \r, \v, \f
  return c === 0x20 || (c >= 0x09 && c <= 0x0d);
}

/** Parses PostgreSQL array text; throws on text that is not one. */
export function parsePgArray(text: string): PgArray {
  let i = 0;
  const fail = (what: string): never => {
    throw new Error(`malformed array literal (${what}): ${JSON.stringify(text.slice(0, 80))}`);
  };
  while (i < text.length && isArraySpace(text.charCodeAt(i))) i++;
  if (text.charCodeAt(i) === 0x5b) {
    const eq = text.indexOf('=', i);
    if (eq < 0) fail('dimensions without "="');
    i = eq + 1;
    while (i < text.length && isArraySpace(text.charCodeAt(i))) i++;
  }
  if (text.charCodeAt(i) !== 0x7b) fail('no "{"');
  const root: PgArray = [];
  const stack: PgArray[] = [];
  let current: PgArray = root;
  i++;
  for (;;) {
    while (i < text.length && isArraySpace(text.charCodeAt(i))) i++;
    if (i >= text.length) fail('unterminated');
    const c = text.charCodeAt(i);
    if (c === 0x7b) {
      const child: PgArray = [];
      current.push(child);
      stack.push(current);
      current = child;
      i++;
      continue;
    }
    if (c === 0x7d) {
      i++;
      const parent = stack.pop();
      if (!parent) break;
      current = parent;
    } else if (c === 0x22) {
      let value = '';
      let from = ++i;
      for (;;) {
        if (i >= text.length) fail('unterminated quotes');
        const d = text.charCodeAt(i);
        if (d === 0x5c) {
          value += text.slice(from, i) + text.charAt(i + 1);
          i += 2;
          from = i;
        } else if (d === 0x22) {
          value += text.slice(from, i);
          i++;
          break;
        } else i++;
      }
      current.push(value);
    } else {
      let value = '';
      let from = i;
      let escaped = false;
      for (;;) {
        if (i >= text.length) fail('unterminated');
        const d = text.charCodeAt(i);
        if (d === 0x5c) {
          value += text.slice(from, i) + text.charAt(i + 1);
          escaped = true;
          i += 2;
          from = i;
        } else if (d === 0x2c || d === 0x7d) break;
        else i++;
      }
      value += text.slice(from, i);
      // Unquoted elements lose surrounding space; an unquoted, unescaped NULL is a NULL.
      const trimmed = value.replace(/^[ \t\n\r\v\f]+|[ \t\n\r\v\f]+$/g, '');
      current.push(!escaped && trimmed.toUpperCase() === 'NULL' ? null : trimmed);
    }
    while (i < text.length && isArraySpace(text.charCodeAt(i))) i++;
    if (text.charCodeAt(i) === 0x2c) i++;
  }
  return root;
}

/** `array_to_string(array, ' ')`: the elements in order, flattened, NULLs left out. */
export function pgArrayToString(array: PgArray, separator = ' '): string {
  const out: string[] = [];
  const walk = (a: PgArray) => {
    for (const e of a) {
      if (e === null) continue;
      if (typeof e === 'string') out.push(e);
      else walk(e);
    }
  };
  walk(array);
  return out.join(separator);
}

/** The array as JSON text (`to_json`), each element through `element` (NULL is `null`). */
export function pgArrayToJson(array: PgArray, element: (text: string) => string): string {
  const parts: string[] = [];
  for (const e of array) {
    if (e === null) parts.push('null');
    else if (typeof e === 'string') parts.push(element(e));
    else parts.push(pgArrayToJson(e, element));
  }
  return `[${parts.join(',')}]`;
}
