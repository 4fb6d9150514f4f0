import { CronExpressionParser, type CronExpression } from 'cron-parser';
import { instantsOfWallClock, offsetAt } from './zone.js';

const dayMs = 86_400_000;

/** Fire times of one cron expression in one time zone (see {@link cronMatcher}). */
export interface CronMatcher {
  /** The first fire time strictly after `after` (fire times are whole seconds). */
  next(after: Date): Date;
  /** Whether `date` (to the second) is a fire time. */
  matches(date: Date): boolean;
  /** How the schedule meets a clock change (see {@link dstRule}). */
  readonly dst: DstRule;
}

/**
 * How a schedule meets a daylight-saving change, by Vixie cron's rule (cronie's too):
 * - `fixed-time`: neither the minute nor the hour field starts with `*` (`30 2 * * *`,
 *   `0 0 1 * *`, `@daily`). It fires once on every local day it matches: a local time skipped
 *   by a spring-forward fires at the first instant after the gap, the moment the clocks jump
 *   (02:30 in a 02:00 -> 03:00 gap fires at 03:00 local; cronie runs such jobs right after the
 *   change); a local time repeated by a fall-back fires once, at its first occurrence.
 * - `real-time`: the minute or the hour field starts with `*` (`0 * * * *`, `*\/15 * * * *`,
 *   `@hourly`). It follows the real clock: every real instant whose local time matches fires,
 *   so a skipped hour simply has none and a repeated hour fires at both of its occurrences.
 */
export type DstRule = 'fixed-time' | 'real-time';

const nicknames: Record<string, DstRule> = {
  '@yearly': 'fixed-time',
  '@annually': 'fixed-time',
  '@monthly': 'fixed-time',
  '@weekly': 'fixed-time',
  '@daily': 'fixed-time',
  '@midnight': 'fixed-time',
  '@hourly': 'real-time',
};

/** The {@link DstRule} of a valid cron expression (5 fields, 6 with seconds, or a nickname). */
export function dstRule(expression: string): DstRule {
  const text = expression.trim();
  const nickname = nicknames[text.toLowerCase()];
  if (nickname) return nickname;
  const fields = text.split(/\s+/);
  const [minute, hour] = fields.length === 6 ? fields.slice(1, 3) : fields.slice(0, 2);
  return minute?.startsWith('*') || hour?.startsWith('*') ? 'real-time' : 'fixed-time';
}

/** cron-parser's nicknames, plus `@midnight` (cron's name for `@daily`). */
const expansions: Record<string, string> = {
  '@yearly': '0 0 1 1 *',
  '@annually': '0 0 1 1 *',
  '@monthly': '0 0 1 * *',
  '@weekly': '0 0 * * 0',
  '@daily': '0 0 * * *',
  '@midnight': '0 0 * * *',
  '@hourly': '0 * * * *',
};

const fieldNames = ['second', 'minute', 'hour', 'day-of-month', 'month', 'day-of-week'] as const;

/** The expression as 6 fields (seconds first), or what is wrong with its shape. */
function sixFields(expression: string): string[] | string {
  const text = expression.trim();
  const expanded = expansions[text.toLowerCase()] ?? text;
  if (expanded.startsWith('@')) {
    return `unknown nickname ${JSON.stringify(text)}; use one of ${Object.keys(expansions).join(', ')}`;
  }
  const fields = expanded === '' ? [] : expanded.split(/\s+/);
  if (fields.length === 5) fields.unshift('0');
  if (fields.length !== 6) {
    return `expected 5 or 6 fields (seconds first) but got ${fields.length}, or a nickname such as @daily`;
  }
  return fields;
}

/** cron-parser's reading of a 6-field expression evaluated in UTC (throws on a bad field). */
function parseUtc(fields: readonly string[], currentDate = new Date(0)): CronExpression {
  return CronExpressionParser.parse(fields.join(' '), { tz: 'UTC', currentDate });
}

/**
 * What is wrong with a cron expression (5 fields, or 6 with seconds first; `L` and `#` in the
 * day fields; month and day names; nicknames like `@daily`), or `undefined` if it is valid. The
 * same reader ({@link cronMatcher}'s cron-parser) decides what is valid and computes fire times.
 */
export function cronProblem(expression: string): string | undefined {
  const fields = sixFields(expression);
  if (typeof fields === 'string') return fields;
  const problems: string[] = [];
  fields.forEach((field, i) => {
    if (/(^|,)h(?=$|[(/,])/i.test(field)) {
      problems.push(
        `invalid ${fieldNames[i]} field ${JSON.stringify(field)}: hashed (H) values are not supported; use the schedule's jitter`,
      );
      return;
    }
    // Each field on its own (every other field \`*\`), so the message names the field.
    const alone = fields.map((f, j) => (j === i ? f : j === 0 ? '0' : '*'));
    try {
      parseUtc(alone);
    } catch (err) {
      problems.push(
        `invalid ${fieldNames[i]} field ${JSON.stringify(field)} (${(err as Error).message})`,
      );
    }
  });
  if (problems.length > 0) return problems.join('; ');
  try {
    parseUtc(fields).next();
    return undefined;
  } catch (err) {
    return (err as Error).message;
  }
}

/** What is wrong with an IANA time zone name, or `undefined` if the runtime knows it. */
export function timeZoneProblem(timeZone: string): string | undefined {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone });
    return undefined;
  } catch {
    return `unknown time zone ${JSON.stringify(timeZone)}; use an IANA name such as UTC, Europe/Berlin or America/New_York`;
  }
}

/**
 * A matcher for `expression` in `timeZone`: the times at which the local clock of `timeZone`
 * shows a time the expression names, with daylight-saving changes handled by cron's convention
 * ({@link DstRule}). cron-parser (the reader BullMQ uses, through its public API) reads the
 * expression and finds the matching wall-clock times, evaluated in UTC where no clock change
 * exists; {@link instantsOfWallClock} turns each into real instants with the time zone rules of
 * the runtime (Intl). Fire times are strictly increasing: local times that meet at one instant
 * (02:00 and 02:30 both skipped to 03:00, and 03:00 itself) fire once. Throws if the expression
 * is invalid (check with {@link cronProblem} first for a readable message).
 */
export function cronMatcher(expression: string, timeZone: string): CronMatcher {
  const fields = sixFields(expression);
  if (typeof fields === 'string') throw new Error(`cron ${JSON.stringify(expression)}: ${fields}`);
  // One parsed expression, moved to each start point: the first match strictly after it.
  const utc = parseUtc(fields);
  const wallClock = {
    getNextMatch(date: Date): Date {
      utc.reset(date);
      return utc.next().toDate();
    },
  };
  const dst = dstRule(expression);
  /** The fire instants of one matching wall-clock time. */
  const firesOf = (local: number): readonly number[] => {
    const { instants, gapEnd } = instantsOfWallClock(local, timeZone);
    if (dst === 'real-time') return instants;
    const first = instants[0] ?? gapEnd;
    return first === undefined ? [] : [first];
  };
  const next = (after: Date): Date => {
    const a = after.getTime();
    const offset = offsetAt(a, timeZone);
    // A fire after `a` shows a later wall clock than `a` does, unless the clocks go back in
    // between (within a day, by less than a day): then it may show one up to `drop` earlier.
    const drop = offset - offsetAt(a + dayMs, timeZone);
    const goesBack = drop > 0 && offsetAt(a + drop, timeZone) !== offset;
    let local = wallClock.getNextMatch(new Date(a + offset - (goesBack ? drop : 0))).getTime();
    let best: number | undefined;
    let maxOffset = offset;
    for (;;) {
      for (const fire of firesOf(local)) {
        if (fire > a && (best === undefined || fire < best)) {
          best = fire;
          // A fire before `best` would be one within hours of it, after `a`: under one of these.
          maxOffset = Math.max(
            offsetAt(best, timeZone),
            best - a < dayMs ? offset : offsetAt(best - dayMs, timeZone),
          );
        }
      }
      // Every later wall-clock match (a second or more later) fires at or after its time minus
      // the offset then in force: once that passes `best`, nothing can fire before it.
      if (best !== undefined && local + 1000 - maxOffset > best) return new Date(best);
      local = wallClock.getNextMatch(new Date(local)).getTime();
    }
  };
  return {
    dst,
    next,
    matches: (date) => {
      const t = date.getTime();
      return t % 1000 === 0 && next(new Date(t - 1000)).getTime() === t;
    },
  };
}
