import { parsePgArray, pgArrayToJson } from './pg-array.js';

/**
 * A column's text (PostgreSQL's output with DateStyle ISO and TimeZone UTC, as COPY TO gives it)
 * as the JSON `json_build_object` makes of the column's value: JSON strings for text, uuids and
 * dates; numbers as they are (but NaN and infinities as strings); booleans; json and jsonb
 * embedded as they are; timestamps in ISO 8601 (`2021-03-04T05:06:07.123456+00:00`); arrays as
 * JSON arrays.
 */
export type JsonOfText = (text: string) => string;

/** A JSON number as PostgreSQL's IsValidJsonNumber accepts it. */
const jsonNumber = /^-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?$/;

/** What JSON escapes in a string: quotes, backslashes, control characters. */
// eslint-disable-next-line no-control-regex -- control characters are what it looks for
const escaped = /["\\\u0000-\u001f]/;

/**
 * `text` as a JSON string, escaped as PostgreSQL's escape_json does (which is JSON.stringify's
 * escaping for text PostgreSQL can hold); most text needs none, and is only quoted.
 */
export function jsonString(text: string): string {
  return escaped.test(text) ? JSON.stringify(text) : `"${text}"`;
}

const quote = jsonString;

/** A float or numeric: as is when it is a JSON number, else (NaN, Infinity) a string. */
function numberJson(text: string): string {
  return jsonNumber.test(text) ? text : quote(text);
}

/**
 * A timestamp's ISO text (`2021-03-04 05:06:07.123456+00`, `0044-03-15 12:00:00+00 BC`,
 * `infinity`) as JSON renders it: `T` between date and time, a `+HH` zone as `+HH:00`.
 */
export function timestampJson(text: string, withZone: boolean): string {
  // The common case: a four-digit year AD, in UTC.
  if (withZone && text.charCodeAt(10) === 0x20 && text.endsWith('+00')) {
    return `"${text.slice(0, 10)}T${text.slice(11)}:00"`;
  }
  const space = text.indexOf(' ');
  if (space < 0) return quote(text); // infinity, -infinity
  let rest = text.slice(space + 1);
  const bc = rest.endsWith(' BC');
  if (bc) rest = rest.slice(0, -3);
  if (withZone) {
    const sign = Math.max(rest.lastIndexOf('+'), rest.lastIndexOf('-'));
    // XSD zones always have minutes: +HH becomes +HH:00 (+HH:MM and +HH:MM:SS stay).
    if (sign >= 0 && rest.length - sign === 3) rest += ':00';
  }
  return quote(`${text.slice(0, space)}T${rest}${bc ? ' BC' : ''}`);
}

/** The converter for a column of `type` (a media definition column type). */
export function jsonOfText(type: string): JsonOfText {
  if (type.endsWith('[]')) {
    const element = jsonOfText(type.slice(0, -2));
    return (text) => pgArrayToJson(parsePgArray(text), element);
  }
  switch (type) {
    case 'integer':
    case 'bigint':
    case 'smallint':
      return (text) => text;
    case 'numeric':
    case 'real':
    case 'double precision':
      return numberJson;
    case 'boolean':
      return (text) => (text === 't' ? 'true' : 'false');
    case 'json':
    case 'jsonb':
      return (text) => text;
    case 'timestamptz':
      return (text) => timestampJson(text, true);
    case 'timestamp':
      return (text) => timestampJson(text, false);
    default:
      // text, varchar(n), uuid, date (the ISO date is the XSD date, " BC" and all)
      return quote;
  }
}
