import { ident, refreshNames } from '@freshet/core';
import { startRefresh } from '@freshet/control';
import { CpuMeter, loadAverage, perSecond, round, RssSampler, type CpuSeconds } from './measure.js';
import { spawnWorker, type WorkerProcess } from './workers.js';
import type { World } from './world.js';

/**
 * One stage of the run as the run store records it (freshet.stages), whatever stages the
 * pipeline has: its wall time, and the attempts of its stage job (freshet.attempts, no chunk).
 */
export interface StageFigures {
  readonly stage: string;
  readonly status: string;
  /** From the run's creation to the stage's start. */
  readonly startMs: number;
  /** From the stage's start to its end (the index stage spans every chunk job). */
  readonly ms: number;
  readonly attempts: number;
  /** Sum of the durations of its stage job's attempts. */
  readonly busyMs: number;
}

/**
 * The attempts of one kind of chunk job (freshet.attempts grouped by step name: `index` only
 * once a chunk is one job; `copy`, `clean` and `index` in a pipeline of three jobs a chunk).
 */
export interface ChunkJobFigures {
  readonly job: string;
  readonly attempts: number;
  readonly failedAttempts: number;
  /** Rows the successful attempts reported. */
  readonly rows: number;
  /** From the first attempt's start to the last attempt's end (jobs of one chunk overlap). */
  readonly spanMs: number;
  /** rows / spanMs. */
  readonly rowsPerSec: number;
  /** Sum of the attempts' durations. */
  readonly busyMs: number;
  /** rows / busyMs: the rate of one job. */
  readonly perJobRowsPerSec: number;
  readonly meanMs: number;
  readonly maxMs: number;
  /** Mean attempt duration of the first and the last quarter of the attempts (by start time). */
  readonly firstQuarterMs: number;
  readonly lastQuarterMs: number;
}

export interface FreshetRun {
  readonly workers: number;
  readonly runId: string;
  readonly status: string;
  readonly chunks: number;
  readonly chunkSizeRows: number;
  /** Rows in the upstream table (removed and deleted ones included). */
  readonly upstreamRows: number;
  /** Documents the run's main index holds once promoted (via the live alias). */
  readonly documents: number;
  /** Documents searchable through the filtered alias. */
  readonly filteredDocuments: number;
  /** From the run's creation (startRefresh) to its end, server clock. */
  readonly endToEndMs: number;
  /** From the first chunk attempt's start to the last one's end. */
  readonly chunkSpanMs: number;
  /** endToEndMs / documents, microseconds. */
  readonly usPerDocument: number;
  /** Stages in the order they started. */
  readonly stages: readonly StageFigures[];
  /** Time of the run covered by no stage (queueing between stages). */
  readonly betweenStagesMs: number;
  readonly chunkJobs: readonly ChunkJobFigures[];
  /**
   * The numbers of freshet.chunks.result two levels deep (`<job>.<field>`, e.g. `index.rows`),
   * summed over the chunks: whatever the chunk jobs report.
   */
  readonly chunkTotals: Record<string, number>;
  /** Peak RSS (VmHWM) of each worker process, MiB. */
  readonly peakRssMiB: readonly number[];
  /** The largest worker peak, MiB. */
  readonly maxPeakRssMiB: number;
  /** The largest worker RSS at 0, 25, 50, 75 and 100% of the run, MiB. */
  readonly rssQuartilesMiB: readonly number[];
  readonly loadBefore: readonly number[];
  /** CPU seconds by component from the refresh's start to its end. */
  readonly cpu: CpuSeconds;
  /** The same per 100,000 documents. */
  readonly cpuPer100k: CpuSeconds;
}

const terminal = new Set(['succeeded', 'failed', 'blocked', 'cancelled']);

/** Polls the run store until the run ends (a blocked run ends the benchmark with its error). */
async function waitForRun(world: World, runId: string, timeoutMs: number): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const run = await world.store.getRun(runId);
    if (terminal.has(run.status)) {
      if (run.status !== 'succeeded')
        throw new Error(`run ${runId} ${run.status}: ${run.error ?? ''}`);
      return run.status;
    }
    if (Date.now() > deadline)
      throw new Error(`run ${runId} still ${run.status} after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

interface ChunkJobRow {
  step: string;
  attempts: number;
  failed: number;
  rows: string | null;
  span_ms: number | null;
  busy_ms: string | null;
  mean_ms: number | null;
  max_ms: number | null;
  first_ms: number | null;
  last_ms: number | null;
}

async function chunkJobs(world: World, runId: string): Promise<ChunkJobFigures[]> {
  const { rows } = await world.dbs.api.query<ChunkJobRow>(
    `WITH a AS (
       SELECT *, ntile(4) OVER (PARTITION BY step ORDER BY started_at) AS q
         FROM freshet.attempts WHERE run_id = $1 AND chunk IS NOT NULL)
     SELECT step, count(*)::int AS attempts,
            count(*) FILTER (WHERE status <> 'done')::int AS failed,
            sum(rows) FILTER (WHERE status = 'done')::bigint AS rows,
            (extract(epoch FROM max(finished_at) - min(started_at)) * 1000)::float8 AS span_ms,
            sum(ms)::bigint AS busy_ms, avg(ms)::float8 AS mean_ms, max(ms)::float8 AS max_ms,
            avg(ms) FILTER (WHERE q = 1)::float8 AS first_ms,
            avg(ms) FILTER (WHERE q = 4)::float8 AS last_ms
       FROM a GROUP BY step ORDER BY min(started_at), step`,
    [runId],
  );
  return rows.map((r) => {
    const n = Number(r.rows ?? 0);
    const spanMs = Number(r.span_ms ?? 0);
    const busyMs = Number(r.busy_ms ?? 0);
    return {
      job: r.step,
      attempts: r.attempts,
      failedAttempts: r.failed,
      rows: n,
      spanMs,
      rowsPerSec: perSecond(n, spanMs),
      busyMs,
      perJobRowsPerSec: perSecond(n, busyMs),
      meanMs: Number(r.mean_ms ?? 0),
      maxMs: Number(r.max_ms ?? 0),
      firstQuarterMs: Number(r.first_ms ?? 0),
      lastQuarterMs: Number(r.last_ms ?? 0),
    };
  });
}

interface StageRow {
  stage: string;
  status: string;
  start_ms: number | null;
  ms: number | null;
  attempts: number;
  busy_ms: string | null;
}

async function stages(world: World, runId: string): Promise<StageFigures[]> {
  const { rows } = await world.dbs.api.query<StageRow>(
    `SELECT s.stage, s.status,
            (extract(epoch FROM s.started_at - r.created_at) * 1000)::float8 AS start_ms,
            (extract(epoch FROM s.finished_at - s.started_at) * 1000)::float8 AS ms,
            (SELECT count(*) FROM freshet.attempts a
              WHERE a.run_id = s.run_id AND a.chunk IS NULL AND a.step = s.stage)::int AS attempts,
            (SELECT sum(a.ms) FROM freshet.attempts a
              WHERE a.run_id = s.run_id AND a.chunk IS NULL AND a.step = s.stage)::bigint AS busy_ms
       FROM freshet.stages s JOIN freshet.runs r ON r.id = s.run_id
      WHERE s.run_id = $1 ORDER BY s.started_at, s.stage`,
    [runId],
  );
  return rows.map((r) => ({
    stage: r.stage,
    status: r.status,
    startMs: Number(r.start_ms ?? 0),
    ms: Number(r.ms ?? 0),
    attempts: r.attempts,
    busyMs: Number(r.busy_ms ?? 0),
  }));
}

/** Length of the union of the stages' intervals, subtracted from the run's. */
function uncovered(totalMs: number, list: readonly StageFigures[]): number {
  let covered = 0;
  let end = -Infinity;
  for (const s of [...list].sort((a, b) => a.startMs - b.startMs)) {
    const from = Math.max(s.startMs, end);
    const to = s.startMs + s.ms;
    if (to > from) covered += to - from;
    end = Math.max(end, to);
  }
  return Math.max(0, totalMs - covered);
}

/** Sums the numbers two levels deep in the chunks' result documents. */
async function chunkTotals(world: World, runId: string): Promise<Record<string, number>> {
  const { rows } = await world.dbs.api.query<{ key: string; n: number }>(
    `SELECT j.key || '.' || f.key AS key, sum((f.value #>> '{}')::float8)::float8 AS n
       FROM freshet.chunks c,
            jsonb_each(CASE jsonb_typeof(c.result) WHEN 'object' THEN c.result ELSE '{}' END) j,
            jsonb_each(CASE jsonb_typeof(j.value) WHEN 'object' THEN j.value ELSE '{}' END) f
      WHERE c.run_id = $1 AND jsonb_typeof(f.value) = 'number'
      GROUP BY 1 ORDER BY 1`,
    [runId],
  );
  return Object.fromEntries(rows.map((r) => [r.key, Number(r.n)]));
}

async function count(world: World, index: string): Promise<number> {
  const exists = await world.es.indices.exists({ index });
  return exists ? (await world.es.count({ index })).count : 0;
}

/** CPU seconds per 100,000 of `n` items. */
export function per100k(cpu: CpuSeconds, n: number): CpuSeconds {
  const f = n > 0 ? 100_000 / n : 0;
  const out = { ...cpu };
  for (const k of Object.keys(out) as (keyof CpuSeconds)[]) out[k] = round(out[k] * f, 3);
  return out;
}

export interface FreshetRunOptions {
  readonly workers: number;
  readonly chunkSizeRows: number;
  readonly timeoutMs: number;
  /** Extra node flags for the worker processes (e.g. --cpu-prof). */
  readonly nodeArgs?: readonly string[];
  readonly env?: Record<string, string>;
}

/**
 * A real Freshet refresh: `workers` spawned `freshet worker` processes, a run started with
 * startRefresh (the flow the CLI enqueues), waited for until it succeeds; then what the run
 * store recorded of it (stages, chunk job attempts, chunk results: nothing that assumes which
 * jobs a chunk has), the documents its aliases serve, each worker's peak RSS and the CPU used.
 */
export async function freshetRun(world: World, opts: FreshetRunOptions): Promise<FreshetRun> {
  const env = { ...world.env, ...(opts.env ?? {}) };
  const procs: WorkerProcess[] = Array.from({ length: opts.workers }, () =>
    spawnWorker(env, opts.nodeArgs),
  );
  let peaks: number[] = [];
  let runId: string;
  let cpu: CpuSeconds;
  let quartiles: number[];
  const loadBefore = loadAverage();
  try {
    await Promise.all(procs.map((p) => p.ready()));
    const sampler = new RssSampler(() => procs.map((p) => p.pid));
    const meter = new CpuMeter(() => procs.map((p) => p.pid));
    runId = await startRefresh(
      { config: world.config, api: world.dbs.api, media: world.media, queues: world.queues },
      { media: world.def.name, chunkSizeRows: opts.chunkSizeRows, requestedBy: 'bench' },
    );
    try {
      await waitForRun(world, runId, opts.timeoutMs);
    } catch (err) {
      throw new Error(`${(err as Error).message}\n--- worker output:\n${procs[0]?.tail() ?? ''}`, {
        cause: err,
      });
    }
    cpu = meter.stop();
    const sampled = sampler.stop();
    peaks = procs.map((p) => sampled.get(p.pid) ?? 0);
    const t = sampler.timeline;
    quartiles = [0, 0.25, 0.5, 0.75, 1].map(
      (f) => t[Math.min(t.length - 1, Math.round(f * (t.length - 1)))] ?? 0,
    );
  } finally {
    const stopped = await Promise.all(procs.map((p) => p.stop()));
    peaks = stopped.map((s, i) => Math.max(s.peakRssMiB, peaks[i] ?? 0));
  }
  const run = await world.store.getRun(runId);
  const { rows: span } = await world.dbs.api.query<{ e2e: number; chunks: number | null }>(
    `SELECT (extract(epoch FROM r.finished_at - r.created_at) * 1000)::float8 AS e2e,
            (SELECT (extract(epoch FROM max(finished_at) - min(started_at)) * 1000)::float8
               FROM freshet.attempts WHERE run_id = r.id AND chunk IS NOT NULL) AS chunks
       FROM freshet.runs r WHERE r.id = $1`,
    [runId],
  );
  const { rows: upstream } = await world.dbs.catalog.query<{ n: string }>(
    `SELECT count(*)::bigint AS n FROM ${ident(world.def.upstreamTable)}`,
  );
  const names = refreshNames(
    world.def,
    'production',
    runId,
    world.config.ELASTICSEARCH_INDEX_PREFIX,
  );
  const documents = await count(world, names.alias);
  const endToEndMs = Number(span[0]?.e2e ?? 0);
  const stageList = await stages(world, runId);
  return {
    workers: opts.workers,
    runId,
    status: run.status,
    chunks: run.chunk_count ?? 0,
    chunkSizeRows: opts.chunkSizeRows,
    upstreamRows: Number(upstream[0]?.n ?? 0),
    documents,
    filteredDocuments: await count(world, names.filteredAlias),
    endToEndMs,
    chunkSpanMs: Number(span[0]?.chunks ?? 0),
    usPerDocument: documents > 0 ? (endToEndMs * 1000) / documents : 0,
    stages: stageList,
    betweenStagesMs: uncovered(endToEndMs, stageList),
    chunkJobs: await chunkJobs(world, runId),
    chunkTotals: await chunkTotals(world, runId),
    peakRssMiB: peaks,
    maxPeakRssMiB: Math.max(0, ...peaks),
    rssQuartilesMiB: quartiles,
    loadBefore,
    cpu,
    cpuPer100k: per100k(cpu, documents),
  };
}
