import { createTask, validateDetailed } from 'node-cron';
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

/** node-cron's internal matcher; its public API only computes fire times from the wall clock. */
interface NodeCronTimeMatcher {
  /** The first time after `date` (whole seconds) the expression names, read in its zone. */
  getNextMatch(date: Date): Date;
}

const fieldNames: Record<string, string> = {
  dayOfMonth: 'day-of-month',
  dayOfWeek: 'day-of-week',
};

/**
 * What is wrong with a cron expression by node-cron's rules (5 fields, or 6 with seconds;
 * nicknames like `@daily`), or `undefined` if it is valid.
 */
export function cronProblem(expression: string): string | undefined {
  let result: ReturnType<typeof validateDetailed>;
  try {
    result = validateDetailed(expression);
  } catch (err) {
    return (err as Error).message;
  }
  if (result.valid) return undefined;
  if (result.errors.length === 0) return 'not a valid cron expression';
  return result.errors
    .map((e) =>
      e.field === 'expression'
        ? e.message
        : `invalid ${fieldNames[e.field] ?? e.field} field ${JSON.stringify(e.value ?? '')}`,
    )
    .join('; ');
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
 * ({@link DstRule}). node-cron reads the expression (its fields, names, `L`, `W`, `#`, and
 * nicknames) and finds the matching wall-clock times, evaluated in UTC where no clock change
 * exists; {@link instantsOfWallClock} turns each into real instants with the time zone rules of
 * the runtime (Intl). Fire times are strictly increasing: local times that meet at one instant
 * (02:00 and 02:30 both skipped to 03:00, and 03:00 itself) fire once. Throws if the expression
 * is invalid (check with {@link cronProblem} first for a readable message).
 */
export function cronMatcher(expression: string, timeZone: string): CronMatcher {
  const wallClock = nodeCronMatcher(expression, 'UTC');
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

/** node-cron's own matcher of `expression` read in `timeZone`. */
function nodeCronMatcher(expression: string, timeZone: string): NodeCronTimeMatcher {
  // The task is created only to reach its matcher: it is never started, and destroying it
  // removes it from node-cron's global registry.
  const task = createTask(expression, () => undefined, { timezone: timeZone });
  const inner = (task as unknown as { timeMatcher?: Partial<NodeCronTimeMatcher> }).timeMatcher;
  void task.destroy();
  if (typeof inner?.getNextMatch !== 'function') {
    throw new Error(
      'node-cron no longer exposes TimeMatcher.getNextMatch on its tasks; pin node-cron to ^4.6 or update apps/producer/src/schedule/cron.ts',
    );
  }
  return inner as NodeCronTimeMatcher;
}
