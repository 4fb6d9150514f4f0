import { activeStatuses, type Pool, type Profile, type RunStatus } from '@freshet/core';
import type { MissedSlot, Slot } from './slots.js';

/**
 * What became of a slot: `claimed` (a scheduler took it and is starting it), `started` (run
 * `run_id`), `skipped` / `queued` (its media or a conflicting one was busy; `reason` says which
 * run), `missed` (reported, never run), `failed` (the run could not be started).
 */
export type SlotOutcome = 'claimed' | 'started' | 'skipped' | 'queued' | 'missed' | 'failed';

/** A row of `freshet.schedule_slots`: one per slot that came due, whatever became of it. */
export interface SlotRow {
  prefix: string;
  schedule_id: string;
  slot_time: Date;
  fire_at: Date;
  media: string;
  profile: Profile;
  outcome: SlotOutcome;
  run_id: string | null;
  reason: string | null;
  claimed_by: string;
  claimed_at: Date;
  decided_at: Date | null;
}

/** An active run that holds a schedule back. */
export interface Blocker {
  id: string;
  media: string;
  profile: Profile;
  status: RunStatus;
}

/** The schedule an operation is about, as the slot rows record it. */
export interface SlotSchedule {
  readonly id: string;
  readonly media: string;
  readonly profile: Profile;
}

// One row per (deployment, schedule, cron time): the primary key is the claim, so however many
// producers run, exactly one of them inserts a given slot. At most one slot per schedule waits.

const startLock = 74657202;

const isUniqueViolation = (err: unknown) => (err as { code?: string }).code === '23505';

/** Slot claims and outcomes of one deployment (queue prefix), in Postgres. */
export class ScheduleStore {
  constructor(
    private readonly db: Pool,
    readonly prefix: string,
  ) {}

  /**
   * When schedulers first saw `scheduleId`: `now` of the first caller, the same for every caller
   * however many ask at once.
   */
  async firstSeen(scheduleId: string, now: Date): Promise<Date> {
    // DO UPDATE (writing the stored value back), not DO NOTHING plus a SELECT of the row: under
    // READ COMMITTED, when another scheduler's insert of the row is in flight, ON CONFLICT waits
    // for it to commit and DO UPDATE then locks and returns that row even though it is not in
    // this statement's snapshot. DO NOTHING returns nothing for it, and a SELECT in the same
    // statement reads that same snapshot, so neither would see the row.
    const { rows } = await this.db.query<{ first_seen_at: Date }>(
      `INSERT INTO freshet.schedule_state AS s (prefix, schedule_id, first_seen_at)
       VALUES ($1, $2, $3)
       ON CONFLICT (prefix, schedule_id) DO UPDATE SET first_seen_at = s.first_seen_at
       RETURNING first_seen_at`,
      [this.prefix, scheduleId, now],
    );
    const row = rows[0];
    if (!row) throw new Error(`schedule_state returned no row for schedule ${scheduleId}`);
    return row.first_seen_at;
  }

  /** The latest slot time recorded for `scheduleId`, whatever its outcome. */
  async lastSlotTime(scheduleId: string): Promise<Date | undefined> {
    const { rows } = await this.db.query<{ t: Date | null }>(
      'SELECT max(slot_time) AS t FROM freshet.schedule_slots WHERE prefix = $1 AND schedule_id = $2',
      [this.prefix, scheduleId],
    );
    return rows[0]?.t ?? undefined;
  }

  /** Claims a slot for `by`; true only for the one caller that inserted it. */
  async claim(
    schedule: SlotSchedule,
    slot: Slot,
    runId: string,
    by: string,
    now: Date,
  ): Promise<boolean> {
    const { rowCount } = await this.db.query(
      `INSERT INTO freshet.schedule_slots
         (prefix, schedule_id, slot_time, fire_at, media, profile, outcome, run_id, claimed_by, claimed_at)
       VALUES ($1, $2, $3, $4, $5, $6, 'claimed', $7, $8, $9)
       ON CONFLICT (prefix, schedule_id, slot_time) DO NOTHING`,
      [
        this.prefix,
        schedule.id,
        slot.slotTime,
        slot.fireAt,
        schedule.media,
        schedule.profile,
        runId,
        by,
        now,
      ],
    );
    return rowCount === 1;
  }

  /** Records missed slots; returns those this caller recorded (another may have been first). */
  async reportMissed(
    schedule: SlotSchedule,
    slots: readonly MissedSlot[],
    by: string,
    now: Date,
  ): Promise<MissedSlot[]> {
    if (slots.length === 0) return [];
    const { rows } = await this.db.query<{ slot_time: Date }>(
      `INSERT INTO freshet.schedule_slots
         (prefix, schedule_id, slot_time, fire_at, media, profile, outcome, reason, claimed_by, claimed_at, decided_at)
       SELECT $1, $2, s, f, $3, $4, 'missed', r, $5, $6, $6
         FROM unnest($7::timestamptz[], $8::timestamptz[], $9::text[]) AS u(s, f, r)
        ORDER BY s
       ON CONFLICT (prefix, schedule_id, slot_time) DO NOTHING RETURNING slot_time`,
      [
        this.prefix,
        schedule.id,
        schedule.media,
        schedule.profile,
        by,
        now,
        slots.map((s) => s.slotTime),
        slots.map((s) => s.fireAt),
        slots.map((s) => s.reason),
      ],
    );
    const recorded = new Set(rows.map((r) => r.slot_time.getTime()));
    return slots.filter((s) => recorded.has(s.slotTime.getTime()));
  }

  /** Sets a claimed slot's outcome. */
  async decide(
    scheduleId: string,
    slotTime: Date,
    outcome: Exclude<SlotOutcome, 'claimed' | 'queued'>,
    reason: string | null,
    now: Date,
  ): Promise<void> {
    await this.db.query(
      `UPDATE freshet.schedule_slots SET outcome = $4, reason = $5, decided_at = $6
        WHERE prefix = $1 AND schedule_id = $2 AND slot_time = $3`,
      [this.prefix, scheduleId, slotTime, outcome, reason, now],
    );
  }

  /**
   * Queues a claimed slot behind the runs named in `reason`. False if another slot of the
   * schedule is already queued (at most one waits).
   */
  async queue(scheduleId: string, slotTime: Date, reason: string, now: Date): Promise<boolean> {
    try {
      await this.db.query(
        `UPDATE freshet.schedule_slots SET outcome = 'queued', reason = $4, decided_at = $5
          WHERE prefix = $1 AND schedule_id = $2 AND slot_time = $3`,
        [this.prefix, scheduleId, slotTime, reason, now],
      );
      return true;
    } catch (err) {
      if (isUniqueViolation(err)) return false;
      throw err;
    }
  }

  /** The slot of `scheduleId` waiting in the queue, if any. */
  async queuedSlot(scheduleId: string): Promise<SlotRow | undefined> {
    const { rows } = await this.db.query<SlotRow>(
      `SELECT * FROM freshet.schedule_slots
        WHERE prefix = $1 AND schedule_id = $2 AND outcome = 'queued'`,
      [this.prefix, scheduleId],
    );
    return rows[0];
  }

  /** Takes the queued slot back to `claimed` for `by`; only one caller gets it. */
  async takeQueued(
    scheduleId: string,
    slotTime: Date,
    by: string,
    now: Date,
  ): Promise<SlotRow | undefined> {
    const { rows } = await this.db.query<SlotRow>(
      `UPDATE freshet.schedule_slots SET outcome = 'claimed', claimed_by = $4, claimed_at = $5
        WHERE prefix = $1 AND schedule_id = $2 AND slot_time = $3 AND outcome = 'queued'
        RETURNING *`,
      [this.prefix, scheduleId, slotTime, by, now],
    );
    return rows[0];
  }

  /**
   * Takes over slots of `scheduleId` claimed before `cutoff` and never decided (their scheduler
   * stopped between claiming and starting); each is handed to exactly one caller.
   */
  async takeStale(scheduleId: string, cutoff: Date, by: string, now: Date): Promise<SlotRow[]> {
    const { rows } = await this.db.query<SlotRow>(
      `UPDATE freshet.schedule_slots SET claimed_by = $4, claimed_at = $5
        WHERE prefix = $1 AND schedule_id = $2 AND outcome = 'claimed' AND claimed_at < $3
        RETURNING *`,
      [this.prefix, scheduleId, cutoff, by, now],
    );
    return rows;
  }

  /**
   * Active runs that hold a schedule back: the same media and profile (the run store's lock),
   * or any run of a media in `conflictsWith`.
   */
  async blockers(
    media: string,
    profile: Profile,
    conflictsWith: readonly string[],
  ): Promise<Blocker[]> {
    const { rows } = await this.db.query<Blocker>(
      `SELECT id, media, profile, status FROM freshet.runs
        WHERE prefix = $1 AND status = ANY($2)
          AND ((media = $3 AND profile = $4) OR media = ANY($5))
        ORDER BY created_at`,
      [this.prefix, activeStatuses, media, profile, conflictsWith],
    );
    return rows;
  }

  /** Whether a run with this id was recorded. */
  async runExists(runId: string): Promise<boolean> {
    const { rowCount } = await this.db.query('SELECT 1 FROM freshet.runs WHERE id = $1', [runId]);
    return (rowCount ?? 0) > 0;
  }

  /**
   * Runs `fn` while holding this deployment's start lock, so that "no conflicting run is
   * active" stays true until the run `fn` starts is recorded, across every scheduler.
   */
  async withStartLock<T>(fn: () => Promise<T>): Promise<T> {
    const client = await this.db.connect();
    let broken: Error | undefined;
    try {
      await client.query('SELECT pg_advisory_lock($1, hashtext($2))', [startLock, this.prefix]);
      return await fn();
    } finally {
      await client
        .query('SELECT pg_advisory_unlock($1, hashtext($2))', [startLock, this.prefix])
        .catch((err: Error) => (broken = err));
      // A session that could not unlock is discarded: closing it drops the lock.
      client.release(broken);
    }
  }

  /** Recent slots, newest fire time first (optionally of one schedule). */
  async listSlots(opts: { scheduleId?: string; limit?: number } = {}): Promise<SlotRow[]> {
    const { rows } = await this.db.query<SlotRow>(
      `SELECT * FROM freshet.schedule_slots
        WHERE prefix = $1 AND ($2::text IS NULL OR schedule_id = $2)
        ORDER BY fire_at DESC, schedule_id LIMIT $3`,
      [this.prefix, opts.scheduleId ?? null, opts.limit ?? 50],
    );
    return rows;
  }
}
