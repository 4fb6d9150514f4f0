import type { CpuSeconds } from './measure.js';
import type { CopyRun } from './copy-ceiling.js';
import type { EsCeilingRun } from './es-ceiling.js';
import type { FreshetRun } from './freshet-run.js';
import type { OrchestrationRun } from './orchestration.js';
import type { PlanScale } from './plan-scale.js';
import type { StatementProfile } from './statements.js';

type WithCpu<T> = T & { cpu?: CpuSeconds };

/** Everything one benchmark run measured (the JSON written with --json). */
export interface BenchResult {
  readonly version: 1;
  readonly startedAt: string;
  finishedAt?: string;
  readonly host: { cpus: number; loadStart: number[]; loadEnd?: number[] };
  readonly options: Record<string, unknown>;
  /** Load averages (1, 5, 15 min) seen at the start of each phase. */
  readonly phaseLoad: Record<string, number[]>;
  seed?: { rows: number; removed: number; deleted: number; ms: number };
  copyCeiling?: { runs: WithCpu<CopyRun>[]; best: WithCpu<CopyRun> };
  esCeiling?: {
    bodies: { count: number; bytes: number; rows: number; ops: number; buildMs: number };
    runs: WithCpu<EsCeilingRun>[];
    best: WithCpu<EsCeilingRun>;
  };
  freshet?: FreshetRun[];
  orchestration?: {
    floor: WithCpu<OrchestrationRun>;
    freshet: OrchestrationRun;
    freshetRun: FreshetRun;
    statements?: StatementProfile;
  };
  plan?: PlanScale;
  memory?: { tableRows: number[]; runs: FreshetRun[] };
  ratios: Record<string, number | null>;
  goals: Goal[];
}

export interface Goal {
  readonly name: string;
  /** `>=` or `<=` the target. */
  readonly op: '>=' | '<=';
  readonly target: number;
  readonly value: number | null;
  readonly unit: string;
  readonly met: boolean | null;
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
): Goal {
  if (value === null || value === undefined || !Number.isFinite(value)) {
    return {
      name,
      op,
      target,
      value: null,
      unit,
      met: null,
      margin: null,
      note: note ?? 'not measured',
    };
  }
  const met = op === '>=' ? value >= target : value <= target;
  const margin = op === '>=' ? value / target - 1 : target / value - 1;
  return { name, op, target, value, unit, met, margin, ...(note ? { note } : {}) };
}

const ratio = (a: number | undefined, b: number | undefined): number | null =>
  a !== undefined && b !== undefined && b > 0 ? a / b : null;

function best<T>(items: readonly T[] | undefined, score: (t: T) => number): T | undefined {
  if (!items || items.length === 0) return undefined;
  return items.reduce((a, b) => (score(b) > score(a) ? b : a));
}

const mib = 1024 * 1024;

/** CPU seconds of the services and the Node processes doing the work (not other users'). */
function ownCpu(cpu: CpuSeconds | undefined): number {
  if (!cpu) return 0;
  const sum = cpu.postgres + cpu.elasticsearch + cpu.redis + cpu.workers + cpu.bench;
  return Number.isFinite(sum) ? sum : 0;
}

/** Fills in `ratios` and `goals` from the raw figures. */
export function evaluate(r: BenchResult): void {
  const runs = r.freshet ?? [];
  const bestIndex = best(runs, (x) => x.index.rowsPerSec);
  const bestCopy = best(runs, (x) => x.copy.rowsPerSec);
  const fastest = best(runs, (x) => -x.endToEndMs);
  const copyCeilMs = r.copyCeiling?.best.ms;
  const esCeilMs = r.esCeiling?.best.ms;
  const slowest =
    copyCeilMs !== undefined && esCeilMs !== undefined ? Math.max(copyCeilMs, esCeilMs) : undefined;
  const promoteMs = fastest?.stageMs.promote ?? 0;
  const orch = r.orchestration;
  const mem = r.memory?.runs;
  const memSmall = mem?.[0] ? Math.max(...mem[0].peakRssMiB) : undefined;
  const memLarge = mem?.[1] ? Math.max(...mem[1].peakRssMiB) : undefined;

  Object.assign(r.ratios, {
    indexVsEsCeiling: ratio(bestIndex?.index.rowsPerSec, r.esCeiling?.best.rowsPerSec),
    copyVsCopyCeiling: ratio(bestCopy?.copy.rowsPerSec, r.copyCeiling?.best.rowsPerSec),
    endToEndVsSlowestCeiling: ratio(slowest, fastest?.endToEndMs),
    endToEndLessPromotionVsSlowestCeiling: ratio(
      slowest,
      fastest ? fastest.endToEndMs - promoteMs : undefined,
    ),
    orchestrationFreshetVsFloor: ratio(orch?.freshet.msPerChunk, orch?.floor.msPerChunk),
    memory1MVs100k: ratio(memLarge, memSmall),
    // Insensitive to other load on the machine: the CPU the two ceilings need together over
    // the CPU Freshet's own processes (PostgreSQL, Elasticsearch, workers, Redis) used.
    ceilingCpuVsFreshetCpu: ratio(
      ownCpu(r.copyCeiling?.best.cpu) + ownCpu(r.esCeiling?.best.cpu) || undefined,
      ownCpu(fastest?.cpu) || undefined,
    ),
  });
  const where = (run: FreshetRun | undefined) => (run ? `${run.workers} worker(s)` : undefined);
  r.goals.length = 0;
  r.goals.push(
    goal('index >= 0.9 x ES ceiling', '>=', 0.9, r.ratios.indexVsEsCeiling, 'x', where(bestIndex)),
    goal(
      'copy >= 0.8 x copy ceiling',
      '>=',
      0.8,
      r.ratios.copyVsCopyCeiling,
      'x',
      `${where(bestCopy)}; stages overlap, so a stage's span is the whole run`,
    ),
    goal(
      'end-to-end <= 1.25 x slowest ceiling + promotion',
      '<=',
      1.25,
      slowest && fastest ? (fastest.endToEndMs - promoteMs) / slowest : null,
      'x',
      fastest
        ? `${where(fastest)}: ${(fastest.endToEndMs / 1000).toFixed(1)} s incl. promotion ${(promoteMs / 1000).toFixed(1)} s; slowest ceiling ${((slowest ?? 0) / 1000).toFixed(1)} s`
        : undefined,
    ),
    goal(
      'orchestration <= 1 ms per chunk',
      '<=',
      1,
      orch?.freshet.msPerChunk,
      'ms',
      orch
        ? `BullMQ floor for the same flow shape ${orch.floor.msPerChunk.toFixed(2)} ms; ${orch.statements ? `${orch.statements.statementsPerChunk.toFixed(0)} PostgreSQL statements per empty chunk` : ''}`
        : undefined,
    ),
    goal(
      'worker peak RSS at 1M rows <= 1.1 x at 100k',
      '<=',
      1.1,
      r.ratios.memory1MVs100k,
      'x',
      mem ? `${memSmall?.toFixed(0)} MiB vs ${memLarge?.toFixed(0)} MiB` : 'run with --memory',
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

/** The human-readable report. */
export function formatReport(r: BenchResult): string {
  const out: string[] = [];
  const o = r.options;
  out.push(
    `Freshet benchmark: ${int(Number(o.rows))} synthetic ${String(o.media)} rows (seed ${String(o.seed)}), chunks of ${int(Number(o.chunkSizeRows))}; ${r.host.cpus} CPUs; load avg ${r.host.loadStart.join(' ')} at start, ${(r.host.loadEnd ?? []).join(' ')} at end`,
  );
  if (r.seed) {
    out.push(
      `seeded in ${sec(r.seed.ms)}: ${int(r.seed.removed)} removed, ${int(r.seed.deleted)} deleted`,
    );
  }
  out.push('');
  const ref: string[][] = [['reference', 'rows', 'time', 'rows/s', 'note']];
  for (const c of r.copyCeiling?.runs ?? []) {
    ref.push([
      `copy ceiling: binary COPY pipe, ${c.streams} stream(s)`,
      int(c.rows),
      sec(c.ms),
      int(c.rowsPerSec),
      c === r.copyCeiling?.best ? 'best' : '',
    ]);
  }
  for (const e of r.esCeiling?.runs ?? []) {
    ref.push([
      `ES ceiling: pre-built bulk, ${e.concurrency} in flight`,
      int(e.rows),
      sec(e.ms),
      int(e.rowsPerSec),
      `${int(e.opsPerSec)} docs/s, ${e.mbPerSec.toFixed(1)} MB/s${e === r.esCeiling?.best ? ', best' : ''}`,
    ]);
  }
  if (ref.length > 1) out.push(table(ref), '');
  if (r.esCeiling) {
    const b = r.esCeiling.bodies;
    out.push(
      `(ES bodies: ${b.count} x ~${(b.bytes / b.count / 1e6).toFixed(1)} MB, ${int(b.ops)} ops for ${int(b.rows)} rows, built in ${sec(b.buildMs)}, not timed)`,
      '',
    );
  }
  if (r.freshet && r.freshet.length > 0) {
    const fr: string[][] = [
      [
        'freshet refresh',
        'end-to-end',
        'copy rows/s',
        'clean rows/s',
        'index rows/s',
        'per-job index',
        'promote',
        'peak RSS/worker',
      ],
    ];
    for (const f of r.freshet) {
      fr.push([
        `${f.workers} worker(s), ${f.chunks} chunks`,
        sec(f.endToEndMs),
        int(f.copy.rowsPerSec),
        int(f.clean.rowsPerSec),
        int(f.index.rowsPerSec),
        int(f.index.perJobRowsPerSec),
        sec(f.stageMs.promote ?? 0),
        `${Math.max(...f.peakRssMiB).toFixed(0)} MiB`,
      ]);
    }
    out.push(table(fr));
    const q = (f: FreshetRun['copy']) => `${int(f.firstQuarterMs)} -> ${int(f.lastQuarterMs)} ms`;
    out.push(
      table([
        ['mean attempt, first -> last quarter', 'copy', 'clean', 'index'],
        ...r.freshet.map((f) => [`${f.workers} worker(s)`, q(f.copy), q(f.clean), q(f.index)]),
      ]),
    );
    out.push(
      "(stage rows/s = rows / span of that step's attempts; per-job = rows / sum of attempt durations)",
    );
    out.push('');
  }
  if (r.orchestration) {
    const { floor, freshet } = r.orchestration;
    out.push(
      table([
        ['orchestration, no-op chunks', 'chunks', 'span', 'chunks/s', 'ms/chunk'],
        ...[floor, freshet].map((x) => [
          x.label,
          int(x.chunks),
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
          `${Math.max(...m.peakRssMiB).toFixed(0)} MiB`,
          m.rssQuartilesMiB.map((x) => x.toFixed(0)).join(' / '),
        ]),
      ]),
      '',
    );
  }
  const cpuRows: [string, number, CpuSeconds | undefined][] = [];
  const cc = r.copyCeiling?.best;
  if (cc) cpuRows.push([`copy ceiling (${cc.streams} stream(s))`, cc.ms, cc.cpu]);
  const ec = r.esCeiling?.best;
  if (ec) cpuRows.push([`ES ceiling (${ec.concurrency} in flight)`, ec.ms, ec.cpu]);
  for (const f of r.freshet ?? []) {
    const label = `freshet, ${f.workers} worker(s)`;
    cpuRows.push([label, f.endToEndMs, f.cpu]);
  }
  if (r.orchestration) {
    cpuRows.push(['BullMQ floor', r.orchestration.floor.totalMs, r.orchestration.floor.cpu]);
    const run = r.orchestration.freshetRun;
    cpuRows.push(['freshet empty chunks', run.endToEndMs, run.cpu]);
  }
  if (cpuRows.length > 0) {
    const c = (n: number | undefined) =>
      n === undefined ? '' : Number.isFinite(n) ? n.toFixed(1) : '?';
    out.push(
      table([
        [
          'CPU seconds (2 CPUs = 2 s per s)',
          'wall',
          'postgres',
          'elastic',
          'node',
          'redis',
          'other',
          'total',
        ],
        ...cpuRows.map(([label, ms, cpu]) => [
          label,
          c(ms / 1000),
          c(cpu?.postgres),
          c(cpu?.elasticsearch),
          c(cpu ? cpu.workers + cpu.bench : undefined),
          c(cpu?.redis),
          c(cpu?.other),
          c(cpu?.total),
        ]),
      ]),
      "(postgres = backends of the benchmark's own databases; node = the worker processes, or the benchmark process for the references; other = everything else on the machine, other users included)",
      '',
    );
  }
  const g: string[][] = [['goal', 'measured', 'target', 'status']];
  for (const x of r.goals) {
    const status =
      x.met === null
        ? 'not measured'
        : `${x.met ? 'MET' : 'MISSED'} (${x.margin !== null && x.margin >= 0 ? '+' : ''}${((x.margin ?? 0) * 100).toFixed(0)}%)`;
    g.push([
      x.name,
      x.value === null ? 'n/a' : `${x.value.toFixed(2)} ${x.unit}`,
      `${x.op} ${x.target} ${x.unit}`,
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
