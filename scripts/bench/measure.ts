import { readdirSync, readFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import type { EsClient } from '@freshet/core';

/** Milliseconds since an arbitrary origin, sub-millisecond precision. */
export function now(): number {
  return performance.now();
}

/** Runs `fn` and returns its result with its wall time in milliseconds. */
export async function timed<T>(fn: () => Promise<T>): Promise<{ value: T; ms: number }> {
  const started = now();
  const value = await fn();
  return { value, ms: now() - started };
}

/** Items per second for `n` items in `ms` milliseconds (0 when no time passed). */
export function perSecond(n: number, ms: number): number {
  return ms > 0 ? (n * 1000) / ms : 0;
}

/** The 1, 5 and 15 minute load averages, rounded to two decimals. */
export function loadAverage(): [number, number, number] {
  const [a = 0, b = 0, c = 0] = loadavg();
  return [round(a, 2), round(b, 2), round(c, 2)];
}

export function round(value: number, digits = 0): number {
  const f = 10 ** digits;
  return Math.round(value * f) / f;
}

/** VmRSS and VmHWM (peak RSS) of a live process, in MiB; undefined once it has exited. */
export function processMemory(pid: number): { rssMiB: number; peakMiB: number } | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/status`, 'utf8');
  } catch {
    return undefined;
  }
  const kb = (field: string) =>
    Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(text)?.[1] ?? 0);
  return { rssMiB: kb('VmRSS') / 1024, peakMiB: kb('VmHWM') / 1024 };
}

/** Samples the RSS of a set of processes until stopped; keeps the highest seen per pid. */
export class RssSampler {
  private readonly peaks = new Map<number, number>();
  private readonly timer: NodeJS.Timeout;
  /** The largest current RSS among the processes, one sample per interval, MiB. */
  readonly timeline: number[] = [];

  constructor(
    private readonly pids: () => readonly number[],
    intervalMs = 500,
  ) {
    this.timer = setInterval(() => this.sample(), intervalMs);
    this.timer.unref();
  }

  sample(): void {
    let largest = 0;
    for (const pid of this.pids()) {
      const m = processMemory(pid);
      if (!m) continue;
      // VmHWM is the kernel's own high-water mark; VmRSS sampling is the fallback.
      const peak = Math.max(m.peakMiB, m.rssMiB, this.peaks.get(pid) ?? 0);
      this.peaks.set(pid, peak);
      largest = Math.max(largest, m.rssMiB);
    }
    this.timeline.push(round(largest, 1));
  }

  /** Peak RSS per pid in MiB, sampled once more now. */
  stop(): Map<number, number> {
    clearInterval(this.timer);
    this.sample();
    return new Map(this.peaks);
  }
}

/** CPU seconds used, by component, over an interval (see {@link cpuSnapshot}). */
export interface CpuSeconds {
  postgres: number;
  elasticsearch: number;
  redis: number;
  /** The given worker processes. */
  workers: number;
  /** This benchmark process. */
  bench: number;
  /** Everything else on the machine (other users' tests included). */
  other: number;
  /** All CPUs, busy time. */
  total: number;
}

const ticksPerSecond = 100;

/** The pid of the Elasticsearch node the benchmark uses (other java processes are 'other'). */
let elasticsearchPid: string | undefined;

/** Finds the pid of the Elasticsearch node behind `es` (a single-node cluster on this machine). */
export async function identifyElasticsearch(es: EsClient): Promise<void> {
  const info = await es.nodes.info({ metric: 'process' });
  const pid = Object.values(info.nodes)[0]?.process?.id;
  elasticsearchPid = pid === undefined ? undefined : String(pid);
}

function statFields(pid: string): { comm: string; own: number; children: number } | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  const close = text.lastIndexOf(')');
  const comm = text.slice(text.indexOf('(') + 1, close);
  // Fields after the command: state is field 3; utime, stime, cutime, cstime are 14-17.
  const f = text.slice(close + 2).split(' ');
  const n = (i: number) => Number(f[i - 3] ?? 0);
  return { comm, own: n(14) + n(15), children: n(16) + n(17) };
}

/**
 * A snapshot of CPU ticks by component: PostgreSQL (live processes plus what the postmaster
 * reaped from exited backends), Elasticsearch (java), Redis, the given worker pids, this process,
 * and the machine's total busy time.
 */
export function cpuSnapshot(workerPids: readonly number[] = []): CpuSeconds {
  const s: CpuSeconds = {
    postgres: 0,
    elasticsearch: 0,
    redis: 0,
    workers: 0,
    bench: 0,
    other: 0,
    total: 0,
  };
  const workers = new Set(workerPids.map(String));
  for (const pid of readdirSync('/proc')) {
    if (!/^\d+$/.test(pid)) continue;
    const st = statFields(pid);
    if (!st) continue;
    if (st.comm === 'postgres') s.postgres += st.own + st.children;
    else if (elasticsearchPid ? pid === elasticsearchPid : st.comm === 'java')
      s.elasticsearch += st.own;
    else if (st.comm === 'redis-server') s.redis += st.own;
    else if (workers.has(pid)) s.workers += st.own;
    else if (pid === String(process.pid)) s.bench += st.own;
  }
  const cpu = readFileSync('/proc/stat', 'utf8').split('\n')[0]?.split(/\s+/).slice(1) ?? [];
  const [user = 0, nice = 0, system = 0, , , irq = 0, softirq = 0, steal = 0] = cpu.map(Number);
  s.total = user + nice + system + irq + softirq + steal;
  for (const k of Object.keys(s) as (keyof CpuSeconds)[]) s[k] /= ticksPerSecond;
  return s;
}

/** `after - before`, with `other` = total minus the named components. */
export function cpuDelta(before: CpuSeconds, after: CpuSeconds): CpuSeconds {
  const d = {} as CpuSeconds;
  // A negative delta means the process restarted meanwhile (e.g. Elasticsearch): unknown.
  for (const k of Object.keys(before) as (keyof CpuSeconds)[]) {
    const delta = after[k] - before[k];
    d[k] = delta < 0 ? Number.NaN : round(delta, 2);
  }
  const named = [d.postgres, d.elasticsearch, d.redis, d.workers, d.bench].filter(Number.isFinite);
  d.other = round(Math.max(0, d.total - named.reduce((a, b) => a + b, 0)), 2);
  return d;
}

/**
 * Waits (up to `timeoutMs`) until Elasticsearch runs no merges, so one measurement does not pay
 * for the segments the previous one left behind.
 */
export async function esSettled(es: EsClient, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const stats = await es.nodes.stats({ metric: 'indices', index_metric: 'merge' });
    const running = Object.values(stats.nodes).reduce(
      (n, node) => n + (node.indices?.merges?.current ?? 0),
      0,
    );
    if (running === 0) return;
    await new Promise((r) => setTimeout(r, 250));
  }
}
