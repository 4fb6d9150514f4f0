import { isPgWordChar, pgLowerChar, pgUpperChar, pgWordClass, regexChar } from './pg-ctype.js';

/** Whether a text contains a sensitive term; see {@link compileSensitiveMatcher}. */
export type SensitiveMatcher = (text: string) => boolean;

/**
 * `text ~* '\m(term|term...)\M'` (the SQL rule it replaced, kept in test/helpers/sql-oracle.ts) in JavaScript; null
 * when no term can ever match. PostgreSQL's case-insensitive matching lets a pattern character
 * match its lower- and upper-case forms (`allcases`: ASCII by ASCII rules, others by the
 * locale, not Unicode case folding); `\m` and `\M` are word boundaries over PostgreSQL's word
 * characters, so a term must start and end with one.
 */
export function compileSensitiveMatcher(terms: readonly string[]): SensitiveMatcher | null {
  const alternatives: string[] = [];
  for (const term of terms) {
    const chars = [...term].map((ch) => ch.codePointAt(0) as number);
    const classes: string[] = [];
    for (const [k, cp] of chars.entries()) {
      let variants = [...new Set(caseVariants(cp))];
      // \m needs a word character after it, \M one before it.
      if (k === 0 || k === chars.length - 1) variants = variants.filter(isPgWordChar);
      if (variants.length === 0) break;
      classes.push(
        variants.length === 1
          ? regexChar(variants[0] as number)
          : `[${variants.map(regexChar).join('')}]`,
      );
    }
    if (classes.length === chars.length && classes.length > 0) alternatives.push(classes.join(''));
  }
  if (alternatives.length === 0) return null;
  // The start boundary is checked by hand: a lookbehind first in the pattern would keep the
  // engine from scanning quickly for the terms' first characters.
  const pattern = new RegExp(`(?:${alternatives.join('|')})(?![${pgWordClass}])`, 'gu');
  return (text) => {
    pattern.lastIndex = 0;
    for (;;) {
      const m = pattern.exec(text);
      if (m === null) return false;
      if (!wordCharBefore(text, m.index)) return true;
      pattern.lastIndex = m.index + ((text.codePointAt(m.index) as number) > 0xffff ? 2 : 1);
    }
  };
}

/** Whether the code point that ends just before `at` is a word character. */
function wordCharBefore(text: string, at: number): boolean {
  if (at === 0) return false;
  let cp = text.charCodeAt(at - 1);
  if (cp >= 0xdc00 && cp <= 0xdfff && at >= 2) {
    const high = text.charCodeAt(at - 2);
    if (high >= 0xd800 && high <= 0xdbff) cp = (high - 0xd800) * 0x400 + (cp - 0xdc00) + 0x10000;
  }
  return isPgWordChar(cp);
}

/** The characters a case-insensitive PostgreSQL pattern character matches. */
function caseVariants(cp: number): number[] {
  if (cp < 0x80) {
    const lower = cp >= 0x41 && cp <= 0x5a ? cp + 32 : cp;
    const upper = cp >= 0x61 && cp <= 0x7a ? cp - 32 : cp;
    return [lower, upper];
  }
  return [pgLowerChar(cp), pgUpperChar(cp)];
}
