import { startRefresh } from '../../apps/producer/src/refresh.js';
import { CpuMeter, loadAverage, perSecond, RssSampler, type CpuSeconds } from './measure.js';
import { spawnWorker, type WorkerProcess } from './workers.js';
import type { World } from './world.js';

/** Throughput of one chunk step (copy, clean or index) over a run. */
export interface StepFigures {
  readonly attempts: number;
  readonly failedAttempts: number;
  /** Rows the step's successful attempts reported (copy: written, clean: kept, index: indexed). */
  readonly rows: number;
  /** From the first attempt's start to the last attempt's end (the stages overlap). */
  readonly spanMs: number;
  /** rows / spanMs: the stage's throughput as the brief defines it. */
  readonly rowsPerSec: number;
  /** Sum of the attempts' durations. */
  readonly busyMs: number;
  /** rows / busyMs: the rate of one job of this step. */
  readonly perJobRowsPerSec: number;
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
  /** From the run's creation (startRefresh) to the end of its report stage, server clock. */
  readonly endToEndMs: number;
  /** From the first chunk attempt's start to the last one's end. */
  readonly chunkSpanMs: number;
  readonly copy: StepFigures;
  readonly clean: StepFigures;
  readonly index: StepFigures;
  /** Durations of the stage jobs (sum over their attempts), in ms. */
  readonly stageMs: Record<string, number>;
  /** Peak RSS (VmHWM) of each worker process, MiB. */
  readonly peakRssMiB: readonly number[];
  /** The largest worker RSS at 0, 25, 50, 75 and 100% of the run, MiB. */
  readonly rssQuartilesMiB: readonly number[];
  readonly loadBefore: readonly number[];
  /** CPU seconds by component from the refresh's start to its end. */
  readonly cpu: CpuSeconds;
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

interface StepRow {
  step: string;
  is_chunk: boolean;
  attempts: number;
  failed: number;
  rows: number | null;
  span_ms: number | null;
  busy_ms: number | null;
  first_ms: number | null;
  last_ms: number | null;
}

async function stepRows(world: World, runId: string): Promise<StepRow[]> {
  const { rows } = await world.dbs.api.query<StepRow>(
    `WITH a AS (
       SELECT *, ntile(4) OVER (PARTITION BY step, chunk IS NULL ORDER BY started_at) AS q
         FROM freshet.attempts WHERE run_id = $1)
     SELECT step, chunk IS NOT NULL AS is_chunk, count(*)::int AS attempts,
            count(*) FILTER (WHERE status = 'failed')::int AS failed,
            sum(rows) FILTER (WHERE status = 'done')::bigint AS rows,
            (extract(epoch FROM max(finished_at) - min(started_at)) * 1000)::float8 AS span_ms,
            sum(ms)::bigint AS busy_ms,
            avg(ms) FILTER (WHERE q = 1)::float8 AS first_ms,
            avg(ms) FILTER (WHERE q = 4)::float8 AS last_ms
       FROM a GROUP BY 1, 2`,
    [runId],
  );
  return rows;
}

function stepFigures(rows: StepRow[], step: string): StepFigures {
  const r = rows.find((x) => x.is_chunk && x.step === step);
  const n = Number(r?.rows ?? 0);
  const spanMs = Number(r?.span_ms ?? 0);
  const busyMs = Number(r?.busy_ms ?? 0);
  return {
    attempts: r?.attempts ?? 0,
    failedAttempts: r?.failed ?? 0,
    rows: n,
    spanMs,
    rowsPerSec: perSecond(n, spanMs),
    busyMs,
    perJobRowsPerSec: perSecond(n, busyMs),
    firstQuarterMs: Number(r?.first_ms ?? 0),
    lastQuarterMs: Number(r?.last_ms ?? 0),
  };
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
 * startRefresh (the flow the CLI enqueues), waited for until it succeeds; then the per-step
 * figures from freshet.attempts and each worker's peak RSS.
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
  const rows = await stepRows(world, runId);
  const stageMs: Record<string, number> = {};
  for (const r of rows.filter((x) => !x.is_chunk)) stageMs[r.step] = Number(r.busy_ms ?? 0);
  const { rows: span } = await world.dbs.api.query<{ e2e: number; chunks: number }>(
    `SELECT (extract(epoch FROM r.finished_at - r.created_at) * 1000)::float8 AS e2e,
            (SELECT (extract(epoch FROM max(finished_at) - min(started_at)) * 1000)::float8
               FROM freshet.attempts WHERE run_id = r.id AND chunk IS NOT NULL) AS chunks
       FROM freshet.runs r WHERE r.id = $1`,
    [runId],
  );
  return {
    workers: opts.workers,
    runId,
    status: run.status,
    chunks: run.chunk_count ?? 0,
    chunkSizeRows: opts.chunkSizeRows,
    endToEndMs: Number(span[0]?.e2e ?? 0),
    chunkSpanMs: Number(span[0]?.chunks ?? 0),
    copy: stepFigures(rows, 'copy'),
    clean: stepFigures(rows, 'clean'),
    index: stepFigures(rows, 'index'),
    stageMs,
    peakRssMiB: peaks,
    rssQuartilesMiB: quartiles,
    loadBefore,
    cpu,
  };
}
