import type { ComparisonReport } from './compare.js';
import type { ShrinkCheck } from './shrink-guard.js';

// The reports the late stages store in a run's `counts` (jsonb), read back with one check of
// their shape each, for the run view and the alerts.

/** What a field of a stored report must be, for {@link storedReport}. */
type FieldKind = 'object' | 'array' | 'string' | 'boolean';

/** The report stored in a run's `counts[key]` if it has the fields of `shape`, else null. */
function storedReport<T>(
  counts: Record<string, unknown> | null,
  key: string,
  shape: Record<string, FieldKind>,
): T | null {
  const c = counts?.[key];
  if (typeof c !== 'object' || c === null) return null;
  const r = c as Record<string, unknown>;
  const fits = Object.entries(shape).every(([field, kind]) =>
    kind === 'array' ? Array.isArray(r[field]) : typeof r[field] === kind,
  );
  return fits ? (c as T) : null;
}

/**
 * The shadow comparison stored in a run's `counts.comparison` by its compare stage, or null
 * when there is none (not a shadow run, or not compared yet) or it is not shaped like one.
 */
export function comparisonOf(counts: Record<string, unknown> | null): ComparisonReport | null {
  return storedReport<ComparisonReport>(counts, 'comparison', {
    totals: 'object',
    sources: 'object',
    reasons: 'array',
    diffs: 'array',
    shiftedFields: 'array',
    withinThresholds: 'boolean',
  });
}

/**
 * The shrink guard's comparison stored in a run's `counts.shrink`, or null when there is none
 * (the guard has not run yet) or it is not shaped like one.
 */
export function shrinkOf(counts: Record<string, unknown> | null): ShrinkCheck | null {
  return storedReport<ShrinkCheck>(counts, 'shrink', {
    totals: 'object',
    sources: 'object',
    limits: 'object',
    drops: 'array',
    outcome: 'string',
  });
}
