const dayMs = 86_400_000;
const dates: string[] = [];
const pad2: readonly string[] = Array.from({ length: 60 }, (_, i) => String(i).padStart(2, '0'));
const pad3: readonly string[] = Array.from({ length: 1000 }, (_, i) => String(i).padStart(3, '0'));

/**
 * `new Date(ms).toISOString()` for the generator's hot path (about 3x faster: the date part is
 * cached per day). Only for ms from 1970 on; earlier instants fall back on Date.
 */
export function isoTimestamp(ms: number): string {
  if (!(ms >= 0) || !Number.isFinite(ms)) return new Date(ms).toISOString();
  const t = Math.floor(ms);
  const dayIndex = Math.floor(t / dayMs);
  let date = dates[dayIndex];
  if (date === undefined) {
    date = new Date(dayIndex * dayMs).toISOString().slice(0, 11);
    dates[dayIndex] = date;
  }
  let rest = t - dayIndex * dayMs;
  const milli = rest % 1000;
  rest = (rest - milli) / 1000;
  const sec = rest % 60;
  rest = (rest - sec) / 60;
  const min = rest % 60;
  const hour = (rest - min) / 60;
  return `${date}${pad2[hour] as string}:${pad2[min] as string}:${pad2[sec] as string}.${pad3[milli] as string}Z`;
}
