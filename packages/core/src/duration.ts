// Durations, the two ways Freshet prints them: as settings read them (`1h30m`) and in words for
// people (`2 h 5 min`, alerts).
const unitMs = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 } as const;
type Unit = keyof typeof unitMs;

/**
 * Parses a duration such as `0`, `45s`, `30m`, `2h`, `1d` or `1h30m` into milliseconds.
 * Returns `undefined` for anything else.
 */
export function parseDuration(text: string): number | undefined {
  const value = text.trim();
  if (value === '0') return 0;
  if (!/^(\d+(ms|s|m|h|d))+$/.test(value)) return undefined;
  let total = 0;
  for (const [, amount, unit] of value.matchAll(/(\d+)(ms|s|m|h|d)/g)) {
    total += Number(amount) * unitMs[unit as Unit];
  }
  return Number.isSafeInteger(total) ? total : undefined;
}

/**
 * Formats milliseconds the way {@link parseDuration} reads them: `1h30m`, `45s`, `0` (settings,
 * schedules, the CLI).
 */
export function formatDuration(ms: number): string {
  if (ms === 0) return '0';
  let rest = ms;
  let out = '';
  for (const unit of ['d', 'h', 'm', 's', 'ms'] as const) {
    const n = Math.floor(rest / unitMs[unit]);
    if (n > 0) {
      out += `${n}${unit}`;
      rest -= n * unitMs[unit];
    }
  }
  return out;
}

/** A duration in words, rounded to what a person reads: `45 s`, `16 min`, `2 h 5 min`. */
export function formatDurationWords(ms: number): string {
  const s = Math.round(ms / 1000);
  if (s < 120) return `${s} s`;
  const m = Math.floor(s / 60);
  if (m < 120) return `${m} min`;
  const h = Math.floor(m / 60);
  return m % 60 ? `${h} h ${m % 60} min` : `${h} h`;
}
