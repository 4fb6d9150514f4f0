import { readFileSync } from 'node:fs';
import { type MediaCatalog, type Profile, formatDuration, parseDuration } from '@freshet/core';
import { z } from 'zod';
import { cronMatcher, cronProblem, timeZoneProblem, type CronMatcher } from './cron.js';
import { jitterOffsetMs } from './jitter.js';

/** What a due slot does while its media (or a conflicting one) is being refreshed. */
export type OverlapPolicy = 'skip' | 'queue';

/** One validated entry of the schedules file. */
export interface ScheduleEntry {
  /** Unique name: lower-case letters, digits, `-` and `_`. Seeds the jitter and the run ids. */
  readonly id: string;
  readonly media: string;
  readonly profile: Profile;
  /** Cron expression (read by cron-parser): 5 fields, or 6 with seconds first; `@daily`-style nicknames. */
  readonly cron: string;
  /** IANA time zone the expression is read in. Default `UTC`. */
  readonly timezone: string;
  /** The maximum start offset as written (`30m`). Default `0`. */
  readonly jitter: string;
  /** The maximum start offset, in ms. */
  readonly jitterMs: number;
  /** This schedule's start offset after each slot, in ms: a hash of its id, in `[0, jitterMs]`. */
  readonly offsetMs: number;
  /** `skip` (default) records the slot as skipped; `queue` starts one run once the way is clear. */
  readonly overlap: OverlapPolicy;
  /** Media whose active runs (any profile) also hold this schedule back, e.g. same cluster. */
  readonly conflictsWith: readonly string[];
  /** A disabled entry is validated and listed but never fires. Default `true`. */
  readonly enabled: boolean;
  /** Fire times of `cron` in `timezone`, DST days by cron's convention (see `DstRule`). */
  readonly matcher: CronMatcher;
}

/** The validated schedules file. */
export interface ScheduleConfig {
  /** Where it was read from (for messages). */
  readonly source: string;
  readonly schedules: readonly ScheduleEntry[];
}

/**
 * A schedules file that cannot be used; lists every problem, each naming its entry. The CLI
 * prints the message and exits with `exitCode` (2).
 */
export class ScheduleConfigError extends Error {
  override readonly name = 'ScheduleConfigError';
  /** Process exit code for the CLI. */
  readonly exitCode = 2;
  constructor(
    readonly source: string,
    readonly problems: readonly string[],
  ) {
    super(`invalid schedules file ${source}:\n  - ${problems.join('\n  - ')}`);
  }
}

const idPattern = /^[a-z0-9][a-z0-9_-]{0,62}$/;

const entrySchema = z.strictObject({
  id: z.string().regex(idPattern, {
    message: 'must be 1-63 lower-case letters, digits, - or _ (like audio-daily)',
  }),
  media: z.string().min(1),
  profile: z.enum(['production', 'staging']).default('production'),
  cron: z.string(),
  timezone: z.string().default('UTC'),
  jitter: z.string().default('0'),
  overlap: z.enum(['skip', 'queue']).default('skip'),
  conflictsWith: z.array(z.string()).default([]),
  enabled: z.boolean().default(true),
});

const fileSchema = z.strictObject({
  $comment: z.string().optional(),
  schedules: z.array(z.unknown()),
});

/** `schedule "audio-daily" (schedules[1])`, or just the position when the id is unusable. */
function entryLabel(raw: unknown, index: number): string {
  const id = (raw as { id?: unknown } | null)?.id;
  return typeof id === 'string' && id !== ''
    ? `schedule ${JSON.stringify(id)} (schedules[${index}])`
    : `schedules[${index}]`;
}

/**
 * Validates the parsed content of a schedules file against the media catalog: every problem of
 * every entry (shape, cron expression by cron-parser's rules, IANA time zone, jitter, unknown
 * media or conflicting media, duplicate ids) is collected into one {@link ScheduleConfigError}.
 */
export function parseScheduleConfig(
  raw: unknown,
  media: MediaCatalog,
  source = '<schedules>',
): ScheduleConfig {
  const top = fileSchema.safeParse(raw);
  if (!top.success) {
    throw new ScheduleConfigError(
      source,
      top.error.issues.map((i) => `${i.path.join('.') || 'file'}: ${i.message}`),
    );
  }
  const problems: string[] = [];
  const schedules: ScheduleEntry[] = [];
  const seen = new Set<string>();
  const known = [...media.keys()];
  top.data.schedules.forEach((rawEntry, index) => {
    const label = entryLabel(rawEntry, index);
    const before = problems.length;
    const id = (rawEntry as { id?: unknown } | null)?.id;
    if (typeof id === 'string') {
      if (seen.has(id)) problems.push(`${label}: id ${JSON.stringify(id)} is used twice`);
      seen.add(id);
    }
    const parsed = entrySchema.safeParse(rawEntry);
    if (!parsed.success) {
      for (const i of parsed.error.issues) {
        problems.push(`${label}: ${i.path.join('.') || 'entry'}: ${i.message}`);
      }
      return;
    }
    const e = parsed.data;
    const cron = cronProblem(e.cron);
    if (cron) problems.push(`${label}: cron ${JSON.stringify(e.cron)}: ${cron}`);
    const zone = timeZoneProblem(e.timezone);
    if (zone) problems.push(`${label}: timezone: ${zone}`);
    const jitterMs = parseDuration(e.jitter);
    if (jitterMs === undefined) {
      problems.push(
        `${label}: jitter must be a duration like 0, 45s, 30m, 2h or 1h30m, got ${JSON.stringify(e.jitter)}`,
      );
    }
    if (!media.has(e.media)) {
      problems.push(
        `${label}: unknown media type ${JSON.stringify(e.media)}; known types: ${known.join(', ')}`,
      );
    }
    for (const other of e.conflictsWith) {
      if (!media.has(other)) {
        problems.push(
          `${label}: conflictsWith names unknown media type ${JSON.stringify(other)}; known types: ${known.join(', ')}`,
        );
      }
    }
    if (problems.length > before || jitterMs === undefined) return;
    schedules.push(
      Object.freeze({
        ...e,
        jitter: formatDuration(jitterMs),
        jitterMs,
        offsetMs: jitterOffsetMs(e.id, jitterMs),
        conflictsWith: Object.freeze([...new Set(e.conflictsWith)]),
        matcher: cronMatcher(e.cron, e.timezone),
      }),
    );
  });
  if (problems.length > 0) throw new ScheduleConfigError(source, problems);
  return Object.freeze({ source, schedules: Object.freeze(schedules) });
}

/** Reads and validates a schedules file (see {@link parseScheduleConfig}). */
export function loadScheduleConfig(file: string, media: MediaCatalog): ScheduleConfig {
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    throw new ScheduleConfigError(file, [`cannot read it: ${(err as Error).message}`]);
  }
  return parseScheduleConfig(raw, media, file);
}
