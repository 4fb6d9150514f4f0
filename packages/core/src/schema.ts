import type pg from 'pg';
import { withSchemaLock } from './db.js';

/**
 * Freshet's store in the API database (schema `freshet`), in one place: numbered migrations,
 * each applied once, in order, by whichever process starts first (under the schema lock), and
 * recorded in `freshet.schema_migrations`. Every statement is idempotent, so a database that
 * had these tables from an earlier version (which created them without the record) is brought up
 * to date the same way. A change to the store is a new migration at the end, never an edit.
 */
export const migrations: readonly {
  readonly id: number;
  readonly name: string;
  readonly sql: string;
}[] = [
  {
    id: 1,
    name: 'runs, stages, chunks, attempts, logs, audit',
    sql: `
CREATE TABLE IF NOT EXISTS freshet.runs (
  id text PRIMARY KEY,
  prefix text NOT NULL,
  media text NOT NULL,
  profile text NOT NULL,
  status text NOT NULL,
  stage text,
  chunk_count integer,
  plan jsonb,
  counts jsonb,
  error text,
  requested_by text,
  created_at timestamptz NOT NULL DEFAULT now(),
  started_at timestamptz,
  finished_at timestamptz,
  updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX IF NOT EXISTS runs_one_active_per_media
  ON freshet.runs (prefix, media, profile)
  WHERE status IN ('queued', 'running', 'blocked', 'paused', 'awaiting-approval');
CREATE TABLE IF NOT EXISTS freshet.stages (
  run_id text NOT NULL REFERENCES freshet.runs (id) ON DELETE CASCADE,
  stage text NOT NULL,
  status text NOT NULL DEFAULT 'pending',
  started_at timestamptz,
  finished_at timestamptz,
  result jsonb,
  error text,
  PRIMARY KEY (run_id, stage)
);
CREATE TABLE IF NOT EXISTS freshet.chunks (
  run_id text NOT NULL REFERENCES freshet.runs (id) ON DELETE CASCADE,
  chunk integer NOT NULL,
  range_start text,
  range_end text,
  copy_status text NOT NULL DEFAULT 'pending',
  clean_status text NOT NULL DEFAULT 'pending',
  index_status text NOT NULL DEFAULT 'pending',
  rows_copied bigint,
  rows_indexed bigint,
  result jsonb NOT NULL DEFAULT '{}',
  PRIMARY KEY (run_id, chunk)
);
CREATE TABLE IF NOT EXISTS freshet.attempts (
  id bigserial PRIMARY KEY,
  run_id text NOT NULL REFERENCES freshet.runs (id) ON DELETE CASCADE,
  job_id text NOT NULL,
  step text NOT NULL,
  chunk integer,
  attempt integer NOT NULL,
  worker text NOT NULL,
  status text NOT NULL,
  started_at timestamptz NOT NULL DEFAULT now(),
  finished_at timestamptz,
  ms integer,
  rows bigint,
  result jsonb,
  error text
);
CREATE INDEX IF NOT EXISTS attempts_run ON freshet.attempts (run_id, step, chunk);
CREATE TABLE IF NOT EXISTS freshet.logs (
  id bigserial PRIMARY KEY,
  run_id text NOT NULL REFERENCES freshet.runs (id) ON DELETE CASCADE,
  job_id text,
  level text NOT NULL,
  msg text NOT NULL,
  fields jsonb,
  at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS logs_run ON freshet.logs (run_id, id);
CREATE TABLE IF NOT EXISTS freshet.audit (
  id bigserial PRIMARY KEY,
  run_id text,
  actor text NOT NULL,
  action text NOT NULL,
  detail jsonb,
  at timestamptz NOT NULL DEFAULT now()
);
`,
  },
  {
    id: 2,
    name: 'waiting reason of a run, progress marker of an attempt',
    sql: `
ALTER TABLE freshet.runs ADD COLUMN IF NOT EXISTS waiting_reason text;
ALTER TABLE freshet.runs ADD COLUMN IF NOT EXISTS waiting_since timestamptz;
ALTER TABLE freshet.attempts ADD COLUMN IF NOT EXISTS progress_at timestamptz;
`,
  },
  {
    id: 3,
    name: 'alerts',
    sql: `
CREATE TABLE IF NOT EXISTS freshet.alerts (
  run_id text NOT NULL REFERENCES freshet.runs (id) ON DELETE CASCADE,
  kind text NOT NULL,
  episode text NOT NULL DEFAULT '',
  claimed_at timestamptz NOT NULL DEFAULT now(),
  sent_at timestamptz,
  payload jsonb,
  PRIMARY KEY (run_id, kind, episode)
);
`,
  },
  {
    id: 4,
    name: 'schedule slots and state',
    sql: `
CREATE TABLE IF NOT EXISTS freshet.schedule_slots (
  prefix text NOT NULL,
  schedule_id text NOT NULL,
  slot_time timestamptz NOT NULL,
  fire_at timestamptz NOT NULL,
  media text NOT NULL,
  profile text NOT NULL,
  outcome text NOT NULL
    CHECK (outcome IN ('claimed', 'started', 'skipped', 'queued', 'missed', 'failed')),
  run_id text,
  reason text,
  claimed_by text NOT NULL,
  claimed_at timestamptz NOT NULL,
  decided_at timestamptz,
  PRIMARY KEY (prefix, schedule_id, slot_time)
);
CREATE UNIQUE INDEX IF NOT EXISTS schedule_slots_one_queued
  ON freshet.schedule_slots (prefix, schedule_id) WHERE outcome = 'queued';
CREATE INDEX IF NOT EXISTS schedule_slots_recent ON freshet.schedule_slots (prefix, fire_at DESC);
CREATE TABLE IF NOT EXISTS freshet.schedule_state (
  prefix text NOT NULL,
  schedule_id text NOT NULL,
  first_seen_at timestamptz NOT NULL,
  PRIMARY KEY (prefix, schedule_id)
);
`,
  },
  {
    id: 5,
    name: 'promotions and rollbacks',
    sql: `
CREATE TABLE IF NOT EXISTS freshet.promotions (
  id bigserial PRIMARY KEY,
  prefix text NOT NULL,
  media text NOT NULL,
  profile text NOT NULL,
  action text NOT NULL CHECK (action IN ('promote', 'rollback')),
  run_id text NOT NULL,
  replaced_run_id text,
  actor text NOT NULL,
  at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS promotions_media ON freshet.promotions (prefix, media, profile, id);
CREATE UNIQUE INDEX IF NOT EXISTS promotions_once ON freshet.promotions (run_id)
  WHERE action = 'promote';
`,
  },
];

const migrationsTableSql = `
CREATE SCHEMA IF NOT EXISTS freshet;
CREATE TABLE IF NOT EXISTS freshet.schema_migrations (
  id integer PRIMARY KEY,
  name text NOT NULL,
  applied_at timestamptz NOT NULL DEFAULT now()
);`;

/**
 * Brings Freshet's store up to date: applies the migrations not recorded yet, each in its own
 * transaction with its record (a migration that fails leaves nothing half done). Cheap when
 * there is nothing to do; safe from many processes at once (the schema lock serialises them).
 */
export async function ensureRunStore(api: pg.Pool): Promise<void> {
  await withSchemaLock(api, async (client) => {
    await client.query(migrationsTableSql);
    const { rows } = await client.query<{ id: number }>('SELECT id FROM freshet.schema_migrations');
    const applied = new Set(rows.map((r) => r.id));
    for (const m of migrations) {
      if (applied.has(m.id)) continue;
      await client.query('BEGIN');
      try {
        await client.query(m.sql);
        await client.query('INSERT INTO freshet.schema_migrations (id, name) VALUES ($1, $2)', [
          m.id,
          m.name,
        ]);
        await client.query('COMMIT');
      } catch (err) {
        await client.query('ROLLBACK').catch(() => undefined);
        throw new Error(
          `migration ${m.id} (${m.name}) of the freshet schema failed: ${(err as Error).message}`,
          { cause: err },
        );
      }
    }
  });
}
