import type { CpuSeconds } from './measure.js';
import type { CopyRun } from './copy-ceiling.js';
import type { EsCeilingRun } from './es-ceiling.js';
import { per100k, type FreshetRun } from './freshet-run.js';
import type { OrchestrationRun } from './orchestration.js';
import type { PlanScale } from './plan-scale.js';
import type { StatementProfile } from './statements.js';

export type WithCpu<T> = T & { cpu: CpuSeconds };

/** Bulk bodies of one ceiling shape, as built (not timed). */
export interface BodiesSummary {
  readonly count: number;
  readonly bytes: number;
  readonly rows: number;
  readonly ops: number;
}

/** One Elasticsearch ceiling shape: the best try at each concurrency, and the best of those. */
export interface EsCeilingShape {
  readonly runs: WithCpu<EsCeilingRun>[];
  readonly best: WithCpu<EsCeilingRun>;
}

/** One refresh of the scale part: a table of `rows` upstream rows, one worker. */
export interface ScaleRun {
  readonly rows: number;
  readonly seedMs: number;
  readonly run: FreshetRun;
}

/** Everything one benchmark run measured (the JSON written with --json). */
export interface BenchResult {
  readonly version: 2;
  readonly startedAt: string;
  finishedAt?: string;
  readonly host: { cpus: number; loadStart: number[]; loadEnd?: number[] };
  readonly options: Record<string, unknown>;
  /** Load averages (1, 5, 15 min) seen at the start of each phase. */
  readonly phaseLoad: Record<string, number[]>;
  /** Seconds from the benchmark's start to the start of each phase. */
  readonly phaseStartS: Record<string, number>;
  seed?: { rows: number; removed: number; deleted: number; ms: number };
  copyCeiling?: { runs: WithCpu<CopyRun>[]; best: WithCpu<CopyRun> };
  esCeiling?: {
    bodies: {
      main: BodiesSummary;
      twoIndex: BodiesSummary;
      /** Documents the filtered alias served (those also written to the filtered index). */
      filtered: number;
      buildMs: number;
    };
    /** The reference: every document once, into one index. */
    main: EsCeilingShape;
    /** For comparison: the main index plus a second, filtered one. */
    twoIndex: EsCeilingShape;
  };
  freshet?: FreshetRun[];
  /** --scale: the same refresh with one worker at two (or more) table sizes. */
  scale?: { chunkSizeRows: number; runs: ScaleRun[] };
  orchestration?: {
    floor: WithCpu<OrchestrationRun>;
    freshet: OrchestrationRun;
    freshetRun: FreshetRun;
    statements?: StatementProfile;
  };
  plan?: PlanScale;
  memory?: { tableRows: number[]; runs: FreshetRun[] };
  /** Figures derived from the others; null when a part they need did not run. */
  ratios: Record<string, number | null>;
  goals: Goal[];
}

export interface Goal {
  readonly name: string;
  /** `>=` or `<=` the target. */
  readonly op: '>=' | '<=';
  readonly target: number;
  /** A further target, beyond the goal. */
  readonly stretch?: number;
  readonly value: number | null;
  readonly unit: string;
  readonly met: boolean | null;
  readonly stretchMet?: boolean | null;
  /** How far from the target, as a signed fraction of it (positive = better than the target). */
  readonly margin: number | null;
  readonly note?: string;
}

function goal(
  name: string,
  op: '>=' | '<=',
  target: number,
  value: number | null | undefined,
  unit: string,
  note?: string,
  stretch?: number,
): Goal {
  const s = stretch === undefined ? {} : { stretch };
  if (value === null || value === undefined || !Number.isFinite(value)) {
    return {
      name,
      op,
      target,
      ...s,
      value: null,
      unit,
      met: null,
      ...(stretch === undefined ? {} : { stretchMet: null }),
      margin: null,
      note: note ?? 'not measured',
    };
  }
  const meets = (t: number) => (op === '>=' ? value >= t : value <= t);
  const margin = op === '>=' ? value / target - 1 : target / value - 1;
  return {
    name,
    op,
    target,
    ...s,
    value,
    unit,
    met: meets(target),
    ...(stretch === undefined ? {} : { stretchMet: meets(stretch) }),
    margin,
    ...(note ? { note } : {}),
  };
}

const ratio = (a: number | undefined, b: number | undefined): number | null =>
  a !== undefined && b !== undefined && Number.isFinite(a) && Number.isFinite(b) && b > 0
    ? a / b
    : null;

const mib = 1024 * 1024;

/** PostgreSQL + Elasticsearch CPU seconds: the shared services every refresh loads. */
export function sharedCpu(cpu: CpuSeconds | undefined): number | undefined {
  return cpu ? cpu.postgres + cpu.elasticsearch : undefined;
}

/** `n` per `rows`, or undefined. */
function perRow(n: number | undefined, rows: number | undefined): number | undefined {
  return n !== undefined && rows !== undefined && rows > 0 ? n / rows : undefined;
}

/** 200000 -> '200k', 2000000 -> '2M', 1500 -> '1500'. */
export function sizeLabel(n: number): string {
  if (n >= 1e6 && n % 1e5 === 0) return `${n / 1e6}M`;
  if (n >= 1e3 && n % 100 === 0) return `${n / 1e3}k`;
  return String(n);
}

/** The name of the scale ratio for these sizes: perRowTime2MVs200k by default. */
export function scaleRatioName(runs: readonly ScaleRun[]): string | undefined {
  const sorted = [...runs].sort((a, b) => a.rows - b.rows);
  const small = sorted[0];
  const large = sorted[sorted.length - 1];
  if (!small || !large || small === large) return undefined;
  return `perRowTime${sizeLabel(large.rows)}Vs${sizeLabel(small.rows)}`;
}

/** Fills in `ratios` and `goals` from the raw figures. */
export function evaluate(r: BenchResult): void {
  const runs = r.freshet ?? [];
  const one = runs.find((x) => x.workers === 1);
  const quickest = runs.reduce<FreshetRun | undefined>(
    (a, b) => (a === undefined || b.usPerDocument < a.usPerDocument ? b : a),
    undefined,
  );
  const esMain = r.esCeiling?.main.best;
  const esTwo = r.esCeiling?.twoIndex.best;
  const copy = r.copyCeiling?.best;
  // Time per row, so a ceiling and a run compare on their own row counts (the same rows).
  const esMainPerRow = perRow(esMain?.ms, esMain?.rows);
  const esTwoPerRow = perRow(esTwo?.ms, esTwo?.rows);
  const e2ePerRow = (run: FreshetRun | undefined) => perRow(run?.endToEndMs, run?.documents);
  const freshetShared = perRow(sharedCpu(one?.cpu), one?.documents);
  const copyShared = perRow(sharedCpu(copy?.cpu), copy?.rows);
  const ceilingShared = (es: WithCpu<EsCeilingRun> | undefined) => {
    const esShared = perRow(sharedCpu(es?.cpu), es?.rows);
    return copyShared !== undefined && esShared !== undefined ? copyShared + esShared : undefined;
  };
  const orch = r.orchestration;
  const mem = r.memory?.runs;
  const scaleRuns = [...(r.scale?.runs ?? [])].sort((a, b) => a.rows - b.rows);
  const scaleSmall = scaleRuns[0];
  const scaleLarge = scaleRuns[scaleRuns.length - 1];
  const scaleName = scaleRatioName(scaleRuns);
  const scaleOf = (f: (run: FreshetRun) => number | undefined) =>
    ratio(
      scaleLarge ? f(scaleLarge.run) : undefined,
      scaleSmall && scaleSmall !== scaleLarge ? f(scaleSmall.run) : undefined,
    );

  Object.assign(r.ratios, {
    // The goals: higher is better for the first, lower for the other two.
    endToEndVsEsCeiling: ratio(esMainPerRow, e2ePerRow(one)),
    sharedCpuVsCeilingCpu: ratio(freshetShared, ceilingShared(esMain)),
    ...(scaleName ? { [scaleName]: scaleOf((x) => x.usPerDocument) } : {}),
    // For comparison.
    endToEndVsTwoIndexEsCeiling: ratio(esTwoPerRow, e2ePerRow(one)),
    sharedCpuVsTwoIndexCeilingCpu: ratio(freshetShared, ceilingShared(esTwo)),
    twoIndexVsMainEsCeilingTime: ratio(esTwoPerRow, esMainPerRow),
    bestEndToEndVsEsCeiling: ratio(esMainPerRow, e2ePerRow(quickest)),
    ...Object.fromEntries(
      runs
        .filter((x) => x.workers !== 1)
        .map((x) => [`speedup${x.workers}WorkersVs1`, ratio(one?.endToEndMs, x.endToEndMs)]),
    ),
    // The same over the chunk jobs alone, without the stages whose cost does not grow with rows.
    ...(scaleName
      ? { [`${scaleName}ChunkJobs`]: scaleOf((x) => perRow(x.chunkSpanMs, x.documents)) }
      : {}),
    orchestrationFreshetVsFloor: ratio(orch?.freshet.msPerChunk, orch?.floor.msPerChunk),
    memory1MVs100k: ratio(mem?.[1]?.maxPeakRssMiB, mem?.[0]?.maxPeakRssMiB),
  });

  const s = (ms: number | undefined) => (ms === undefined ? '?' : `${(ms / 1000).toFixed(1)} s`);
  r.goals.length = 0;
  r.goals.push(
    goal(
      'end-to-end vs ES main-documents ceiling (1 worker)',
      '>=',
      0.5,
      r.ratios.endToEndVsEsCeiling,
      'x',
      one && esMain
        ? `ceiling ${s(esMain.ms)} for ${int(esMain.rows)} documents (${esMain.concurrency} in flight) / Freshet ${s(one.endToEndMs)} for ${int(one.documents)}; against the two-index ceiling ${x2(r.ratios.endToEndVsTwoIndexEsCeiling)} x; best worker count ${x2(r.ratios.bestEndToEndVsEsCeiling)} x (${quickest?.workers ?? '?'} worker(s))`
        : undefined,
      0.67,
    ),
    goal(
      'PostgreSQL + Elasticsearch CPU per row vs the ceilings (1 worker)',
      '<=',
      1.5,
      r.ratios.sharedCpuVsCeilingCpu,
      'x',
      freshetShared !== undefined && ceilingShared(esMain) !== undefined
        ? `Freshet ${cpu100k(freshetShared)} CPU-s per 100k rows / COPY pipe ${cpu100k(copyShared)} + ES main ${cpu100k(perRow(sharedCpu(esMain?.cpu), esMain?.rows))}; against copy + two-index ${x2(r.ratios.sharedCpuVsTwoIndexCeilingCpu)} x`
        : undefined,
      1.2,
    ),
    goal(
      scaleSmall && scaleLarge && scaleSmall !== scaleLarge
        ? `time per row, ${sizeLabel(scaleLarge.rows)} vs ${sizeLabel(scaleSmall.rows)} rows (1 worker)`
        : 'time per row, 2M vs 200k rows (1 worker)',
      '<=',
      1.1,
      scaleName ? r.ratios[scaleName] : null,
      'x',
      scaleSmall && scaleLarge && scaleSmall !== scaleLarge
        ? `${scaleSmall.run.usPerDocument.toFixed(0)} vs ${scaleLarge.run.usPerDocument.toFixed(0)} us per document end to end, chunks of ${int(r.scale?.chunkSizeRows ?? 0)}; over the chunk jobs alone ${x2(r.ratios[`${scaleName}ChunkJobs`])} x`
        : 'run with --scale',
    ),
    goal(
      'orchestration <= 1 ms per chunk',
      '<=',
      1,
      orch?.freshet.msPerChunk,
      'ms',
      orch
        ? `BullMQ floor for the same flow shape ${orch.floor.msPerChunk.toFixed(2)} ms${orch.statements ? `; ${orch.statements.statementsPerChunk.toFixed(0)} PostgreSQL statements per empty chunk` : ''}`
        : undefined,
    ),
    goal(
      'worker peak RSS at 1M rows <= 1.1 x at 100k',
      '<=',
      1.1,
      r.ratios.memory1MVs100k,
      'x',
      mem
        ? `${mem[0]?.maxPeakRssMiB.toFixed(0)} MiB vs ${mem[1]?.maxPeakRssMiB.toFixed(0)} MiB`
        : 'run with --memory',
    ),
    goal('712M-row plan enqueues < 10 s', '<=', 10, r.plan ? r.plan.enqueueMs / 1000 : null, 's'),
    goal(
      '712M-row plan < 64 MiB of Redis',
      '<=',
      64,
      r.plan ? Math.max(r.plan.usedMemoryDeltaBytes, r.plan.keyBytes) / mib : null,
      'MiB',
    ),
  );
}

const int = (n: number) => Math.round(n).toLocaleString('en-US');
const sec = (ms: number) => `${(ms / 1000).toFixed(1)} s`;
const x2 = (n: number | null | undefined) => (n === null || n === undefined ? 'n/a' : n.toFixed(2));
/** CPU seconds per row, shown per 100k rows. */
const cpu100k = (perRowSeconds: number | undefined) =>
  perRowSeconds === undefined ? '?' : (perRowSeconds * 100_000).toFixed(2);

function table(rows: string[][]): string {
  const widths = rows[0]?.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length))) ?? [];
  return rows
    .map((r) =>
      r
        .map((cell, i) => (i === 0 ? cell.padEnd(widths[i] ?? 0) : cell.padStart(widths[i] ?? 0)))
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}

/** The stage names of `runs` in the order they first started. */
function stageNames(runs: readonly FreshetRun[]): string[] {
  const names: string[] = [];
  for (const run of runs)
    for (const s of run.stages) if (!names.includes(s.stage)) names.push(s.stage);
  return names;
}

/**
 * The tables of a set of Freshet runs; `ceilingMsPerRow` (the ES main-documents ceiling's) adds
 * each run's endToEndVsEsCeiling.
 */
function freshetTables(
  out: string[],
  title: string,
  runs: readonly [string, FreshetRun][],
  ceilingMsPerRow?: number,
): void {
  if (runs.length === 0) return;
  const vs = ceilingMsPerRow === undefined ? [] : ['vs ES main ceiling'];
  out.push(
    table([
      [title, 'documents', 'end-to-end', 'us/doc', 'docs/s', ...vs, 'chunks', 'peak RSS/worker'],
      ...runs.map(([label, f]) => [
        label,
        int(f.documents),
        sec(f.endToEndMs),
        f.usPerDocument.toFixed(0),
        int(f.endToEndMs > 0 ? (f.documents * 1000) / f.endToEndMs : 0),
        ...(ceilingMsPerRow === undefined
          ? []
          : [`${x2(ratio(ceilingMsPerRow, perRow(f.endToEndMs, f.documents)))} x`]),
        int(f.chunks),
        `${f.maxPeakRssMiB.toFixed(0)} MiB`,
      ]),
    ]),
    '',
  );
  const names = stageNames(runs.map(([, f]) => f));
  out.push(
    table([
      ['stage wall time (freshet.stages)', ...names, 'between stages'],
      ...runs.map(([label, f]) => [
        label,
        ...names.map((n) => {
          const st = f.stages.find((x) => x.stage === n);
          return st ? sec(st.ms) : '-';
        }),
        sec(f.betweenStagesMs),
      ]),
    ]),
    '(a stage runs from its start to its end as the run store records them; the index stage spans every chunk job; between stages = the rest of the end-to-end time)',
    '',
  );
  const jobRows: string[][] = [
    [
      'chunk jobs (freshet.attempts)',
      'job',
      'attempts',
      'failed',
      'rows',
      'span',
      'rows/s',
      'busy',
      'rows/s per job',
      'mean ms first -> last quarter',
      'max ms',
    ],
  ];
  for (const [label, f] of runs) {
    for (const j of f.chunkJobs) {
      jobRows.push([
        label,
        j.job,
        int(j.attempts),
        int(j.failedAttempts),
        int(j.rows),
        sec(j.spanMs),
        int(j.rowsPerSec),
        sec(j.busyMs),
        int(j.perJobRowsPerSec),
        `${int(j.firstQuarterMs)} -> ${int(j.lastQuarterMs)}`,
        int(j.maxMs),
      ]);
    }
  }
  out.push(
    table(jobRows),
    '(rows/s = rows / span of the attempts of that job; per job = rows / the sum of their durations)',
  );
  for (const [label, f] of runs) {
    const totals = Object.entries(f.chunkTotals)
      .map(([k, v]) => `${k}=${k.endsWith('ms') ? sec(v) : int(v)}`)
      .join(', ');
    if (totals) out.push(`chunk results summed (freshet.chunks), ${label}: ${totals}`);
  }
  out.push('');
}

const cpuHeader = ['postgres', 'elastic', 'workers/node', 'redis'];
function cpuCells(c: CpuSeconds | undefined, digits: number): string[] {
  const f = (n: number | undefined) =>
    n === undefined ? '' : Number.isFinite(n) ? n.toFixed(digits) : '?';
  return [f(c?.postgres), f(c?.elasticsearch), f(c ? c.workers + c.bench : undefined), f(c?.redis)];
}

/** The human-readable report. */
export function formatReport(r: BenchResult): string {
  const out: string[] = [];
  const o = r.options;
  const what = r.seed
    ? `${int(r.seed.rows)} synthetic ${String(o.media)} rows (seed ${String(o.seed)}), chunks of ${int(Number(o.chunkSizeRows))}`
    : `parts ${(o.only as string[]).join(', ')}`;
  out.push(
    `Freshet benchmark: ${what}; ${r.host.cpus} CPUs; load avg ${r.host.loadStart.join(' ')} at start, ${(r.host.loadEnd ?? []).join(' ')} at end`,
  );
  if (r.seed) {
    out.push(
      `seeded in ${sec(r.seed.ms)}: ${int(r.seed.removed)} removed, ${int(r.seed.deleted)} deleted`,
    );
  }
  out.push('');

  const ref: string[][] = [['ceilings, on the same rows', 'rows', 'time', 'rows/s', 'note']];
  for (const c of r.copyCeiling?.runs ?? []) {
    ref.push([
      `copy: binary COPY pipe, ${c.streams} stream(s)`,
      int(c.rows),
      sec(c.ms),
      int(c.rowsPerSec),
      c === r.copyCeiling?.best ? 'best' : '',
    ]);
  }
  const es = r.esCeiling;
  for (const [label, shape] of [
    ['ES main documents', es?.main],
    ['ES main + filtered', es?.twoIndex],
  ] as const) {
    for (const e of shape?.runs ?? []) {
      ref.push([
        `${label}, ${e.concurrency} in flight`,
        int(e.rows),
        sec(e.ms),
        int(e.rowsPerSec),
        `${int(e.opsPerSec)} docs/s, ${e.mbPerSec.toFixed(1)} MB/s${e === shape?.best ? ', best' : ''}${label === 'ES main documents' && e === shape?.best ? ' (the reference)' : ''}`,
      ]);
    }
  }
  if (ref.length > 1) out.push(table(ref), '');
  if (es) {
    const b = es.bodies;
    const one = (x: BodiesSummary) =>
      `${x.count} x ~${(x.bytes / Math.max(1, x.count) / 1e6).toFixed(1)} MB, ${int(x.ops)} ops`;
    out.push(
      `(ES bodies: the documents of Freshet's last refresh read back from its index, ${int(b.main.rows)} of them, ${int(b.filtered)} also in the filtered alias; main ${one(b.main)}; main + filtered ${one(b.twoIndex)}; built in ${sec(b.buildMs)}, not timed)`,
      '',
    );
  }

  freshetTables(
    out,
    'freshet refresh',
    (r.freshet ?? []).map((f) => [`${f.workers} worker(s)`, f]),
    es ? perRow(es.main.best.ms, es.main.best.rows) : undefined,
  );
  if (r.scale) {
    freshetTables(
      out,
      `scale: 1 worker, chunks of ${int(r.scale.chunkSizeRows)}`,
      r.scale.runs.map((x) => [`${int(x.rows)} rows`, x.run]),
    );
  }

  if (r.orchestration) {
    const { floor, freshet } = r.orchestration;
    out.push(
      table([
        ['orchestration, no-op chunks', 'chunks', 'jobs', 'span', 'chunks/s', 'ms/chunk'],
        ...[floor, freshet].map((x) => [
          x.label,
          int(x.chunks),
          int(x.jobs),
          sec(x.chunkSpanMs),
          int(x.chunksPerSec),
          x.msPerChunk.toFixed(2),
        ]),
      ]),
      `(Freshet / floor: ${x2(r.ratios.orchestrationFreshetVsFloor)} x)`,
      '',
    );
    const st = r.orchestration.statements;
    if (st) {
      out.push(
        `PostgreSQL round trips per empty chunk (in-process worker, ${int(st.chunks)} chunks): ${st.statementsPerChunk.toFixed(1)} statements, ${st.msPerChunk.toFixed(1)} ms of waiting on them (summed over concurrent jobs); most frequent:`,
        ...st.top
          .slice(0, 12)
          .map(
            (t) =>
              `  ${t.perChunk.toFixed(2).padStart(5)} x ${t.msPerChunk.toFixed(2).padStart(5)} ms  ${t.sql}`,
          ),
        '',
      );
    }
  }
  if (r.plan) {
    const p = r.plan;
    out.push(
      `plan at scale: ${int(p.rows)} rows / ${int(p.chunkSizeRows)} = ${int(p.chunks)} chunks (${int(p.jobs)} jobs), enqueued in batches of ${p.batchSize} in ${sec(p.enqueueMs)}; Redis: ${(p.keyBytes / mib).toFixed(1)} MiB in ${int(p.keys)} keys (${int(p.bytesPerChunk)} B/chunk), used_memory delta ${(p.usedMemoryDeltaBytes / mib).toFixed(1)} MiB`,
      '',
    );
  }
  if (r.memory) {
    const mem = r.memory;
    out.push(
      table([
        [
          'memory: 1 worker, default chunks',
          'chunks',
          'end-to-end',
          'peak RSS',
          'RSS at 0/25/50/75/100%',
        ],
        ...mem.runs.map((m, i) => [
          `${int(mem.tableRows[i] ?? 0)}-row table`,
          int(m.chunks),
          sec(m.endToEndMs),
          `${m.maxPeakRssMiB.toFixed(0)} MiB`,
          m.rssQuartilesMiB.map((x) => x.toFixed(0)).join(' / '),
        ]),
      ]),
      '',
    );
  }

  // CPU: seconds, then per 100k rows (the ceilings' rows, Freshet's documents).
  const cpuRows: { label: string; ms: number; rows: number; cpu: CpuSeconds }[] = [];
  const cc = r.copyCeiling?.best;
  if (cc) cpuRows.push({ label: `copy ceiling (${cc.streams} stream(s))`, ...cc });
  if (es) {
    cpuRows.push({
      label: `ES main ceiling (${es.main.best.concurrency} in flight)`,
      ...es.main.best,
    });
    cpuRows.push({
      label: `ES main + filtered ceiling (${es.twoIndex.best.concurrency} in flight)`,
      ...es.twoIndex.best,
    });
  }
  for (const f of r.freshet ?? []) {
    cpuRows.push({
      label: `freshet, ${f.workers} worker(s)`,
      ms: f.endToEndMs,
      rows: f.documents,
      cpu: f.cpu,
    });
  }
  for (const x of r.scale?.runs ?? []) {
    cpuRows.push({
      label: `freshet scale, ${int(x.rows)} rows`,
      ms: x.run.endToEndMs,
      rows: x.run.documents,
      cpu: x.run.cpu,
    });
  }
  if (r.orchestration) {
    const run = r.orchestration.freshetRun;
    cpuRows.push({
      label: 'BullMQ floor',
      ms: r.orchestration.floor.totalMs,
      rows: 0,
      cpu: r.orchestration.floor.cpu,
    });
    cpuRows.push({ label: 'freshet empty chunks', ms: run.endToEndMs, rows: 0, cpu: run.cpu });
  }
  if (cpuRows.length > 0) {
    const f1 = (n: number) => (Number.isFinite(n) ? n.toFixed(1) : '?');
    out.push(
      table([
        ['CPU seconds (2 CPUs = 2 s per s)', 'wall', ...cpuHeader, 'other', 'total'],
        ...cpuRows.map((x) => [
          x.label,
          f1(x.ms / 1000),
          ...cpuCells(x.cpu, 1),
          f1(x.cpu.other),
          f1(x.cpu.total),
        ]),
      ]),
      '',
    );
    const per = cpuRows.filter((x) => x.rows > 0);
    const shared = (c: CpuSeconds) => (c.postgres + c.elasticsearch).toFixed(2);
    const rows: string[][] = [
      ['CPU seconds per 100k rows', 'rows', ...cpuHeader, 'postgres + elastic'],
      ...per.map((x) => {
        const c = per100k(x.cpu, x.rows);
        return [x.label, int(x.rows), ...cpuCells(c, 2), shared(c)];
      }),
    ];
    if (cc && es) {
      const sum = (a: CpuSeconds, b: CpuSeconds): CpuSeconds => ({
        postgres: a.postgres + b.postgres,
        elasticsearch: a.elasticsearch + b.elasticsearch,
        redis: a.redis + b.redis,
        workers: a.workers + b.workers,
        bench: a.bench + b.bench,
        other: a.other + b.other,
        total: a.total + b.total,
      });
      for (const [label, e] of [
        ['ceilings: copy + ES main (the reference)', es.main.best],
        ['ceilings: copy + ES main + filtered', es.twoIndex.best],
      ] as const) {
        const c = sum(per100k(cc.cpu, cc.rows), per100k(e.cpu, e.rows));
        rows.push([label, '', ...cpuCells(c, 2), shared(c)]);
      }
    }
    if (per.length > 0) out.push(table(rows));
    else out.pop();
    out.push(
      "(postgres = backends of the benchmark's own databases; elastic = the Elasticsearch node; workers/node = the worker processes, or the benchmark process for the ceilings; other = everything else on the machine, other users' tests included, left out of every ratio; Freshet's rows = documents in its main index)",
      '',
    );
  }

  const g: string[][] = [['goal', 'measured', 'target', 'stretch', 'status']];
  for (const x of r.goals) {
    const status =
      x.met === null
        ? 'not measured'
        : `${x.met ? 'MET' : 'MISSED'} (${x.margin !== null && x.margin >= 0 ? '+' : ''}${((x.margin ?? 0) * 100).toFixed(0)}%)${x.stretchMet ? ', stretch MET' : ''}`;
    g.push([
      x.name,
      x.value === null ? 'n/a' : `${x.value.toFixed(2)} ${x.unit}`,
      `${x.op} ${x.target} ${x.unit}`,
      x.stretch === undefined ? '' : `${x.op} ${x.stretch} ${x.unit}`,
      status,
    ]);
  }
  out.push(table(g));
  for (const x of r.goals) if (x.note) out.push(`  ${x.name}: ${x.note}`);
  out.push(
    '',
    `ratios: ${Object.entries(r.ratios)
      .map(([k, v]) => `${k}=${x2(v)}`)
      .join(' ')}`,
  );
  return out.join('\n');
}
