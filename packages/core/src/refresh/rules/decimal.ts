/**
 * Exact decimal arithmetic for the few places where the rules must compare numbers the way
 * PostgreSQL's `numeric` does (never as doubles): a tag's accuracy against the threshold and
 * against Elasticsearch's float range, and which JSON numbers `jsonb` can hold.
 */

/**
 * A decimal value `(neg ? -1 : 1) * 0.digits * 10^exp`: `digits` has no leading or trailing zeros,
 * and zero is `digits === ''` (never negative, as in numeric).
 */
export interface Decimal {
  readonly neg: boolean;
  readonly digits: string;
  readonly exp: number;
}

/** A number as numeric_in reads it (no surrounding space): sign, digits, point, exponent. */
const lexeme = /^([+-]?)([0-9]*)(?:\.([0-9]*))?(?:[eE]([+-]?[0-9]+))?$/;

interface Parts {
  readonly neg: boolean;
  readonly int: string;
  readonly frac: string;
  /** The exponent's text (may be too large for a number), or '' when absent. */
  readonly exp: string;
}

function parts(text: string): Parts | null {
  const m = lexeme.exec(text);
  if (!m) return null;
  const int = m[2] ?? '';
  const frac = m[3] ?? '';
  if (int === '' && frac === '') return null;
  return { neg: m[1] === '-', int, frac, exp: m[4] ?? '' };
}

/** The exponent as a number, or ±Infinity when its magnitude reaches 1e15. */
function exponent(text: string): number {
  if (text === '') return 0;
  const digits = text.replace(/^[+-]?0*/, '');
  const sign = text.startsWith('-') ? -1 : 1;
  if (digits.length > 15) return sign * Infinity;
  return sign * Number(digits === '' ? '0' : digits);
}

/**
 * Parses a decimal number (`12`, `-0.50`, `.5`, `5.`, `1e-400`, `+1E3`); null when the text is not
 * one. Exponents beyond ±1e15 are refused (no numeric holds them).
 */
export function parseDecimal(text: string): Decimal | null {
  const p = parts(text);
  if (!p) return null;
  const e = exponent(p.exp);
  if (!Number.isFinite(e)) return null;
  const all = p.int + p.frac;
  let first = 0;
  while (first < all.length && all.charCodeAt(first) === 48) first++;
  if (first === all.length) return { neg: false, digits: '', exp: 0 };
  let last = all.length;
  while (all.charCodeAt(last - 1) === 48) last--;
  return { neg: p.neg, digits: all.slice(first, last), exp: p.int.length - first + e };
}

/** -1, 0 or 1 as `a` is below, equal to or above `b` (exact). */
export function compareDecimal(a: Decimal, b: Decimal): number {
  const az = a.digits === '';
  const bz = b.digits === '';
  if (az && bz) return 0;
  const sa = az ? 0 : a.neg ? -1 : 1;
  const sb = bz ? 0 : b.neg ? -1 : 1;
  if (sa !== sb) return sa < sb ? -1 : 1;
  // Same sign, both non-zero: compare magnitudes, then apply the sign.
  let m: number;
  if (a.exp !== b.exp) m = a.exp < b.exp ? -1 : 1;
  else if (a.digits === b.digits) m = 0;
  else {
    // Digit strings without trailing zeros: lexicographic order is numeric order.
    m = a.digits < b.digits ? -1 : 1;
  }
  return sa < 0 ? -m : m;
}

/** |d|. */
export function absDecimal(d: Decimal): Decimal {
  return d.neg ? { ...d, neg: false } : d;
}

/** numeric's limits: int16 weight (base-10000 digits), 14-bit display scale, exponent bound. */
const MAX_WEIGHT = 32767;
const MAX_DSCALE = 16383;
const MAX_EXPONENT = 1073741823; // INT_MAX / 2: numeric_in refuses exponents from here on

/**
 * Whether numeric_in accepts the JSON number `text` (and so whether jsonb can hold it):
 * false when the value overflows numeric's format (e.g. `1e131072`, `1e-16384`, `1.0e-16383`,
 * `0e-16384`, `0e1073741823`).
 */
export function numericAccepts(text: string): boolean {
  const p = parts(text);
  if (!p) return false;
  const e = exponent(p.exp);
  if (e >= MAX_EXPONENT || e <= -MAX_EXPONENT) return false;
  if (Math.max(0, p.frac.length - e) > MAX_DSCALE) return false;
  let k = 0;
  while (k < p.int.length && p.int.charCodeAt(k) === 48) k++;
  let position: number; // the power of ten of the first non-zero digit
  if (k < p.int.length) position = p.int.length - 1 - k + e;
  else {
    let f = 0;
    while (f < p.frac.length && p.frac.charCodeAt(f) === 48) f++;
    if (f === p.frac.length) return true; // zero
    position = e - f - 1;
  }
  return Math.floor(position / 4) <= MAX_WEIGHT;
}

/**
 * numeric_out(numeric_in(text)): the text jsonb and `->>` give for the JSON number `text`: no
 * exponent, the input's scale kept (`1.50` stays, `1e2` is `100`, `1E-3` is `0.001`, `-0.0` is
 * `0.0`). The caller checks {@link numericAccepts} first.
 */
export function numericText(text: string): string {
  const p = parts(text);
  if (!p) throw new Error(`not a number: ${JSON.stringify(text.slice(0, 40))}`);
  const e = exponent(p.exp);
  const digits = p.int + p.frac;
  const point = p.int.length + e; // digits before the decimal point
  const scale = Math.max(0, p.frac.length - e);
  let int: string;
  let frac: string;
  if (point <= 0) {
    int = '0';
    frac = '0'.repeat(-point) + digits;
  } else if (point >= digits.length) {
    int = digits + '0'.repeat(point - digits.length);
    frac = '';
  } else {
    int = digits.slice(0, point);
    frac = digits.slice(point);
  }
  frac = frac.length >= scale ? frac.slice(0, scale) : frac + '0'.repeat(scale - frac.length);
  int = int.replace(/^0+(?=[0-9])/, '');
  const zero = !/[1-9]/.test(int) && !/[1-9]/.test(frac);
  return `${p.neg && !zero ? '-' : ''}${int}${scale > 0 ? `.${frac}` : ''}`;
}
