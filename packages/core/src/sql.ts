/**
 * SQL identifiers that come from configuration or requests are checked against a strict
 * allowlist pattern and then quoted: only lower-case letters, digits and underscores, starting
 * with a letter or underscore, at most 63 bytes (PostgreSQL's limit).
 */
const identifierPattern = /^[a-z_][a-z0-9_]{0,62}$/;

/** Throws unless `name` is a safe SQL identifier; returns it unchanged. */
export function checkIdentifier(name: string, what = 'identifier'): string {
  if (typeof name !== 'string' || !identifierPattern.test(name)) {
    throw new Error(
      `${what} must be lower-case letters, digits or _ (at most 63, starting with a letter), got ${JSON.stringify(name)}`,
    );
  }
  return name;
}

/** A checked identifier, double-quoted for use in SQL text. */
export function ident(name: string, what?: string): string {
  return `"${checkIdentifier(name, what)}"`;
}

/** A string literal for SQL text (single quotes doubled); for values that cannot be parameters. */
export function literal(value: string): string {
  if (value.includes('\0')) throw new Error('a SQL literal cannot contain a NUL character');
  return `'${value.replaceAll("'", "''")}'`;
}

const typePattern =
  /^(uuid|text|integer|bigint|smallint|boolean|jsonb|json|double precision|real|numeric|date|timestamptz|timestamp|varchar\(\d{1,5}\))(\[\])?$/;

/** Throws unless `type` is one of the column types a media definition may use. */
export function checkColumnType(type: string): string {
  if (!typePattern.test(type)) {
    throw new Error(
      `column type must be one of uuid, text, integer, bigint, smallint, boolean, jsonb, json, double precision, real, numeric, date, timestamptz, timestamp, varchar(N) (optionally [] for an array), got ${JSON.stringify(type)}`,
    );
  }
  return type;
}
