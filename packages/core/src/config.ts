import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';
import { maskSecrets } from './redact.js';

/** The repository root (two levels above packages/core/src). */
export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');

const url = (protocols: string[], example: string) =>
  z.string().refine(
    (value) => {
      try {
        return protocols.includes(new URL(value).protocol);
      } catch {
        return false;
      }
    },
    { message: `must be a URL like ${example}` },
  );

/** Splits a list of URLs at each comma that starts another URL (a password may hold a comma). */
export function splitUrlList(value: string): string[] {
  return value
    .split(/,(?=\s*[a-z][a-z0-9+.-]*:\/\/)/i)
    .map((part) => part.trim())
    .filter((part) => part !== '');
}

/** One URL, or several separated by commas, each of one of `protocols`. */
const urlList = (protocols: string[], example: string) =>
  z.string().refine(
    (value) => {
      const parts = splitUrlList(value);
      return (
        parts.length > 0 &&
        value.split(',').every((part) => part.trim() !== '') &&
        parts.every((part) => {
          try {
            return protocols.includes(new URL(part).protocol);
          } catch {
            return false;
          }
        })
      );
    },
    { message: `must be a URL like ${example}` },
  );

const positiveInt = z.coerce
  .number({ message: 'must be a positive integer' })
  .int({ message: 'must be a positive integer' })
  .positive({ message: 'must be a positive integer' });
const nonNegativeInt = z.coerce
  .number({ message: 'must be a non-negative integer' })
  .int({ message: 'must be a non-negative integer' })
  .min(0, { message: 'must be a non-negative integer' });
/** Shortest dashboard token, and the fewest different characters in it. */
export const tokenMinLength = 24;
const tokenMinDistinct = 6;
const tokenRule = `must be at least ${tokenMinLength} characters with at least ${tokenMinDistinct} different ones (make one with: openssl rand -hex 24)`;
const token = z
  .string()
  .refine((v) => v.length >= tokenMinLength && new Set(v).size >= tokenMinDistinct, {
    message: tokenRule,
  });
/** A share from 0 to 1; the message shows an example (`0.01` for 1%). */
const fraction = (example: string) =>
  z.coerce
    .number({ message: `must be a fraction like ${example}` })
    .min(0, { message: `must be a fraction like ${example}` })
    .max(1, { message: `must be a fraction like ${example}` });
const bool = z.enum(['true', 'false', '1', '0']).transform((v) => v === 'true' || v === '1');

/** Every setting Freshet reads, with its default and its expected form. */
const schema = z.object({
  REDIS_URL: url(['redis:', 'rediss:'], 'redis://127.0.0.1:6379 (rediss:// for TLS)').default(
    'redis://127.0.0.1:6379',
  ),
  REDIS_TLS_CA_FILE: z.string().optional(),
  FRESHET_QUEUE_PREFIX: z
    .string()
    .regex(/^[a-zA-Z0-9_-]+$/, { message: 'must be letters, digits, _ or - (like freshet)' })
    .default('freshet'),
  CATALOG_DATABASE_URL: url(
    ['postgres:', 'postgresql:'],
    'postgres://user@host:5432/freshet_catalog',
  ).default('postgres://postgres@127.0.0.1:5432/freshet_catalog'),
  API_DATABASE_URL: url(
    ['postgres:', 'postgresql:'],
    'postgres://user@host:5432/freshet_api',
  ).default('postgres://postgres@127.0.0.1:5432/freshet_api'),
  /**
   * The Elasticsearch node, or several nodes of one cluster separated by commas
   * (`http://es1:9200,http://es2:9200`): requests are spread over them, and a node that is down
   * is skipped until it answers again.
   */
  ELASTICSEARCH_URL: urlList(
    ['http:', 'https:'],
    'http://127.0.0.1:9200, or several nodes separated by commas (http://es1:9200,http://es2:9200)',
  ).default('http://127.0.0.1:9200'),
  ELASTICSEARCH_INDEX_PREFIX: z
    .string()
    .regex(/^([a-z0-9][a-z0-9_-]{0,30}-)?$/, {
      message: 'must be empty or lower-case letters, digits, _ or -, ending in - (like blue-)',
    })
    .default(''),
  ELASTICSEARCH_USERNAME: z.string().optional(),
  ELASTICSEARCH_PASSWORD: z.string().optional(),
  ELASTICSEARCH_API_KEY: z.string().optional(),
  ELASTICSEARCH_CA_FILE: z.string().optional(),
  ELASTICSEARCH_REQUEST_TIMEOUT_MS: positiveInt.default(60_000),
  /** Replicas each new index gets back at finalize (it is built with none). */
  ELASTICSEARCH_REPLICAS: nonNegativeInt.default(0),
  /**
   * How long finalize waits (ms) for the new indices to be green once their replicas are
   * restored, before the attempt fails (the run is blocked; retry it once the cluster has the
   * nodes). Default 1 hour: a large index's replicas take a while to copy.
   */
  GREEN_WAIT_MS: positiveInt.default(3600_000),
  LOG_LEVEL: z.enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent']).default('info'),
  FRESHET_MEDIA_FILE: z.string().default(path.join(repoRoot, 'packages/core/media/media.json')),
  SENSITIVE_TERMS_FILE: z
    .string()
    .default(path.join(repoRoot, 'packages/core/media/sensitive-terms.txt')),
  /** The Openverse sample rows of `freshet seed --sample`; default: the copy shipped in the repo. */
  FRESHET_SAMPLE_DIR: z.string().default(path.join(repoRoot, 'packages/core/sample')),
  CHUNK_SIZE_ROWS: positiveInt.optional(),
  /** The smallest chunk a run may plan: a typo of `1` must not mean one job per row. */
  MIN_CHUNK_SIZE_ROWS: positiveInt.default(1000),
  /** The most chunks one run may plan (10,000: 1B rows at the default 100,000 rows per chunk). */
  MAX_CHUNKS_PER_RUN: positiveInt.default(10_000),
  STAGING_ROW_CAP: positiveInt.default(100_000),
  STAGING_CHUNK_SIZE_ROWS: positiveInt.default(10_000),
  CHUNK_ATTEMPTS: positiveInt.default(3),
  CHUNK_BACKOFF_MS: nonNegativeInt.default(1000),
  FANOUT_BATCH_SIZE: positiveInt.default(500),
  WORKER_CONCURRENCY: positiveInt.default(2),
  /** PostgreSQL JIT compilation for Freshet's sessions (off: it cost more than it saved per chunk). */
  PG_JIT: bool.default(false),
  STAGE_CONCURRENCY: positiveInt.default(2),
  INDEX_BULK_FLUSH_BYTES: positiveInt.default(5_000_000),
  INDEX_BULK_CONCURRENCY: positiveInt.default(2),
  /** Table indexes built at once before promotion, each on its own connection. */
  INDEX_BUILD_CONCURRENCY: positiveInt.default(2),
  CHUNK_DEADLINE_MS: positiveInt.default(30 * 60_000),
  STAGE_DEADLINE_MS: positiveInt.default(4 * 3600_000),
  SHUTDOWN_TIMEOUT_MS: positiveInt.default(30_000),
  WORKER_LOCK_DURATION_MS: positiveInt.default(30_000),
  WORKER_STALLED_INTERVAL_MS: positiveInt.default(30_000),
  WORKER_MAX_STALLED_COUNT: nonNegativeInt.default(1),
  DASHBOARD_PORT: z.coerce
    .number({ message: 'must be a TCP port (1-65535)' })
    .int({ message: 'must be a TCP port (1-65535)' })
    .min(0, { message: 'must be a TCP port (1-65535)' })
    .max(65535, { message: 'must be a TCP port (1-65535)' })
    .default(3000),
  FRESHET_OPERATOR_TOKEN: token.optional(),
  FRESHET_VIEWER_TOKEN: token.optional(),
  /** Failed logins (wrong credentials) one client address may make per window before 429s. */
  DASHBOARD_LOGIN_FAILURES: positiveInt.default(20),
  DASHBOARD_LOGIN_WINDOW_MS: positiveInt.default(60_000),
  FRESHET_ALLOW_DROP: bool.default(false),
  /**
   * Keep the build a promotion replaces: its API table is renamed `<table>_previous` (an older
   * one is dropped), beside its kept indices, so `freshet rollback` can put it back. false drops
   * the replaced table (its indices are still kept), and then there is nothing to roll back to.
   */
  KEEP_PREVIOUS_BUILD: bool.default(true),
  /**
   * The largest share (a fraction, default 0.01 = 1%) of a run's documents that Elasticsearch may
   * refuse for their content before finalize fails the run ahead of promotion. Each refused
   * document's row is rejected and counted (`es-refused:<type>`), so a few poison rows never
   * block a refresh; past this share the mapping is broken, not the data dirty. Of the rows that
   * reached the index step: refused / (rows left + refused).
   */
  MAX_REJECTED_RATE: fraction('0.01').default(0.01),
  /**
   * The shrink guard of a production promotion: a new build with fewer rows in all than the live
   * one by more than this share (default 0.10 = 10%) waits in `awaiting-approval`; 1 turns the
   * total rule off. Growth never counts.
   */
  PROMOTE_MAX_DROP: fraction('0.10').default(0.1),
  /**
   * The shrink guard per source: a source that had at least PROMOTE_SOURCE_MIN_ROWS live rows and
   * loses more than this share of them (default 0.5 = 50%) holds the promotion too.
   */
  PROMOTE_MAX_SOURCE_DROP: fraction('0.5').default(0.5),
  /** Live rows a source needs before its own drop can hold a promotion (default 1000). */
  PROMOTE_SOURCE_MIN_ROWS: positiveInt.default(1000),
  DASHBOARD_PUBLIC_URL: url(['http:', 'https:'], 'https://freshet.example.org').optional(),
  ALERT_WEBHOOK_URL: url(['http:', 'https:'], 'https://hooks.slack.com/services/...').optional(),
  STUCK_AFTER_MS: positiveInt.default(15 * 60_000),
  MONITOR_INTERVAL_MS: positiveInt.default(30_000),
  /**
   * How long work that is safe to repeat is retried while PostgreSQL or Elasticsearch is
   * unreachable or restarting, before the job's outcome is final: every run-store write (an
   * attempt's start and end, a stage's or a run's status) and the finalize, compare, promote and
   * report stages.
   */
  TRANSIENT_RETRY_MS: nonNegativeInt.default(120_000),
  /**
   * How often workers and the dashboard compare active runs with their BullMQ jobs; a run with
   * no live job seen twice in a row is blocked (so within about twice this), 0 turns it off.
   */
  RECONCILE_INTERVAL_MS: nonNegativeInt.default(20_000),
  FRESHET_SCHEDULES_FILE: z
    .string()
    .default(path.join(repoRoot, 'packages/core/config/schedules.json')),
  SCHEDULE_CATCHUP_WINDOW_MS: nonNegativeInt.default(6 * 3600_000),
  MAX_ACTIVE_CHUNKS: positiveInt.optional(),
  SHADOW_MAX_COUNT_CHANGE: z.coerce
    .number({ message: 'must be a fraction like 0.05' })
    .min(0)
    .default(0.05),
  SHADOW_MAX_DIFF_RATE: z.coerce
    .number({ message: 'must be a fraction like 0.1' })
    .min(0)
    .max(1)
    .default(0.1),
  SHADOW_MAX_NULL_SHIFT: z.coerce
    .number({ message: 'must be a fraction like 0.05' })
    .min(0)
    .max(1)
    .default(0.05),
  SHADOW_SAMPLE_SIZE: positiveInt.default(50),
  ADMISSION_PG_MIN_FREE_CONNECTIONS: nonNegativeInt.default(5),
  ADMISSION_ES_MIN_FREE_DISK_BYTES: nonNegativeInt.default(1_000_000_000),
  ADMISSION_RETRY_MS: positiveInt.default(2000),
  ADMISSION_CACHE_MS: nonNegativeInt.default(1000),
});

export type RawConfig = z.infer<typeof schema>;

/** Validated, frozen Freshet configuration. */
export type Config = Readonly<RawConfig>;

/** A configuration error that lists every bad variable, one per line. */
export class ConfigError extends Error {
  override readonly name = 'ConfigError';
  constructor(readonly problems: readonly string[]) {
    super(`invalid configuration: ${problems.join('; ')}`);
  }
}

/** Names of settings whose values must never be printed. */
export const secretSettings: ReadonlySet<string> = new Set([
  'ALERT_WEBHOOK_URL',
  'ELASTICSEARCH_PASSWORD',
  'ELASTICSEARCH_API_KEY',
  'FRESHET_OPERATOR_TOKEN',
  'FRESHET_VIEWER_TOKEN',
]);

/**
 * Reads every setting from `env` once, validates it and returns a frozen object.
 * Throws a {@link ConfigError} naming each bad variable with the value seen and the expected form.
 */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const input: Record<string, string> = {};
  for (const key of Object.keys(schema.shape)) {
    const value = env[key];
    if (value !== undefined && value !== '') input[key] = value;
  }
  const parsed = schema.safeParse(input);
  const problems = parsed.success
    ? []
    : parsed.error.issues.map((issue) => {
        const key = String(issue.path[0]);
        const raw = input[key];
        const shown = secretSettings.has(key) ? '<redacted>' : JSON.stringify(shownValue(key, raw));
        return `${key} ${issue.message}, got ${shown}`;
      });
  // Checked on the raw values, so the problem is listed even beside others.
  if (
    input.FRESHET_OPERATOR_TOKEN !== undefined &&
    input.FRESHET_OPERATOR_TOKEN === input.FRESHET_VIEWER_TOKEN
  ) {
    problems.push(
      'FRESHET_VIEWER_TOKEN must differ from FRESHET_OPERATOR_TOKEN (the same token would sign the viewer in as operator), got <redacted>',
    );
  }
  if (!parsed.success || problems.length > 0) throw new ConfigError(problems);
  return Object.freeze(parsed.data);
}

/** A rejected value as printed: URLs masked; a URL setting with `@` but no `//` hidden whole. */
function shownValue(key: string, raw: string | undefined): string | undefined {
  if (raw === undefined || !key.endsWith('_URL')) return raw;
  // `:pw@host:6379` without its scheme has no `//` for maskSecrets to find the userinfo by.
  if (raw.includes('@') && !raw.includes('//')) return '<redacted: not a URL>';
  return maskSecrets(raw);
}
