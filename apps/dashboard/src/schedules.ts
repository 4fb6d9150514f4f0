import { ensureRunStore, type Config, type MediaCatalog, type Pool } from '@freshet/core';
import {
  loadScheduleConfig,
  ScheduleConfigError,
  ScheduleStore,
  type SlotOutcome,
  scheduleTable,
  type ScheduleTableRow,
} from '@freshet/control';

/** Most next fire times one request may ask for per schedule. */
export const maxUpcoming = 20;

/** The latest slot of a schedule that came due, and what became of it. */
export interface LastSlot {
  /** The cron time. */
  readonly slotTime: Date;
  /** When it fired (cron time plus the schedule's jitter offset). */
  readonly fireAt: Date;
  readonly outcome: SlotOutcome;
  /** The run it started (or will start, while `claimed`). */
  readonly runId: string | null;
  /** Why it was skipped, queued, missed or failed. */
  readonly reason: string | null;
  readonly decidedAt: Date | null;
}

/** One schedule entry with its next fire times and its latest slot. */
export interface ScheduleView extends ScheduleTableRow {
  readonly lastSlot: LastSlot | null;
}

/** What `GET /api/schedules` answers. */
export interface SchedulesView {
  /** The schedules file (FRESHET_SCHEDULES_FILE). */
  readonly file: string;
  readonly now: Date;
  readonly schedules: ScheduleView[];
  /**
   * Why the file cannot be used (unreadable, invalid JSON, a bad cron, time zone or media
   * name), one line per problem; empty when it is valid. The scheduler refuses such a file too.
   */
  readonly problems: string[];
}

/**
 * The schedule table for the dashboard: the schedules file is read and validated on every call
 * (so an edit shows at once, as `freshet schedules` would print it), and each entry's latest
 * slot comes from this deployment's `freshet.schedule_slots`.
 */
export class Schedules {
  private storeReady: Promise<void> | undefined;

  constructor(
    private readonly deps: {
      readonly config: Pick<Config, 'FRESHET_SCHEDULES_FILE'>;
      readonly media: MediaCatalog;
      readonly api: Pool;
      readonly prefix: string;
    },
  ) {}

  /** Every schedule with its next `count` fire times after `now` and its latest slot. */
  async view(now: Date, count: number): Promise<SchedulesView> {
    const file = this.deps.config.FRESHET_SCHEDULES_FILE;
    let rows: ScheduleTableRow[];
    try {
      rows = scheduleTable(loadScheduleConfig(file, this.deps.media), now, count);
    } catch (err) {
      if (err instanceof ScheduleConfigError) {
        return { file, now, schedules: [], problems: [...err.problems] };
      }
      throw err;
    }
    // The scheduler creates the slot table; a dashboard started first creates it (empty) too.
    this.storeReady ??= ensureRunStore(this.deps.api).catch((err: unknown) => {
      this.storeReady = undefined;
      throw err;
    });
    await this.storeReady;
    const store = new ScheduleStore(this.deps.api, this.deps.prefix);
    const schedules = await Promise.all(
      rows.map(async (row): Promise<ScheduleView> => {
        const [slot] = await store.listSlots({ scheduleId: row.id, limit: 1 });
        return {
          ...row,
          lastSlot: slot
            ? {
                slotTime: slot.slot_time,
                fireAt: slot.fire_at,
                outcome: slot.outcome,
                runId: slot.run_id,
                reason: slot.reason,
                decidedAt: slot.decided_at,
              }
            : null,
        };
      }),
    );
    return { file, now, schedules, problems: [] };
  }
}
