import type { MediaDefinition } from '../media.js';
import { arrayElementSpans, jsonbRefusal, memberSpan, stringValue } from './rules/json-scan.js';
import { jsonbText } from './rules/jsonb-text.js';
import { jsonOfText, jsonString, type JsonOfText } from './rules/json-values.js';
import { pgLower } from './rules/pg-ctype.js';
import { parsePgArray, pgArrayToString } from './rules/pg-array.js';
import { compileSensitiveMatcher } from './rules/sensitive.js';
import { compileTagRules, type TagDrops } from './rules/tags.js';
import { btrimSpaces, fixUrl, isBadUrl } from './rules/urls.js';

export type { TagDropReason, TagDrops } from './rules/tags.js';

/** A rule that changed a row, named as the SQL oracle counts it. */
export type ChangeRule =
  | 'url-scheme-added'
  | 'invalid-url-nulled'
  | 'license-normalised'
  | 'invalid-json-nulled'
  | 'tags-not-array-nulled'
  | 'tags-filtered';

/**
 * Why a row cannot be served. (`duplicate-key` and `null-key` are the caller's: a key twice in
 * a range, or none, is known before any one row is cleaned, and takes precedence.)
 */
export type RowRejection = 'invalid-url' | 'missing-license';

/** A row the rules removed, with the first reason the SQL oracle would give. */
export interface RejectedRow {
  readonly rejected: RowRejection;
}

/** A row the rules kept: its cleaned values, what changed, and its Elasticsearch document. */
export interface CleanedRow {
  readonly rejected?: undefined;
  /**
   * The cleaned row, in the definition's column order, as text for the COPY encoder. Each value
   * no rule changed is the input's own string, and a row no rule changed is the input array.
   */
  readonly values: readonly (string | null)[];
  /**
   * One entry per count the SQL oracle makes for this row: a rule that changed two columns (a scheme
   * added to two URLs, two JSON columns nulled) appears twice. Summed over rows, these are
   * the SQL oracle's `changed` counts. Empty (a shared frozen array) for an unchanged row.
   */
  readonly changed: readonly ChangeRule[];
  /** The tags dropped, by reason; null when none was. */
  readonly tagsDropped: TagDrops | null;
  /** Whether the cleaned row has a sensitive term in a sensitive field (as a whole word). */
  readonly sensitive: boolean;
  /**
   * The Elasticsearch document, as JSON text: what `json_build_object` gives on the cleaned row,
   * field by field, then `"sensitive": true|false`.
   */
  readonly document: string;
}

export type RowOutcome = RejectedRow | CleanedRow;

/** The rules of one media type, compiled once; see {@link compileRowRules}. */
export interface RowRules {
  /** The column names, in the order `clean` takes values. */
  readonly columns: readonly string[];
  /**
   * Cleans one row: `values` are the row's columns in `def.columns` order, as PostgreSQL's text
   * output (`COPY ... TO STDOUT` text, unescaped) with TimeZone UTC and DateStyle ISO. Never
   * throws on a value the catalog can hold; throws on a row with the wrong number of values.
   */
  clean(values: readonly (string | null)[]): RowOutcome;
}

const noChanges: readonly ChangeRule[] = Object.freeze([]);
/** A parse not done yet this row (undefined is not a JSON value, but null is). */
const UNPARSED = Symbol('unparsed');

type FieldPlan =
  | {
      readonly kind: 'column';
      readonly prefix: string;
      readonly index: number;
      readonly json: JsonOfText;
    }
  | { readonly kind: 'key'; readonly prefix: string; readonly slot: number };

type TextPlan =
  | { readonly kind: 'text' | 'json' | 'array'; readonly index: number }
  | { readonly kind: 'key'; readonly slot: number };

/** A `column ->> key` the document or the sensitive text reads, computed once per row. */
interface KeyRead {
  readonly index: number;
  readonly key: string;
  /** jsonb text has no duplicate keys: the first member with the key is the one. */
  readonly unique: boolean;
}

const isJsonType = (type: string) => type === 'json' || type === 'jsonb';

/**
 * Compiles a media type's row rules: the SQL cleaning, document and sensitivity rules Freshet
 * ran in PostgreSQL before (kept as the test oracle, test/helpers/sql-oracle.ts), row by row in
 * TypeScript, with the same outcome for every row. In their order: rows rejected for an invalid URL in a NOT
 * NULL URL column (after the scheme fix) then for a missing license; JSON columns read as jsonb
 * but not stored as jsonb set to NULL where jsonb refuses them; URL schemes added (or invalid
 * nullable URLs set to NULL); the license trimmed of spaces and lower-cased; tags that are not an
 * array set to NULL, and the tag rules applied to the rest.
 *
 * The rules match PostgreSQL's behaviour in the locale the tables of rules/pg-ctype-data.ts
 * were generated from (lower(), word characters and spaces): PostgreSQL 15, glibc C.UTF-8.
 */
export function compileRowRules(def: MediaDefinition, sensitiveTerms: readonly string[]): RowRules {
  const columns = def.columns.map((c) => c.name);
  const indexOf = (name: string): number => {
    const i = columns.indexOf(name);
    if (i < 0) throw new Error(`media type ${def.name} has no column ${name}`);
    return i;
  };
  const typeOf = (i: number) => (def.columns[i] as { type: string }).type;

  const written = new Set<string>();
  const writes = (column: string) => {
    if (written.has(column)) {
      throw new Error(
        `media type ${def.name}: column ${column} is cleaned by two rules (a column can take one cleaning rule)`,
      );
    }
    written.add(column);
  };
  const urls = def.cleaning.urlColumns.map((name) => {
    writes(name);
    return { index: indexOf(name), notNull: def.columns[indexOf(name)]?.notNull === true };
  });
  const rejectUrls = urls.filter((u) => u.notNull).map((u) => u.index);
  const license = def.cleaning.licenseColumn;
  if (license) writes(license);
  const licenseIndex = license ? indexOf(license) : -1;
  const tagConfig = def.cleaning.tags;
  if (tagConfig) writes(tagConfig.column);
  const tagsIndex = tagConfig ? indexOf(tagConfig.column) : -1;
  const tagRules = tagConfig ? compileTagRules(tagConfig, typeOf(tagsIndex)) : null;

  // the SQL oracle's jsonColumns: the tags column and every column a document field reads a key of;
  // those not stored as jsonb are checked as jsonb would read them.
  const fieldSpecs = Object.entries(def.document.fields);
  const jsonColumns = new Set<number>([
    ...(tagConfig ? [tagsIndex] : []),
    ...fieldSpecs.flatMap(([, f]) => (typeof f === 'string' ? [] : [indexOf(f.column)])),
  ]);
  const checked = [...jsonColumns].filter((i) => typeOf(i) !== 'jsonb');

  const keyReads: KeyRead[] = [];
  const slotOf = (field: string, column: string, key: string): number => {
    const index = indexOf(column);
    if (!isJsonType(typeOf(index))) {
      throw new Error(
        `media type ${def.name}: document field ${field} reads key ${key} of ${column}, a ${typeOf(index)} column; only json and jsonb columns have keys`,
      );
    }
    const known = keyReads.findIndex((k) => k.index === index && k.key === key);
    if (known >= 0) return known;
    keyReads.push({ index, key, unique: typeOf(index) === 'jsonb' });
    return keyReads.length - 1;
  };
  const fields: FieldPlan[] = fieldSpecs.map(([field, spec], n) => {
    const prefix = `${n === 0 ? '' : ','}${JSON.stringify(field)}:`;
    if (typeof spec === 'string') {
      const index = indexOf(spec);
      return { kind: 'column', prefix, index, json: jsonOfText(typeOf(index)) };
    }
    return { kind: 'key', prefix, slot: slotOf(field, spec.column, spec.key) };
  });
  const matcher = compileSensitiveMatcher(sensitiveTerms);
  const texts: TextPlan[] = def.document.sensitiveFields.map((field) => {
    const spec = def.document.fields[field];
    if (spec === undefined) throw new Error(`unknown document field ${field}`);
    if (typeof spec !== 'string')
      return { kind: 'key', slot: slotOf(field, spec.column, spec.key) };
    const index = indexOf(spec);
    const type = typeOf(index);
    if (isJsonType(type)) return { kind: 'json', index };
    if (type.endsWith('[]')) return { kind: 'array', index };
    return { kind: 'text', index };
  });
  const parsedColumns = [
    ...new Set([
      ...checked,
      ...(tagConfig ? [tagsIndex] : []),
      ...texts.flatMap((t) => (t.kind === 'json' ? [t.index] : [])),
    ]),
  ];

  // Per-row state, reset by each clean (the rules are not re-entrant).
  const parsed: unknown[] = columns.map(() => UNPARSED);
  let row: readonly (string | null)[] = [];
  let out: (string | null)[] | null = null;
  let changed: ChangeRule[] | null = null;

  const current = (i: number) => (out ?? row)[i] ?? null;
  const set = (i: number, value: string | null) => {
    out ??= row.slice();
    out[i] = value;
  };
  const change = (rule: ChangeRule) => {
    (changed ??= []).push(rule);
  };
  /** The parsed JSON of column i's current (non-null, valid) value. */
  const parsedOf = (i: number): unknown => {
    let p = parsed[i];
    if (p === UNPARSED) p = parsed[i] = JSON.parse(current(i) as string);
    return p;
  };

  /**
   * `column ->> key`, read from the column's text: a string's value, null for JSON null or no
   * such member (or no object), else the value's text as the column holds it (json keeps it as
   * written, jsonb's text is jsonb's own output), which is what `->>` gives.
   */
  const keyText = (read: KeyRead): string | null => {
    const text = current(read.index);
    if (text === null) return null;
    const at = memberSpan(text, 0, text.length, read.key, read.unique);
    if (at === null) return null;
    const c = text.charCodeAt(at[0]);
    if (c === 0x22) return stringValue(text, at[0], at[1]);
    if (c === 0x6e) return null;
    return text.slice(at[0], at[1]);
  };
  const keyValues: (string | null)[] = keyReads.map(() => null);

  /** fieldText of a json or jsonb column: the names of an array's elements, else its text. */
  const jsonFieldText = (i: number): string => {
    const text = current(i) as string;
    const value = parsedOf(i);
    if (!Array.isArray(value)) return text;
    const names: string[] = [];
    let spans: number[] | null = null;
    for (let k = 0; k < value.length; k++) {
      const e: unknown = value[k];
      if (typeof e === 'string') names.push(e);
      if (typeof e !== 'object' || e === null || Array.isArray(e) || !Object.hasOwn(e, 'name')) {
        continue;
      }
      const name = (e as Record<string, unknown>).name;
      if (typeof name === 'string') names.push(name);
      else if (typeof name === 'boolean') names.push(name ? 'true' : 'false');
      else if (name !== null) {
        spans ??= arrayElementSpans(text);
        const at = memberSpan(text, spans[2 * k] as number, spans[2 * k + 1] as number, 'name');
        const raw = text.slice(...(at as [number, number]));
        names.push(typeOf(i) === 'jsonb' ? raw : jsonbText(raw));
      }
    }
    return names.join(' ');
  };

  const sensitiveText = (t: TextPlan): string => {
    if (t.kind === 'key') return keyValues[t.slot] ?? '';
    const text = current(t.index);
    if (text === null) return '';
    if (t.kind === 'text') return text;
    if (t.kind === 'array') return pgArrayToString(parsePgArray(text));
    return jsonFieldText(t.index);
  };

  const clean = (values: readonly (string | null)[]): RowOutcome => {
    if (values.length !== columns.length) {
      throw new Error(
        `media type ${def.name}: a row of ${values.length} values, expected ${columns.length} (${columns.join(', ')})`,
      );
    }
    for (const i of rejectUrls) {
      const url = values[i] ?? null;
      if (url === null || isBadUrl(fixUrl(url))) return { rejected: 'invalid-url' };
    }
    if (licenseIndex >= 0) {
      const value = values[licenseIndex] ?? null;
      if (value === null || btrimSpaces(value) === '') return { rejected: 'missing-license' };
    }
    row = values;
    out = null;
    changed = null;
    for (const i of parsedColumns) parsed[i] = UNPARSED;

    for (const i of checked) {
      const text = current(i);
      if (text === null) continue;
      let ok = true;
      try {
        parsed[i] = JSON.parse(text);
      } catch {
        ok = false;
      }
      if (!ok || jsonbRefusal(text) !== null) {
        set(i, null);
        parsed[i] = null;
        change('invalid-json-nulled');
      }
    }
    for (const { index, notNull } of urls) {
      const url = current(index);
      if (url === null) continue;
      const fixed = fixUrl(url);
      if (!notNull && isBadUrl(fixed)) {
        set(index, null);
        change('invalid-url-nulled');
      } else if (fixed !== url) {
        set(index, fixed);
        change('url-scheme-added');
      }
    }
    if (licenseIndex >= 0) {
      const value = current(licenseIndex) as string;
      const normal = pgLower(btrimSpaces(value));
      if (normal !== value) {
        set(licenseIndex, normal);
        change('license-normalised');
      }
    }
    let tagsDropped: TagDrops | null = null;
    if (tagRules) {
      const text = current(tagsIndex);
      if (text !== null) {
        const value = parsedOf(tagsIndex);
        if (!Array.isArray(value)) {
          set(tagsIndex, null);
          parsed[tagsIndex] = null;
          change('tags-not-array-nulled');
        } else {
          const split = tagRules.split(text, value);
          if (split.dropped) {
            set(tagsIndex, split.text);
            parsed[tagsIndex] = split.kept;
            tagsDropped = split.dropped;
            change('tags-filtered');
          }
        }
      }
    }

    for (let k = 0; k < keyReads.length; k++) keyValues[k] = keyText(keyReads[k] as KeyRead);
    let sensitive = false;
    if (matcher) {
      let text = '';
      for (let t = 0; t < texts.length; t++) {
        if (t > 0) text += ' ';
        text += sensitiveText(texts[t] as TextPlan);
      }
      sensitive = matcher(text);
    }
    let document = '{';
    for (const f of fields) {
      document += f.prefix;
      if (f.kind === 'column') {
        const value = current(f.index);
        document += value === null ? 'null' : f.json(value);
      } else {
        const value = keyValues[f.slot] ?? null;
        document += value === null ? 'null' : jsonString(value);
      }
    }
    document += `${fields.length > 0 ? ',' : ''}"sensitive":${sensitive ? 'true' : 'false'}}`;
    return {
      values: out ?? values,
      changed: changed ?? noChanges,
      tagsDropped,
      sensitive,
      document,
    };
  };

  return { columns, clean };
}
