import { SENSITIVE_FIELD } from '../filtered-view.js';
import type { MediaDefinition } from '../media.js';
import { ident, literal } from '../sql.js';

/** Escapes a term for a PostgreSQL regular expression. */
function regexEscape(term: string): string {
  return term.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** Reads sensitive terms: one per line, blank lines and `#` comments ignored, lower-cased. */
export function parseSensitiveTerms(text: string): string[] {
  return [
    ...new Set(
      text
        .split(/\r?\n/)
        .map((l) => l.trim().toLowerCase())
        .filter((l) => l !== '' && !l.startsWith('#')),
    ),
  ];
}

function columnType(def: MediaDefinition, column: string): string {
  return def.columns.find((c) => c.name === column)?.type ?? 'text';
}

/** SQL text of one document field, read from the row alias `t`. */
function fieldExpression(def: MediaDefinition, field: string): string {
  const spec = def.document.fields[field];
  if (spec === undefined) throw new Error(`unknown document field ${field}`);
  if (typeof spec === 'string') return `t.${ident(spec)}`;
  return `t.${ident(spec.column)} ->> ${literal(spec.key)}`;
}

/** SQL text producing the plain text of a field for sensitive-term matching. */
function fieldText(def: MediaDefinition, field: string): string {
  const spec = def.document.fields[field];
  if (spec === undefined) throw new Error(`unknown document field ${field}`);
  if (typeof spec !== 'string') return fieldExpression(def, field);
  const type = columnType(def, spec);
  const col = `t.${ident(spec)}`;
  if (type === 'jsonb' || type === 'json') {
    // tags-like arrays: the names of the elements; anything else: its text.
    return `CASE WHEN jsonb_typeof(${col}::jsonb) = 'array' THEN (SELECT string_agg(coalesce(e ->> 'name', CASE WHEN jsonb_typeof(e) = 'string' THEN e #>> '{}' END), ' ') FROM jsonb_array_elements(${col}::jsonb) AS e) ELSE ${col}::text END`;
  }
  if (type.endsWith('[]')) return `array_to_string(${col}, ' ')`;
  return `${col}::text`;
}

/**
 * SQL boolean: true when any sensitive field of the row `t` contains a sensitive term as a
 * whole word (case-insensitive). The same expression sets each document's `sensitive` field,
 * decides the filtered index (`index` mode) and verifies the filtered view.
 */
export function sensitiveExpression(def: MediaDefinition, terms: readonly string[]): string {
  if (terms.length === 0 || def.document.sensitiveFields.length === 0) return 'false';
  const pattern = `\\m(${terms.map(regexEscape).join('|')})\\M`;
  const text = def.document.sensitiveFields
    .map((f) => `coalesce(${fieldText(def, f)}, '')`)
    .join(` || ' ' || `);
  return `((${text}) ~* ${literal(pattern)})`;
}

/**
 * SQL text building the JSON document of the row `t`: the definition's fields, then `sensitive`
 * last, the SQL boolean `sensitive` (normally `sensitiveExpression(def, terms)`, or a column that
 * holds it, so a query that needs it twice computes it once).
 */
export function documentExpression(def: MediaDefinition, sensitive: string): string {
  const pairs = Object.keys(def.document.fields).map(
    (field) => `${literal(field)}, ${fieldExpression(def, field)}`,
  );
  pairs.push(`${literal(SENSITIVE_FIELD)}, ${sensitive}`);
  return `json_build_object(${pairs.join(', ')})::text`;
}
