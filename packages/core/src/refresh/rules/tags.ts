import type { MediaDefinition } from '../../media.js';
import { absDecimal, compareDecimal, parseDecimal, type Decimal } from './decimal.js';
import { arrayElementSpans, memberSpan } from './json-scan.js';
import { jsonbText } from './jsonb-text.js';
import { numericText } from './decimal.js';
import { pgLower, pgSpaceClass } from './pg-ctype.js';

/** Why a tag is dropped, in the order the rules are tried. */
export type TagDropReason = 'malformed' | 'low-accuracy' | 'denylisted-provider' | 'denylisted';

/** Dropped tags by reason (reasons with none left out). */
export type TagDrops = Partial<Record<TagDropReason, number>>;

export type TagRulesConfig = NonNullable<MediaDefinition['cleaning']['tags']>;

/** A tags array after the rules: the text to store and index, and what was dropped. */
export interface TagSplit {
  /** The kept tags as JSON text: the input itself when nothing was dropped. */
  readonly text: string;
  /** Dropped tags by reason; null when none was. */
  readonly dropped: TagDrops | null;
  /** The kept elements, parsed, in order. */
  readonly kept: readonly unknown[];
}

/** The largest magnitude Elasticsearch's float holds (the SQL oracle's FLOAT_MAX), exact and rounded. */
const FLOAT_MAX_TEXT = '3.4028234663852886e38';
const floatMax = parseDecimal(FLOAT_MAX_TEXT) as Decimal;
const floatMaxDouble = Number(FLOAT_MAX_TEXT);

/** The SQL oracle's NUMERIC_STRING, with PostgreSQL's `\s` (which includes U+3000 and friends). */
const numericString = new RegExp(
  `^[${pgSpaceClass}]*[+-]?([0-9]+\\.?[0-9]*|\\.[0-9]+)([eE][+-]?[0-9]{1,3})?[${pgSpaceClass}]*$`,
  'u',
);
/** What numeric_in skips around a number: C's isspace, ASCII only. */
const asciiSpace = /^[ \t\n\v\f\r]+|[ \t\n\v\f\r]+$/g;
const bareNumber = /^[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]{1,3})?$/;
const looksNumeric = /^-?[0-9]+(\.[0-9]+)?$/;

/** How many tag names' denylist verdicts are remembered. */
const MAX_VERDICTS = 10_000;

const FINE = 0;
const LOW = 1;
const MALFORMED = 2;

/** Compiled tag rules of one media type; see {@link compileTagRules}. */
export interface TagRules {
  /**
   * Splits a tags array (`parsed`, JSON.parse of `text`) into the kept and dropped tags.
   * `text` is read again only for rows that need it: a kept array written back (each kept element
   * byte for byte, so numbers keep every digit) or an accuracy too close to a bound for a double.
   */
  split(text: string, parsed: readonly unknown[]): TagSplit;
}

/**
 * Compiles the tag rules of `config` for a tags column stored as `columnType`. The rules are
 * The SQL oracle's, in its order: `malformed` (not an object; a name that is not a string, or longer
 * than maxNameLength code points; an accuracy that is neither null, a number nor a numeric string
 * of at most 100 characters, or whose magnitude exceeds 3.4028234663852886e38; a provider that is
 * an object or an array), `low-accuracy` (below minAccuracy), `denylisted-provider`, then
 * `denylisted` (the name lower-cased as PostgreSQL's lower() does, exactly one of the denylist
 * or containing one of the substrings, both lower-cased as the SQL oracle does). Accuracies compare as
 * exact decimals (numeric), never as doubles.
 */
export function compileTagRules(config: TagRulesConfig, columnType: string): TagRules {
  const jsonb = columnType === 'jsonb';
  const minDouble = Number(config.minAccuracy);
  const min = parseDecimal(String(minDouble)) as Decimal;
  const maxName = config.maxNameLength;
  const providers = new Set(config.denylistedProviders);
  const numericProviders = config.denylistedProviders.some((p) => looksNumeric.test(p));
  const names = new Set(config.denylist.map((t) => t.toLowerCase()));
  const substrings = config.denylistSubstrings.map((s) => s.toLowerCase());
  const verdicts = new Map<string, boolean>();

  // The array being split, and its element spans once needed (per-call state: no closures are
  // made per row, which tsx's keepNames makes costly).
  let text = '';
  let spans: number[] | null = null;
  const elementSpans = () => (spans ??= arrayElementSpans(text));
  /** The raw text of member `key` of element `k` (it exists: JSON.parse saw it). */
  const rawMember = (k: number, key: string): string => {
    const s = elementSpans();
    const at = memberSpan(text, s[2 * k] as number, s[2 * k + 1] as number, key);
    if (!at) throw new Error(`tag ${k} has no ${key}`);
    return text.slice(at[0], at[1]);
  };

  return {
    split(input, parsed) {
      text = input;
      spans = null;
      let dropped: TagDrops | null = null;
      const keptIndexes: number[] = [];
      for (let k = 0; k < parsed.length; k++) {
        const reason = reasonOf(parsed[k], k);
        if (reason === null) keptIndexes.push(k);
        else {
          dropped ??= {};
          dropped[reason] = (dropped[reason] ?? 0) + 1;
        }
      }
      if (dropped === null) return { text: input, dropped, kept: parsed };
      const s = elementSpans();
      let out = '[';
      const kept: unknown[] = [];
      for (let n = 0; n < keptIndexes.length; n++) {
        const k = keptIndexes[n] as number;
        if (n > 0) out += ', ';
        const start = s[2 * k] as number;
        const end = s[2 * k + 1] as number;
        out += jsonb ? input.slice(start, end) : jsonbText(input, start, end);
        kept.push(parsed[k]);
      }
      return { text: out + ']', dropped, kept };
    },
  };

  function reasonOf(e: unknown, k: number): TagDropReason | null {
    if (typeof e !== 'object' || e === null || Array.isArray(e)) return 'malformed';
    const tag = e as Record<string, unknown>;
    const name = tag.name;
    if (typeof name !== 'string') return 'malformed';
    if (maxName !== undefined && name.length > maxName && codePoints(name) > maxName) {
      return 'malformed';
    }
    let accuracy = FINE;
    if (Object.hasOwn(tag, 'accuracy') && tag.accuracy !== null) {
      accuracy = accuracyVerdict(tag.accuracy, k);
    }
    const provider = tag.provider;
    if (typeof provider === 'object' && provider !== null) return 'malformed';
    if (accuracy === MALFORMED) return 'malformed';
    if (accuracy === LOW) return 'low-accuracy';
    if (providers.size > 0 && provider !== undefined && provider !== null) {
      let p: string | null = null;
      if (typeof provider === 'string') p = provider;
      else if (typeof provider === 'boolean') p = String(provider);
      else if (numericProviders) {
        const lexeme = rawMember(k, 'provider');
        p = jsonb ? lexeme : numericText(lexeme);
      }
      if (p !== null && providers.has(p)) return 'denylisted-provider';
    }
    let denied = verdicts.get(name);
    if (denied === undefined) {
      const lower = pgLower(name);
      denied = names.has(lower) || substrings.some((s) => lower.includes(s));
      // Tag names repeat a great deal: remember the verdicts, within a bound.
      if (verdicts.size >= MAX_VERDICTS) verdicts.clear();
      verdicts.set(name, denied);
    }
    return denied ? 'denylisted' : null;
  }

  function accuracyVerdict(value: unknown, k: number): number {
    let d: number;
    let exact: string | null = null;
    if (typeof value === 'number') d = value;
    else if (typeof value === 'string') {
      if (value.length > 100 || !numericString.test(value)) return MALFORMED;
      exact = value.replace(asciiSpace, '');
      // Other spaces pass the SQL's \s but fail its numeric cast (an error in the SQL).
      if (!bareNumber.test(exact)) return MALFORMED;
      d = Number(exact);
    } else return MALFORMED;
    // The double is the exact value rounded, and rounding keeps order: only a double equal to a
    // bound leaves the comparison undecided, and needs the exact digits.
    const magnitude = Math.abs(d);
    if (magnitude > floatMaxDouble) return MALFORMED;
    if (magnitude === floatMaxDouble) {
      const x = parseDecimal(exact ?? rawMember(k, 'accuracy')) as Decimal;
      if (compareDecimal(absDecimal(x), floatMax) > 0) return MALFORMED;
    }
    if (d < minDouble) return LOW;
    if (d === minDouble) {
      const x = parseDecimal(exact ?? rawMember(k, 'accuracy')) as Decimal;
      if (compareDecimal(x, min) < 0) return LOW;
    }
    return FINE;
  }
}

function codePoints(text: string): number {
  let n = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c < 0xd800 || c > 0xdbff) n++;
  }
  return n;
}
