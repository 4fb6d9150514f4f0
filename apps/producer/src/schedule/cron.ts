import { createTask, validateDetailed } from 'node-cron';

/** Fire times of one cron expression in one time zone, computed by node-cron's own matcher. */
export interface CronMatcher {
  /** The first fire time strictly after `after` (fire times are whole seconds). */
  next(after: Date): Date;
  /** Whether `date` (to the second) is a fire time. */
  matches(date: Date): boolean;
}

/** node-cron's internal matcher; its public API only computes fire times from the wall clock. */
interface NodeCronTimeMatcher {
  getNextMatch(date: Date): Date;
  match(date: Date): boolean;
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
 * A matcher for `expression` in `timeZone`. node-cron computes the time zone and DST rules,
 * so the slots computed here are the very times node-cron itself would fire at. Throws if the
 * expression is invalid (check with {@link cronProblem} first for a readable message).
 */
export function cronMatcher(expression: string, timeZone: string): CronMatcher {
  // The task is created only to reach its matcher: it is never started, and destroying it
  // removes it from node-cron's global registry.
  const task = createTask(expression, () => undefined, { timezone: timeZone });
  const inner = (task as unknown as { timeMatcher?: Partial<NodeCronTimeMatcher> }).timeMatcher;
  void task.destroy();
  if (typeof inner?.getNextMatch !== 'function' || typeof inner.match !== 'function') {
    throw new Error(
      'node-cron no longer exposes TimeMatcher.getNextMatch on its tasks; pin node-cron to ^4.6 or update apps/producer/src/schedule/cron.ts',
    );
  }
  const matcher = inner as NodeCronTimeMatcher;
  return {
    next: (after) => matcher.getNextMatch(after),
    matches: (date) => matcher.match(date),
  };
}
