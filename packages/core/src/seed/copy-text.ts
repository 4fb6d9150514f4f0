/**
 * PostgreSQL COPY text format: one line per row, columns separated by tabs, `\N` for null, and
 * backslash, tab, newline and carriage return escaped with a backslash.
 */

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

/** Escapes one value for COPY text format (not null: use {@link copyNull}). */
export function escapeCopyText(value: string): string {
  if (!special.test(value)) return value;
  return value.replace(specialGlobal, (ch) => escapes[ch] as string);
}

/** One COPY text line (with its trailing newline) for a row of text values, `null` for NULL. */
export function copyLine(values: readonly (string | null)[]): string {
  let line = '';
  for (let i = 0; i < values.length; i++) {
    const value = values[i];
    if (i > 0) line += '\t';
    line += value === null || value === undefined ? copyNull : escapeCopyText(value);
  }
  return line + '\n';
}

const needsQuoting = /^$|^null$|[{}",\\\s]/i;

/** A PostgreSQL array literal such as `{rock,"hip hop"}` (elements quoted when needed). */
export function arrayLiteral(items: readonly string[]): string {
  const parts = items.map((item) =>
    needsQuoting.test(item) ? `"${item.replaceAll('\\', '\\\\').replaceAll('"', '\\"')}"` : item,
  );
  return `{${parts.join(',')}}`;
}
