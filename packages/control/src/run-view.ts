import {
  activeStatuses,
  NotFoundError,
  stageOrder,
  comparisonOf,
  shrinkOf,
  type ComparisonReport,
  type Pool,
  type RunRow,
  type RunStatus,
  type ShrinkCheck,
} from '@freshet/core';
// Read back from the run's counts by core (the alerts read them too); re-exported for the API.
export { comparisonOf, shrinkOf } from '@freshet/core';
import { computePace, throughputWindowSeconds, type Pace } from './throughput.js';

/** Most chunks the grid lists (a production image run has a few thousand). */
export const gridLimit = 5000;
/** Most chunk-step attempts the timeline draws (the most recent ones). */
export const timelineLimit = 3000;

const isActive = (status: RunStatus) => (activeStatuses as readonly string[]).includes(status);

/** One run in the runs list, with its chunk progress. */
export interface RunSummary extends RunRow {
  readonly active: boolean;
  readonly chunks: { total: number; indexed: number; failed: number };
}

/** One stage of a run, pending ones included, in pipeline order. */
export interface StageView {
  readonly stage: string;
  readonly status: string;
  readonly started_at: Date | null;
  readonly finished_at: Date | null;
  /** Duration so far (running) or in total (finished), milliseconds. */
  readonly ms: number | null;
  readonly error: string | null;
}

/** Chunk counts of a run per step and status, with the grid of every chunk's steps. */
export interface ChunksView {
  readonly total: number;
  readonly copied: number;
  readonly cleaned: number;
  readonly indexed: number;
  readonly failed: number;
  readonly running: { copy: number; clean: number; index: number };
  readonly rowsCopied: number;
  readonly rowsIndexed: number;
  /**
   * One string per chunk (in chunk order) of three letters, copy/clean/index, each
   * p(ending) r(unning) d(one) f(ailed) s(kipped); at most {@link gridLimit} chunks.
   */
  readonly grid: string[];
  readonly gridTruncated: boolean;
}

/** A count per reason or rule, from the clean step's results. */
export interface ReasonCount {
  readonly reason: string;
  readonly count: number;
  readonly sample: string[];
}

/** Rows per source before the refresh and, once reported, after it. */
export interface SourceCount {
  readonly source: string;
  readonly before: number | null;
  readonly after: number | null;
  readonly change: number | null;
}

/** One attempt of one job, as the worker recorded it. */
export interface AttemptView {
  readonly id: number;
  readonly job_id: string;
  readonly step: string;
  readonly chunk: number | null;
  readonly attempt: number;
  readonly worker: string;
  readonly status: string;
  readonly started_at: Date;
  readonly finished_at: Date | null;
  readonly ms: number | null;
  readonly rows: number | null;
  readonly error: string | null;
}

/** A bar of the timeline: one attempt of one stage or chunk step, offsets in ms from `origin`. */
export interface TimelineBar {
  readonly step: string;
  readonly chunk: number | null;
  readonly status: string;
  readonly start: number;
  readonly end: number | null;
}

/** Everything the run page shows. */
export interface RunDetails {
  readonly run: RunRow & { active: boolean };
  readonly now: Date;
  readonly stages: StageView[];
  readonly chunks: ChunksView;
  readonly pace: Pace;
  readonly sources: SourceCount[];
  /**
   * Rows rejected, per reason (summed over the chunks so far): by the copy step (no key), the
   * clean step, and the index step (`es-refused:<type>`: documents Elasticsearch refused).
   */
  readonly rejected: ReasonCount[];
  /** Upstream rows the copy step skipped (removed upstream, deleted), per reason. */
  readonly skipped: ReasonCount[];
  readonly changed: ReasonCount[];
  readonly tagsDropped: ReasonCount[];
  /**
   * A shadow build's comparison with the live data (from its compare stage), or null. While
   * the run is `awaiting-approval` this is why it is held.
   */
  readonly comparison: ComparisonReport | null;
  /**
   * The shrink guard's comparison of the new build with the live one (total and per source, with
   * the drops beyond the limits and what the guard decided), or null before it ran. While the
   * run is `awaiting-approval` with outcome `held`, this is why it is held.
   */
  readonly shrink: ShrinkCheck | null;
  readonly timeline: { origin: Date | null; bars: TimelineBar[]; truncated: boolean };
  readonly attempts: AttemptView[];
  readonly logs: {
    id: number;
    job_id: string | null;
    level: string;
    msg: string;
    fields: unknown;
    at: Date;
  }[];
  readonly audit: { id: number; actor: string; action: string; detail: unknown; at: Date }[];
}

/** Read-only queries behind the run view and the REST API, scoped to one queue prefix. */
export class RunView {
  constructor(
    private readonly db: Pool,
    private readonly prefix: string,
  ) {}

  /** The run, or a {@link NotFoundError} if it does not exist under this prefix. */
  async run(id: string): Promise<RunRow> {
    const { rows } = await this.db.query<RunRow>(
      'SELECT * FROM freshet.runs WHERE id = $1 AND prefix = $2',
      [id, this.prefix],
    );
    if (!rows[0]) throw new NotFoundError(`no run with id ${JSON.stringify(id)}`);
    return rows[0];
  }

  /** Recent runs, newest first, with chunk progress; optionally of one media type or status. */
  async list(opts: { limit: number; media?: string; status?: string }): Promise<RunSummary[]> {
    const { rows } = await this.db.query<
      RunRow & { total: number | null; indexed: number | null; failed: number | null }
    >(
      `SELECT r.*, c.total, c.indexed, c.failed
         FROM freshet.runs r
         LEFT JOIN LATERAL (
           SELECT count(*)::int AS total,
                  count(*) FILTER (WHERE index_status = 'done')::int AS indexed,
                  count(*) FILTER (WHERE 'failed' IN (copy_status, clean_status, index_status))::int AS failed
             FROM freshet.chunks WHERE run_id = r.id) c ON true
        WHERE r.prefix = $1 AND ($2::text IS NULL OR r.media = $2) AND ($3::text IS NULL OR r.status = $3)
        ORDER BY r.created_at DESC
        LIMIT $4`,
      [this.prefix, opts.media ?? null, opts.status ?? null, opts.limit],
    );
    return rows.map(({ total, indexed, failed, ...run }) => ({
      ...run,
      active: isActive(run.status),
      chunks: { total: total ?? 0, indexed: indexed ?? 0, failed: failed ?? 0 },
    }));
  }

  /** Everything about one run for its page (a {@link NotFoundError} if unknown). */
  async details(id: string): Promise<RunDetails> {
    const run = await this.run(id);
    const active = isActive(run.status);
    const [stages, chunks, pace, clean, timeline, attempts, logs, audit, now] = await Promise.all([
      this.stages(id, active),
      this.chunks(id),
      this.pace(id, active),
      this.cleanCounts(id),
      this.timeline(id),
      this.db.query<AttemptView>(
        `SELECT id, job_id, step, chunk, attempt, worker, status, started_at, finished_at,
                coalesce(ms, CASE WHEN finished_at IS NULL
                  THEN (extract(epoch FROM clock_timestamp() - started_at) * 1000)::int END) AS ms,
                rows, error
           FROM freshet.attempts WHERE run_id = $1 ORDER BY id DESC LIMIT 100`,
        [id],
      ),
      this.db.query<RunDetails['logs'][number]>(
        'SELECT id, job_id, level, msg, fields, at FROM freshet.logs WHERE run_id = $1 ORDER BY id DESC LIMIT 200',
        [id],
      ),
      this.db.query<RunDetails['audit'][number]>(
        'SELECT id, actor, action, detail, at FROM freshet.audit WHERE run_id = $1 ORDER BY id DESC LIMIT 200',
        [id],
      ),
      this.db.query<{ now: Date }>('SELECT clock_timestamp() AS now'),
    ]);
    return {
      run: { ...run, active },
      now: now.rows[0]?.now ?? new Date(),
      stages,
      chunks,
      pace,
      sources: sourceCounts(run.counts),
      rejected: clean.rejected,
      skipped: clean.skipped,
      changed: clean.changed,
      tagsDropped: clean.tagsDropped,
      comparison: comparisonOf(run.counts),
      shrink: shrinkOf(run.counts),
      timeline,
      attempts: attempts.rows,
      logs: logs.rows,
      audit: audit.rows,
    };
  }

  /** Every stage in order; one without a row is pending, or "not run" once the run has ended. */
  private async stages(id: string, active: boolean): Promise<StageView[]> {
    const { rows } = await this.db.query<StageView>(
      `SELECT stage, status, started_at, finished_at, error,
              (extract(epoch FROM coalesce(finished_at, clock_timestamp()) - started_at) * 1000)::bigint AS ms
         FROM freshet.stages WHERE run_id = $1`,
      [id],
    );
    const byName = new Map(rows.map((r) => [r.stage, r]));
    return stageOrder.map(
      (stage) =>
        byName.get(stage) ?? {
          stage,
          status: active ? 'pending' : 'not run',
          started_at: null,
          finished_at: null,
          ms: null,
          error: null,
        },
    );
  }

  private async chunks(id: string): Promise<ChunksView> {
    const [counts, grid] = await Promise.all([
      this.db.query<Omit<ChunksView, 'grid' | 'gridTruncated' | 'running'> & ChunkRunning>(
        `SELECT count(*)::int AS total,
                count(*) FILTER (WHERE copy_status = 'done')::int AS copied,
                count(*) FILTER (WHERE clean_status = 'done')::int AS cleaned,
                count(*) FILTER (WHERE index_status = 'done')::int AS indexed,
                count(*) FILTER (WHERE 'failed' IN (copy_status, clean_status, index_status))::int AS failed,
                count(*) FILTER (WHERE copy_status = 'running')::int AS running_copy,
                count(*) FILTER (WHERE clean_status = 'running')::int AS running_clean,
                count(*) FILTER (WHERE index_status = 'running')::int AS running_index,
                coalesce(sum(rows_copied), 0)::bigint AS "rowsCopied",
                coalesce(sum(rows_indexed), 0)::bigint AS "rowsIndexed"
           FROM freshet.chunks WHERE run_id = $1`,
        [id],
      ),
      this.db.query<{ s: string }>(
        `SELECT left(index_status, 1) AS s
           FROM freshet.chunks WHERE run_id = $1 ORDER BY chunk LIMIT $2`,
        [id, gridLimit + 1],
      ),
    ]);
    const c = counts.rows[0];
    const { running_copy, running_clean, running_index, ...rest } = c ?? {
      total: 0,
      copied: 0,
      cleaned: 0,
      indexed: 0,
      failed: 0,
      rowsCopied: 0,
      rowsIndexed: 0,
      running_copy: 0,
      running_clean: 0,
      running_index: 0,
    };
    return {
      ...rest,
      rowsCopied: Number(rest.rowsCopied),
      rowsIndexed: Number(rest.rowsIndexed),
      running: { copy: running_copy, clean: running_clean, index: running_index },
      grid: grid.rows.slice(0, gridLimit).map((r) => r.s),
      gridTruncated: grid.rows.length > gridLimit,
    };
  }

  private async pace(id: string, active: boolean): Promise<Pace> {
    const { rows } = await this.db.query<{
      since_first: number | null;
      phase: number | null;
      window_chunks: number;
      window_rows: number;
      total: number;
      indexed: number;
      rows_indexed: number;
    }>(
      `WITH a AS (
         SELECT min(started_at) AS first_start,
                max(finished_at) FILTER (WHERE step = 'index' AND status = 'done') AS last_index,
                count(*) FILTER (WHERE step = 'index' AND status = 'done'
                  AND finished_at > clock_timestamp() - make_interval(secs => $2))::int AS window_chunks,
                coalesce(sum(rows) FILTER (WHERE step = 'index' AND status = 'done'
                  AND finished_at > clock_timestamp() - make_interval(secs => $2)), 0)::bigint AS window_rows
           FROM freshet.attempts WHERE run_id = $1 AND chunk IS NOT NULL),
       c AS (
         SELECT count(*)::int AS total, count(*) FILTER (WHERE index_status = 'done')::int AS indexed,
                coalesce(sum(rows_indexed), 0)::bigint AS rows_indexed
           FROM freshet.chunks WHERE run_id = $1)
       SELECT extract(epoch FROM clock_timestamp() - a.first_start)::float8 AS since_first,
              extract(epoch FROM a.last_index - a.first_start)::float8 AS phase,
              a.window_chunks, a.window_rows, c.total, c.indexed, c.rows_indexed
         FROM a, c`,
      [id, throughputWindowSeconds],
    );
    const r = rows[0];
    return computePace({
      active,
      sinceFirstChunkSeconds: r?.since_first ?? null,
      chunkPhaseSeconds: r?.phase ?? null,
      totalChunks: r?.total ?? 0,
      indexedChunks: r?.indexed ?? 0,
      rowsIndexed: Number(r?.rows_indexed ?? 0),
      windowChunks: r?.window_chunks ?? 0,
      windowRows: Number(r?.window_rows ?? 0),
    });
  }

  /**
   * Rejected rows per reason (the copy's rows without a key, the clean's rejections and the
   * index's rows whose document Elasticsearch refused), changed rows per rule and dropped tags
   * per reason (the clean step's results), and skipped rows per reason (the copy step's),
   * summed over the chunks.
   */
  private async cleanCounts(id: string): Promise<{
    rejected: ReasonCount[];
    skipped: ReasonCount[];
    changed: ReasonCount[];
    tagsDropped: ReasonCount[];
  }> {
    const { rows } = await this.db.query<{
      kind: 'rejected' | 'skipped' | 'changed' | 'tagsDropped';
      reason: string;
      count: number;
      sample: string[] | null;
    }>(
      `WITH parts AS (
         SELECT k.kind, c.result #> k.path AS r
           FROM freshet.chunks c,
                (VALUES ('rejected', '{pass,rejected}'::text[]), ('changed', '{pass,changed}'),
                        ('tagsDropped', '{pass,tagsDropped}'), ('skipped', '{pass,skipped}')) AS k(kind, path)
          WHERE c.run_id = $1 AND jsonb_typeof(c.result #> k.path) = 'object'),
       entries AS (
         SELECT parts.kind, e.key, e.value FROM parts, jsonb_each(parts.r) AS e)
       SELECT kind, key AS reason,
              sum(CASE WHEN jsonb_typeof(value) = 'number' THEN value::text::numeric
                       ELSE coalesce((value ->> 'count')::numeric, 0) END)::bigint AS count,
              (array_agg(value -> 'sample' ->> 0) FILTER (WHERE value -> 'sample' ->> 0 IS NOT NULL))[1:5] AS sample
         FROM entries GROUP BY kind, key ORDER BY kind, count DESC, key`,
      [id],
    );
    const pick = (kind: string) =>
      rows
        .filter((r) => r.kind === kind)
        .map((r) => ({ reason: r.reason, count: Number(r.count), sample: r.sample ?? [] }));
    return {
      rejected: pick('rejected'),
      skipped: pick('skipped'),
      changed: pick('changed'),
      tagsDropped: pick('tagsDropped'),
    };
  }

  private async timeline(id: string): Promise<RunDetails['timeline']> {
    const { rows } = await this.db.query<{
      step: string;
      chunk: number | null;
      status: string;
      start: number;
      end: number | null;
      origin: Date;
      n: number;
    }>(
      `WITH o AS (
         SELECT min(started_at) AS origin, count(*) FILTER (WHERE chunk IS NOT NULL)::int AS n
           FROM freshet.attempts WHERE run_id = $1),
       recent AS (
         (SELECT step, chunk, status, started_at, finished_at FROM freshet.attempts
           WHERE run_id = $1 AND chunk IS NULL)
         UNION ALL
         (SELECT step, chunk, status, started_at, finished_at FROM freshet.attempts
           WHERE run_id = $1 AND chunk IS NOT NULL ORDER BY id DESC LIMIT $2))
       SELECT step, chunk, status, o.origin, o.n,
              (extract(epoch FROM started_at - o.origin) * 1000)::float8 AS start,
              (extract(epoch FROM finished_at - o.origin) * 1000)::float8 AS "end"
         FROM recent, o ORDER BY started_at`,
      [id, timelineLimit],
    );
    return {
      origin: rows[0]?.origin ?? null,
      bars: rows.map(({ step, chunk, status, start, end }) => ({
        step,
        chunk,
        status,
        start,
        end,
      })),
      truncated: (rows[0]?.n ?? 0) > timelineLimit,
    };
  }
}

interface ChunkRunning {
  running_copy: number;
  running_clean: number;
  running_index: number;
}

/** Per-source counts from the run's `counts` (before from preflight, after from the report). */
export function sourceCounts(counts: Record<string, unknown> | null): SourceCount[] {
  const c = (counts ?? {}) as {
    before?: Record<string, number>;
    after?: Record<string, number>;
  };
  const before = c.before ?? {};
  const after = c.after;
  const names = new Set([...Object.keys(before), ...Object.keys(after ?? {})]);
  return [...names]
    .map((source) => {
      const b = before[source] ?? (after ? 0 : null);
      const a = after ? (after[source] ?? 0) : null;
      return { source, before: b, after: a, change: a !== null && b !== null ? a - b : null };
    })
    .sort(
      (x, y) =>
        (y.after ?? y.before ?? 0) - (x.after ?? x.before ?? 0) || (x.source < y.source ? -1 : 1),
    );
}
