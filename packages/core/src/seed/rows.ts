import type { MediaDefinition } from '../media.js';
import { copyNull, escapeCopyTextValue } from '../refresh/copy-text.js';
import { arrayLiteral } from './copy-text.js';
import { isoTimestamp } from './time.js';
import { createRandom, hash32, maxSeed, type Random, Weighted } from './random.js';
import {
  creator,
  type Creator,
  description,
  genres,
  isAudioLike,
  junkTagNames,
  licenses,
  type Links,
  machineTagNames,
  phrase,
  providerProfiles,
  type ProviderProfile,
  title,
  uniqueWord,
  words,
} from './vocabulary.js';

/**
 * How often each kind of dirt (and null) appears in synthetic rows, as fractions of rows, close
 * to the Openverse sample's rates. Exported so tests and docs can check the ranges.
 */
export const syntheticRates = Object.freeze({
  /** foreign_landing_url / creator_url (and other link columns) without a scheme. */
  linkWithoutScheme: 0.15,
  /** `url` without a scheme (the sample has 2 in 1,899). */
  urlWithoutScheme: 0.002,
  /** removed_from_source = true (the sample: 525 of 1,899). */
  removed: 0.25,
  /** Upper-case license such as "CC0" or "BY-SA" (the sample: 50 of 1,899). */
  upperCaseLicense: 0.025,
  /** tags column NULL, `{}` (an object, not an array, as in the sample), or an array. */
  tagsNull: 0.35,
  tagsEmptyObject: 0.05,
  /** Of rows with a tag array: rows that also carry clarifai machine tags (some providers). */
  machineTags: 0.6,
  /** Of rows with a tag array: rows with one malformed element (not an object, no/odd name). */
  malformedTag: 0.02,
  /** Of rows with a tag array: rows with a denylisted junk tag (e.g. "squareformat"). */
  junkTag: 0.03,
  /** Default share of non-removed rows whose identifier goes to the deleted table. */
  deleted: 0.005,
  /** NULL rate of a nullable column the generator knows nothing about. */
  unknownNull: 0.1,
});

/** One generated row: COPY text values in column order, plus what the loader counts. */
export interface SyntheticRow {
  /** Text values in the definition's column order; `null` is SQL NULL. */
  readonly values: readonly (string | null)[];
  /** The key value as text (uuid or integer). */
  readonly key: string;
  readonly removed: boolean;
  /** Whether the key also goes to the deleted-identifiers table. */
  readonly deleted: boolean;
}

/** Options of {@link createRowGenerator}. */
export interface RowGeneratorOptions {
  /** Unsigned 32-bit seed; the same seed and index always give the same row. */
  readonly seed: number;
  /** Share of non-removed rows marked deleted (0..1); default {@link syntheticRates.deleted}. */
  readonly deletedFraction?: number;
}

/** Everything one row's columns are derived from; built once per row. */
interface RowContext {
  readonly r: Random;
  /** Global row index (0-based). */
  readonly index: number;
  /** Unique per row within a seed: a bijection of the index, embedded in ids and URLs. */
  readonly n: number;
  readonly key: string;
  readonly profile: ProviderProfile;
  readonly who: Creator;
  readonly name: string;
  readonly links: Links;
  readonly license: string;
  readonly licenseVersion: string;
  readonly createdMs: number;
  readonly updatedMs: number;
  readonly removed: boolean;
}

type Generate = (ctx: RowContext) => string | null;

interface ColumnPlan {
  readonly generate: Generate;
  /** Chance of NULL in a nullable column (0 for NOT NULL columns). */
  readonly nullRate: number;
  /** The values never contain a backslash, tab or newline: COPY escaping can be skipped. */
  readonly plain: boolean;
}

const epoch2018 = Date.UTC(2018, 0, 1);
const span5y = Date.UTC(2023, 0, 1) - epoch2018;
const day = 86_400_000;

const iso = isoTimestamp;

function stripScheme(url: string): string {
  return url.replace(/^https?:\/\//, '');
}

/** A link that loses its scheme at `rate`, the way the catalog's crawled URLs do. */
function dirtyLink(r: Random, url: string | null, rate: number): string | null {
  if (url === null) return null;
  return r.chance(rate) ? stripScheme(url) : url;
}

function upperLicense(license: string): string {
  return license.toUpperCase();
}

/** The tags jsonb: NULL, `{}`, or an array of tags with the sample's kinds of dirt. */
function tags(ctx: RowContext): string | null {
  const { r } = ctx;
  const roll = r.next();
  if (roll < syntheticRates.tagsNull) return null;
  if (roll < syntheticRates.tagsNull + syntheticRates.tagsEmptyObject) return '{}';
  // Built as text rather than with JSON.stringify: this is the generator's hottest column, and
  // every name comes from a fixed word list with nothing to escape.
  const provider = JSON.stringify(ctx.profile.name);
  const list: string[] = [];
  const own = r.int(0, 6);
  for (let i = 0; i < own; i++) list.push(`{"name": "${r.pick(words)}", "provider": ${provider}}`);
  if (ctx.profile.machineTags && r.chance(syntheticRates.machineTags)) {
    const machine = r.int(2, 8);
    for (let i = 0; i < machine; i++) {
      // 1 - 0.3 u^5 puts about 20% of accuracies below 0.9, as in the sample's clarifai tags.
      const accuracy = Math.round((1 - 0.3 * r.next() ** 5) * 100_000) / 100_000;
      list.push(
        `{"name": "${r.pick(machineTagNames)}", "accuracy": ${accuracy}, "provider": "clarifai"}`,
      );
    }
  }
  if (r.chance(syntheticRates.junkTag)) {
    list.push(`{"name": "${r.pick(junkTagNames)}", "provider": ${provider}}`);
  }
  if (r.chance(syntheticRates.malformedTag)) {
    const malformed: readonly unknown[] = [
      r.pick(words),
      { provider: ctx.profile.name },
      { name: r.int(1, 2024), provider: ctx.profile.name },
      { name: '', provider: ctx.profile.name },
      null,
    ];
    list.splice(r.int(0, list.length), 0, JSON.stringify(r.pick(malformed)));
  }
  return `[${list.join(', ')}]`;
}

function metaData(ctx: RowContext, audio: boolean): string {
  const { r } = ctx;
  const meta: Record<string, unknown> = {};
  if (audio) {
    meta.listens = String(r.int(0, 600_000));
    meta.downloads = String(r.int(0, 5_000));
    meta.release_date = iso(ctx.createdMs - r.int(0, 3650) * day).slice(0, 10);
  } else {
    meta.pub_date = String(Math.floor((ctx.createdMs - r.int(0, 3650) * day) / 1000));
  }
  if (r.chance(0.45)) meta.description = description(r);
  const version = ctx.licenseVersion.includes('.') ? ctx.licenseVersion : `${ctx.licenseVersion}.0`;
  meta.license_url =
    ctx.license === 'cc0'
      ? 'https://creativecommons.org/publicdomain/zero/1.0/'
      : `https://creativecommons.org/licenses/${ctx.license}/${version}/`;
  meta.raw_license_url = null;
  return JSON.stringify(meta);
}

/** A value for a column the name heuristics do not know, by type. */
function byType(type: string, r: Random): string {
  const base = type.replace(/\[\]$/, '');
  const one = (): string => {
    if (base === 'uuid') return r.uuid();
    if (base === 'boolean') return r.chance(0.5) ? 't' : 'f';
    if (base === 'integer' || base === 'smallint' || base === 'bigint') {
      return String(r.int(0, 30_000));
    }
    if (base === 'double precision' || base === 'real' || base === 'numeric') {
      return String(Math.round(r.next() * 1e6) / 1e6);
    }
    if (base === 'date') return iso(epoch2018 + r.next() * span5y).slice(0, 10);
    if (base === 'timestamptz' || base === 'timestamp') return iso(epoch2018 + r.next() * span5y);
    if (base === 'jsonb' || base === 'json') return JSON.stringify({ note: phrase(r, 1, 3) });
    return phrase(r, 1, 3);
  };
  if (type.endsWith('[]')) {
    const items: string[] = [];
    const count = r.int(0, 3);
    for (let i = 0; i < count; i++) items.push(one());
    return arrayLiteral(items);
  }
  return one();
}

function maxLength(type: string): number | undefined {
  const m = /^varchar\((\d+)\)$/.exec(type);
  return m ? Number(m[1]) : undefined;
}

const categories = {
  image: new Weighted<string | null>([
    [null, 90],
    ['photograph', 4],
    ['digitized_artwork', 5],
    ['illustration', 1],
  ]),
  audio: new Weighted<string | null>([
    ['music', 85],
    ['sound_effect', 10],
    ['podcast', 5],
  ]),
};

/**
 * Plans the generator of one column from its name (Openverse's catalog column names) and
 * falls back on its type, so any media definition can be seeded.
 */
function planColumn(
  def: MediaDefinition,
  column: MediaDefinition['columns'][number],
  audio: boolean,
): ColumnPlan {
  const { name, type } = column;
  const plan = (generate: Generate, nullRate = 0): ColumnPlan => ({
    generate,
    nullRate,
    plain: false,
  });
  // Values built only from ids, numbers, timestamps, slugs and URL-encoded text.
  const plain = (generate: Generate, nullRate = 0): ColumnPlan => ({
    generate,
    nullRate,
    plain: true,
  });
  const urlColumns = new Set(def.cleaning.urlColumns);
  const link = syntheticRates.linkWithoutScheme;

  if (name === def.key.column) return plain((c) => c.key);
  if (name === def.providerColumn) return plain((c) => c.profile.name);
  if (name === def.removedColumn) return plain((c) => (c.removed ? 't' : 'f'));
  if (name === def.cleaning.tags?.column) return plan(tags);
  if (name === def.cleaning.licenseColumn || name === 'license') {
    return plain((c) =>
      c.r.chance(syntheticRates.upperCaseLicense) ? upperLicense(c.license) : c.license,
    );
  }
  switch (name) {
    case 'created_on':
      return plain((c) => iso(c.createdMs));
    case 'updated_on':
      return plain((c) => iso(c.updatedMs));
    case 'last_synced_with_source':
      return plain((c) => iso(c.updatedMs), 0.01);
    case 'ingestion_type': {
      const byProfile = new Map<ProviderProfile, Weighted<string>>();
      const weighted = (p: ProviderProfile): Weighted<string> => {
        let w = byProfile.get(p);
        if (!w) byProfile.set(p, (w = new Weighted(p.ingestion)));
        return w;
      };
      return plain((c) => weighted(c.profile).draw(c.r), 0.01);
    }
    case 'source':
      return plain((c) => c.profile.name, 0.001);
    case 'foreign_identifier':
      return plain((c) => c.links.foreignId);
    case 'url':
      return plain((c) => dirtyLink(c.r, c.links.url, syntheticRates.urlWithoutScheme));
    case 'thumbnail':
      return plain((c) => c.links.thumbnail, 0.05);
    case 'foreign_landing_url':
      return plain((c) => dirtyLink(c.r, c.links.landing, link));
    case 'creator_url':
      return plain((c) => dirtyLink(c.r, c.links.creatorUrl, link), 0.1);
    case 'creator':
      return plan((c) => c.who.name, 0.05);
    case 'title':
      return plan((c) => c.name, 0.025);
    case 'meta_data':
      return plan((c) => metaData(c, audio), 0.1);
    case 'license_version':
      return plain((c) => c.licenseVersion, 0.01);
    case 'width':
    case 'height':
      return plan((c) => String(c.r.int(240, 6000)), 0.12);
    case 'filesize':
      return plain((c) => String(c.r.int(20_000, audio ? 20_000_000 : 9_000_000)), 0.9);
    case 'duration':
      return plain((c) => String(c.r.int(2, 900) * 1000), 0.02);
    case 'bit_rate':
      return plain((c) => String(c.r.pick([128_000, 192_000, 256_000, 320_000])), 0.5);
    case 'sample_rate':
      return plain((c) => String(c.r.pick([22_050, 44_100, 48_000])), 0.5);
    case 'category':
      return plain((c) => (audio ? categories.audio : categories.image).draw(c.r));
    case 'filetype':
      return plain(
        (c) => c.r.pick(audio ? ['mp3', 'ogg', 'flac', 'wav'] : ['jpg', 'png', 'JPG', 'gif']),
        0.95,
      );
    case 'genres':
      return plain((c) => {
        const count = c.r.int(1, 3);
        const list: string[] = [];
        for (let i = 0; i < count; i++) list.push(c.r.pick(genres));
        return arrayLiteral([...new Set(list)]);
      }, 0.5);
    case 'audio_set':
      return plan(
        (c) =>
          JSON.stringify({
            set_url: `https://www.jamendo.com/album/${c.r.int(1, 600_000)}`,
            audio_set: title(c.r, 'plain'),
            set_position: String(c.r.int(1, 14)),
          }),
        0.2,
      );
    case 'alt_files':
      return plan(
        (c) =>
          JSON.stringify([
            {
              url: c.links.url.replace(/\.\w+$|$/, '.flac'),
              filetype: 'flac',
              filesize: c.r.int(1e6, 9e7),
            },
          ]),
        0.95,
      );
    case 'watermarked':
      return plain((c) => (c.r.chance(0.01) ? 't' : 'f'), 0.01);
    case 'standardized_popularity':
      return plain((c) => String(Math.round(c.r.next() * 1e6) / 1e6), 0.6);
  }
  if (urlColumns.has(name) || name.endsWith('_url')) {
    return plain(
      (c) => dirtyLink(c.r, `${c.links.landing}#${name}`, link),
      syntheticRates.unknownNull,
    );
  }
  return plain((c) => byType(type, c.r), syntheticRates.unknownNull);
}

/**
 * Columns of unique constraints that the generated ids do not already make unique get the
 * row's unique number appended; NULL never, because NULLs would not collide but would also
 * not be realistic for a unique column.
 */
function uniqueColumns(def: MediaDefinition): Set<string> {
  const coveredBy = new Set([def.key.column, 'foreign_identifier', 'url', 'foreign_landing_url']);
  const out = new Set<string>();
  for (const group of def.uniques) {
    if (group.some((c) => coveredBy.has(c))) continue;
    const column = group
      .map((c) => def.columns.find((col) => col.name === c))
      .find((col) => col && /^(text|varchar|integer|bigint)/.test(col.type));
    if (!column) {
      throw new Error(
        `media type ${def.name}: cannot generate unique values for (${group.join(', ')}); add a text or integer column to that unique`,
      );
    }
    out.add(column.name);
  }
  return out;
}

/** Generates the rows of one media definition; see {@link createRowGenerator}. */
export interface RowGenerator {
  /** Column names, in the order of each row's values (the definition's order). */
  readonly columns: readonly string[];
  /** Row `index` (0-based): a pure function of the seed and the index. */
  row(index: number): SyntheticRow;
  /** The row as one COPY text line, with its newline. */
  line(row: SyntheticRow): string;
}

/**
 * Compiles a row generator for a media definition. `row(index)` is a pure function of the seed
 * and the index: any slice of rows can be regenerated identically, and rows from a later index
 * never repeat a key, url or foreign id of an earlier one.
 */
export function createRowGenerator(
  def: MediaDefinition,
  options: RowGeneratorOptions,
): RowGenerator {
  const { seed } = options;
  if (!Number.isInteger(seed) || seed < 0 || seed > maxSeed) {
    throw new Error(`seed must be an integer from 0 to ${maxSeed}, got ${seed}`);
  }
  const deletedFraction = options.deletedFraction ?? syntheticRates.deleted;
  if (!(deletedFraction >= 0 && deletedFraction <= 1)) {
    throw new Error(`deletedFraction must be between 0 and 1, got ${deletedFraction}`);
  }
  const audio = isAudioLike(def.name);
  const profiles = providerProfiles(def.name);
  const integerKey = def.key.type !== 'uuid';
  const unique = uniqueColumns(def);
  const offset = hash32(seed ^ 0x2545f491);
  const plans = def.columns.map((column) => {
    const base = planColumn(def, column, audio);
    const limit = maxLength(column.type);
    let generate = base.generate;
    if (unique.has(column.name)) {
      const inner = generate;
      generate =
        column.type.startsWith('varchar') || column.type === 'text'
          ? (c) => {
              // The suffix makes the value unique, so a length limit cuts before it, not into it.
              const suffix = `-${c.n.toString(36)}`;
              const text = inner(c) ?? uniqueWord(c.n);
              const room = limit === undefined ? text.length : Math.max(0, limit - suffix.length);
              return text.slice(0, room) + suffix;
            }
          : (c) => String(c.n);
    }
    return {
      generate,
      nullRate: column.notNull || unique.has(column.name) ? 0 : base.nullRate,
      plain: base.plain,
      limit,
      type: column.type,
      notNull: column.notNull === true,
    };
  });

  const row = (index: number): SyntheticRow => {
    const r = createRandom(seed, index);
    const key = integerKey ? String(index + 1) : r.uuid();
    // A bijection of (index + seed offset): unique within a seed, and different seeds land on
    // different numbers, so appending with another seed does not collide either.
    const n = hash32((index + offset) >>> 0);
    const profile = profiles.draw(r);
    const who = creator(r);
    const name = title(r, profile.titleStyle);
    const [license, versions] = licenses.draw(r);
    const createdMs = epoch2018 + Math.floor(r.next() * span5y);
    const ctx: RowContext = {
      r,
      index,
      n,
      key,
      profile,
      who,
      name,
      links: profile.links(n, r, who, name),
      license,
      licenseVersion: r.pick(versions),
      createdMs,
      updatedMs: createdMs + Math.floor(r.next() * 400 * day),
      removed: r.chance(syntheticRates.removed),
    };
    const values: (string | null)[] = [];
    for (const p of plans) {
      let value = p.nullRate > 0 && r.next() < p.nullRate ? null : p.generate(ctx);
      if (value === null && p.notNull) value = byType(p.type, r);
      if (value !== null && p.limit !== undefined && value.length > p.limit) {
        value = value.slice(0, p.limit);
      }
      values.push(value);
    }
    const deleted = !ctx.removed && deletedFraction > 0 && r.next() < deletedFraction;
    return { values, key, removed: ctx.removed, deleted };
  };

  const line = (generated: SyntheticRow): string => {
    let text = '';
    const { values } = generated;
    for (let i = 0; i < plans.length; i++) {
      const value = values[i];
      if (i > 0) text += '\t';
      if (value === null || value === undefined) text += copyNull;
      else text += (plans[i] as (typeof plans)[number]).plain ? value : escapeCopyTextValue(value);
    }
    return text + '\n';
  };

  return { columns: def.columns.map((c) => c.name), row, line };
}
