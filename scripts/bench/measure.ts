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

/** CPU seconds used, by component, over an interval (see {@link CpuMeter}). */
export interface CpuSeconds {
  /** Backends of the benchmark's scratch databases. */
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

function statFields(pid: string): { comm: string; own: number } | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  const close = text.lastIndexOf(')');
  const comm = text.slice(text.indexOf('(') + 1, close);
  // Fields after the command: state is field 3; utime and stime are 14 and 15.
  const f = text.slice(close + 2).split(' ');
  const n = (i: number) => Number(f[i - 3] ?? 0);
  return { comm, own: n(14) + n(15) };
}

function cmdline(pid: string): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8');
  } catch {
    return '';
  }
}

function machineBusyTicks(): number {
  const cpu = readFileSync('/proc/stat', 'utf8').split('\n')[0]?.split(/\s+/).slice(1) ?? [];
  const [user = 0, nice = 0, system = 0, , , irq = 0, softirq = 0, steal = 0] = cpu.map(Number);
  return user + nice + system + irq + softirq + steal;
}

type Component = 'postgres' | 'elasticsearch' | 'redis' | 'workers' | 'bench';

/**
 * CPU used by component over an interval, from /proc sampled every `intervalMs`: PostgreSQL
 * backends of the benchmark's own databases (their process title names the database; shared
 * background processes and other users' backends are 'other'), the Elasticsearch node in use,
 * Redis, the given worker processes and this process. A process that exits between two
 * samples loses at most one interval of CPU.
 */
export class CpuMeter {
  private readonly first = new Map<string, number>();
  private readonly last = new Map<string, number>();
  private readonly kind = new Map<string, Component | null>();
  /** PostgreSQL processes not (yet) showing one of our databases: looked at again a few times. */
  private readonly pending = new Map<string, number>();
  private readonly busyStart = machineBusyTicks();
  private readonly timer: NodeJS.Timeout;
  private initial = true;

  constructor(
    private readonly workerPids: () => readonly number[] = () => [],
    private readonly dbMarker = 'freshet_bench_',
    intervalMs = 50,
  ) {
    this.sample();
    this.initial = false;
    this.timer = setInterval(() => this.sample(), intervalMs);
    this.timer.unref();
  }

  private classify(pid: string, comm: string): Component | null {
    if (this.workerPids().some((w) => String(w) === pid)) return 'workers';
    if (pid === String(process.pid)) return 'bench';
    if (elasticsearchPid ? pid === elasticsearchPid : comm === 'java') return 'elasticsearch';
    if (comm === 'redis-server') return 'redis';
    if (comm === 'postgres' && cmdline(pid).includes(this.dbMarker)) return 'postgres';
    return null;
  }

  private sample(): void {
    for (const pid of readdirSync('/proc')) {
      if (!/^\d+$/.test(pid)) continue;
      const known = this.kind.get(pid);
      // Only our processes are read every time; the rest once (a backend's title names its
      // database only after authentication, so those are looked at a few more times).
      if (known === null && !this.pending.has(pid)) continue;
      const st = statFields(pid);
      if (!st) continue;
      let kind = known;
      if (!kind) {
        kind = this.classify(pid, st.comm);
        if (kind) {
          this.pending.delete(pid);
          // A process first seen after the start was born during the interval: from zero.
          this.first.set(pid, this.initial ? st.own : 0);
        } else if (st.comm === 'postgres') {
          const looks = (this.pending.get(pid) ?? 0) + 1;
          if (looks < 5 && !this.initial) this.pending.set(pid, looks);
          else this.pending.delete(pid);
        }
        this.kind.set(pid, kind);
      }
      if (kind) this.last.set(pid, st.own);
    }
  }

  /** CPU seconds by component since construction. */
  stop(): CpuSeconds {
    this.sample();
    clearInterval(this.timer);
    const s: CpuSeconds = {
      postgres: 0,
      elasticsearch: 0,
      redis: 0,
      workers: 0,
      bench: 0,
      other: 0,
      total: (machineBusyTicks() - this.busyStart) / ticksPerSecond,
    };
    for (const [pid, last] of this.last) {
      const kind = this.kind.get(pid);
      // A pid reused by another process reads lower than its first sample: skip it.
      const delta = last - (this.first.get(pid) ?? 0);
      if (kind && delta >= 0) s[kind] += delta / ticksPerSecond;
    }
    const named = s.postgres + s.elasticsearch + s.redis + s.workers + s.bench;
    s.other = Math.max(0, s.total - named);
    for (const k of Object.keys(s) as (keyof CpuSeconds)[]) s[k] = round(s[k], 2);
    return s;
  }
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
