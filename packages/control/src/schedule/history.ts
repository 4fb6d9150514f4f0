import { createPool, ensureRunStore, type Config } from '@freshet/core';
import { ScheduleStore, type SlotRow } from './slot-store.js';

/** The latest `limit` slots of this deployment (`FRESHET_QUEUE_PREFIX`), newest first. */
export async function slotHistory(config: Config, limit: number): Promise<SlotRow[]> {
  const api = createPool(config.API_DATABASE_URL, 'freshet-schedules', 1);
  try {
    await ensureRunStore(api);
    return await new ScheduleStore(api, config.FRESHET_QUEUE_PREFIX).listSlots({ limit });
  } finally {
    await api.end();
  }
}

/** Slot rows as text: fire time, schedule, outcome, run id or reason. */
export function formatSlotHistory(rows: readonly SlotRow[]): string {
  if (rows.length === 0) return 'no slot has come due yet\n';
  return `${rows
    .map(
      (r) =>
        `${r.fire_at.toISOString()}  ${r.schedule_id.padEnd(16)} ${r.outcome.padEnd(8)} ${r.run_id && r.outcome === 'started' ? r.run_id : (r.reason ?? '')}`,
    )
    .join('\n')}\n`;
}
