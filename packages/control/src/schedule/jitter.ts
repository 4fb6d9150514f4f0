import { createHash } from 'node:crypto';

/**
 * The start offset of a schedule, in ms: a hash of its id mapped onto `[0, jitterMs]`, in whole
 * seconds when the jitter is a second or more. Schedules due at the same moment start apart; the
 * same id always gets the same offset, on every replica and after every restart.
 */
export function jitterOffsetMs(scheduleId: string, jitterMs: number): number {
  if (jitterMs <= 0) return 0;
  const hash = createHash('sha256').update(`freshet-schedule-jitter\0${scheduleId}`).digest();
  const fraction = hash.readUIntBE(0, 6) / 2 ** 48;
  const offset = Math.floor(fraction * (jitterMs + 1));
  return jitterMs >= 1000 ? Math.floor(offset / 1000) * 1000 : offset;
}
