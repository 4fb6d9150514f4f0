/**
 * What the seeder writes in PostgreSQL's COPY text format beyond the escaping of a value
 * (refresh/copy-text.ts: escapeCopyTextValue, encodeCopyTextRow): array literals.
 */

const needsQuoting = /^$|^null$|[{}",\\\s]/i;

/** A PostgreSQL array literal such as `{rock,"hip hop"}` (elements quoted when needed). */
export function arrayLiteral(items: readonly string[]): string {
  const parts = items.map((item) =>
    needsQuoting.test(item) ? `"${item.replaceAll('\\', '\\\\').replaceAll('"', '\\"')}"` : item,
  );
  return `{${parts.join(',')}}`;
}
