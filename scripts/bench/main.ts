// `npm run bench`: Freshet against its ceilings, in one run on the same rows.
// A benchmark, not a test: it prints a table (and JSON with --json) and cleans up after itself.
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { repoRoot, seedSynthetic } from '@freshet/core';
import { binaryCopy } from './copy-ceiling.js';
import {
  buildCeilingBodies,
  esCeiling,
  type BulkBodies,
  type CeilingKind,
  type EsCeilingRun,
} from './es-ceiling.js';
import { freshetRun, type FreshetRun } from './freshet-run.js';
import {
  CpuMeter,
  esSettled,
  identifyElasticsearch,
  loadAverage,
  type CpuSeconds,
} from './measure.js';
import { bullmqFloor } from './orchestration.js';
import { planScale } from './plan-scale.js';
import { profileStatements } from './statements.js';
import { evaluate, formatReport, type BenchResult, type ScaleRun, type WithCpu } from './report.js';
import { createWorld, type World } from './world.js';

const parts = ['copy', 'freshet', 'es', 'scale', 'orchestration', 'plan', 'memory'] as const;
/** Parts that run only when asked for (--scale, --memory or --only). */
const optIn: readonly Part[] = ['scale', 'memory'];
type Part = (typeof parts)[number];

const usage = `usage: npm run bench -- [options]
  --rows N           synthetic catalog rows (default 300000)
  --chunk-size N     Freshet rows per chunk (default rows/20, between 1000 and 100000)
  --workers LIST     Freshet worker processes to try (default 1,2,4)
  --es-concurrency LIST  parallel bulk requests for the ES ceilings (default 1,2,4)
  --scale            also seed and refresh 200k and 2M rows with one worker and compare the
                     time per row
  --scale-rows LIST  the table sizes of --scale (default 200000,2000000)
  --scale-chunk-size N  rows per chunk at every --scale size (default --chunk-size, else the
                     smallest size/20, between 1000 and 100000)
  --noop-chunks N    chunks of the orchestration run (default 10000)
  --plan-rows N      rows of the plan built in Redis (default 712000000)
  --memory           also refresh 100k and 1M rows with one worker and compare peak RSS
  --only LIST        run only these parts (default all but ${optIn.join(' and ')}):
                     ${parts.join(',')}
  --cpu-prof         write CPU profiles of the worker processes to bench-results/prof/
  --seed S           synthetic data seed (default 1)
  --json PATH        write every figure as JSON to PATH`;

function list(value: string | undefined, fallback: number[]): number[] {
  if (value === undefined) return fallback;
  const items = value.split(',').map((v) => Number(v.trim()));
  if (items.some((n) => !Number.isSafeInteger(n) || n < 1)) {
    throw new Error(
      `expected a comma-separated list of positive integers, got ${JSON.stringify(value)}`,
    );
  }
  return items;
}

function positive(name: string, value: string | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  const n = Number(value.replaceAll('_', ''));
  if (!Number.isSafeInteger(n) || n < 1)
    throw new Error(`--${name} must be a positive integer, got ${JSON.stringify(value)}`);
  return n;
}

const { values } = parseArgs({
  options: {
    rows: { type: 'string' },
    'chunk-size': { type: 'string' },
    workers: { type: 'string' },
    'es-concurrency': { type: 'string' },
    'noop-chunks': { type: 'string' },
    'plan-rows': { type: 'string' },
    scale: { type: 'boolean', default: false },
    'scale-rows': { type: 'string' },
    'scale-chunk-size': { type: 'string' },
    memory: { type: 'boolean', default: false },
    only: { type: 'string' },
    'cpu-prof': { type: 'boolean', default: false },
    seed: { type: 'string' },
    json: { type: 'string' },
    help: { type: 'boolean', short: 'h', default: false },
  },
});
if (values.help) {
  console.log(usage);
  process.exit(0);
}

/** Twenty chunks of the table, within 1000 and 100,000 rows. */
const defaultChunkSize = (n: number) => Math.min(100_000, Math.max(1000, Math.ceil(n / 20)));
const rows = positive('rows', values.rows, 300_000);
const chunkSizeRows = positive('chunk-size', values['chunk-size'], defaultChunkSize(rows));
const scaleRows = [...list(values['scale-rows'], [200_000, 2_000_000])].sort((a, b) => a - b);
const scaleChunkSizeRows = positive(
  'scale-chunk-size',
  values['scale-chunk-size'] ?? values['chunk-size'],
  defaultChunkSize(scaleRows[0] ?? 200_000),
);
const workerCounts = list(values.workers, [1, 2, 4]);
const esConcurrency = list(values['es-concurrency'], [1, 2, 4]);
const noopChunks = positive('noop-chunks', values['noop-chunks'], 10_000);
const planRows = positive('plan-rows', values['plan-rows'], 712_000_000);
const seed = positive('seed', values.seed, 1);
const only = new Set<Part>(
  values.only === undefined
    ? parts.filter((p) => !optIn.includes(p))
    : values.only.split(',').map((p) => {
        if (!(parts as readonly string[]).includes(p))
          throw new Error(`unknown part ${p}; expected ${parts.join(',')}`);
        return p as Part;
      }),
);
if (values.memory) only.add('memory');
if (values.scale || values['scale-rows'] !== undefined) only.add('scale');
const resultsDir = path.join(repoRoot, 'bench-results');
const nodeArgs = values['cpu-prof']
  ? ['--cpu-prof', `--cpu-prof-dir=${path.join(resultsDir, 'prof')}`]
  : [];
const runTimeoutMs = Math.max(600_000, rows * 10);

const result: BenchResult = {
  version: 2,
  startedAt: new Date().toISOString(),
  host: { cpus: cpus().length, loadStart: loadAverage() },
  options: {
    rows,
    media: 'image',
    seed,
    chunkSizeRows,
    workers: workerCounts,
    esConcurrency,
    scaleRows,
    scaleChunkSizeRows,
    noopChunks,
    planRows,
    only: [...only],
  },
  phaseLoad: {},
  phaseStartS: {},
  ratios: {},
  goals: [],
};

const worlds: World[] = [];
let closing: Promise<void> | undefined;
function closeWorlds(): Promise<void> {
  closing ??= (async () => {
    for (const w of worlds.splice(0)) {
      await w
        .close()
        .catch((err: unknown) => console.error(`bench: cleanup of ${w.id} failed: ${String(err)}`));
    }
  })();
  return closing;
}
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    console.error(`bench: ${signal}, removing scratch databases, queues and indices...`);
    void closeWorlds().finally(() => process.exit(130));
  });
}

const benchStarted = Date.now();
function phase(name: string): void {
  const load = loadAverage();
  const at = Math.round((Date.now() - benchStarted) / 1000);
  result.phaseLoad[name] = load;
  result.phaseStartS[name] = at;
  console.error(`bench: +${at} s ${name} (load ${load.join(' ')})`);
}

async function world(label: string, overrides: Record<string, string> = {}): Promise<World> {
  const w = await createWorld(label, overrides);
  worlds.push(w);
  return w;
}

/** The run with the highest rate of rows. */
function fastest<T extends { rowsPerSec: number }>(runs: readonly T[]): T {
  const first = runs[0];
  if (first === undefined) throw new Error('no run to choose from');
  return runs.reduce((a, b) => (b.rowsPerSec > a.rowsPerSec ? b : a), first);
}

/** Runs `fn` and adds the CPU seconds each component used meanwhile. */
async function withCpu<T>(fn: () => Promise<T>): Promise<T & { cpu: CpuSeconds }> {
  const meter = new CpuMeter();
  const value = await fn();
  return { ...value, cpu: meter.stop() };
}

async function main(): Promise<void> {
  const m = await world('m');
  await identifyElasticsearch(m.es);
  const dataParts: Part[] = ['copy', 'freshet', 'es'];
  if (dataParts.some((p) => only.has(p))) {
    phase(`seed ${rows} rows`);
    const seeded = await seedSynthetic(m.dbs.catalog, m.def, { rows, seed });
    result.seed = { rows, removed: seeded.removed, deleted: seeded.deleted, ms: seeded.ms };
  }

  if (only.has('copy')) {
    const runs = [];
    for (const streams of [1, 2]) {
      phase(`copy ceiling, ${streams} stream(s) (best of 2)`);
      const tries = [];
      for (let i = 0; i < 2; i++) tries.push(await withCpu(() => binaryCopy(m, streams)));
      runs.push(fastest(tries));
    }
    result.copyCeiling = { runs, best: fastest(runs) };
  }

  if (only.has('freshet') || only.has('es')) {
    // A freshly started Elasticsearch spends tens of CPU seconds compiling its indexing path (JIT)
    // during its first heavy load: whichever measurement came first paid it (the 1-worker run's
    // Elasticsearch used 3.7 x the ceiling's CPU). One unmeasured refresh warms it, and
    // PostgreSQL's caches, for every measurement that follows; it also leaves the documents
    // the Elasticsearch ceilings send, when the Freshet part does not run.
    phase('warm-up: one unmeasured refresh, 2 workers');
    await esSettled(m.es);
    await freshetRun(m, { workers: 2, chunkSizeRows, timeoutMs: runTimeoutMs });
  }
  if (only.has('freshet')) {
    const runs: FreshetRun[] = [];
    for (const workers of workerCounts) {
      phase(`freshet refresh, ${workers} worker(s)`);
      await esSettled(m.es);
      runs.push(await freshetRun(m, { workers, chunkSizeRows, timeoutMs: runTimeoutMs, nodeArgs }));
    }
    result.freshet = runs;
  }

  if (only.has('es')) {
    phase('reading back the documents Freshet indexed, building bulk bodies');
    const bodies = await buildCeilingBodies(m, m.config.INDEX_BULK_FLUSH_BYTES);
    const runs: Record<CeilingKind, WithCpu<EsCeilingRun>[]> = { main: [], 'two-index': [] };
    for (const concurrency of esConcurrency) {
      phase(
        `ES ceilings, main documents and main + filtered, ${concurrency} in flight (best of 2)`,
      );
      const tries: Record<CeilingKind, WithCpu<EsCeilingRun>[]> = { main: [], 'two-index': [] };
      // Interleaved, so a change in the machine's load weighs on both shapes alike.
      for (let i = 0; i < 2; i++) {
        for (const b of [bodies.main, bodies.twoIndex]) {
          await esSettled(m.es);
          tries[b.kind].push(await withCpu(() => esCeiling(m, b, concurrency)));
        }
      }
      for (const kind of ['main', 'two-index'] as const) runs[kind].push(fastest(tries[kind]));
    }
    const summary = (b: BulkBodies) => ({
      count: b.bodies.length,
      bytes: b.bytes,
      rows: b.rows,
      ops: b.ops,
    });
    result.esCeiling = {
      bodies: {
        main: summary(bodies.main),
        twoIndex: summary(bodies.twoIndex),
        filtered: bodies.filtered,
        buildMs: bodies.buildMs,
      },
      main: { runs: runs.main, best: fastest(runs.main) },
      twoIndex: { runs: runs['two-index'], best: fastest(runs['two-index']) },
    };
  }

  if (only.has('scale')) {
    const runs: ScaleRun[] = [];
    for (const [i, n] of scaleRows.entries()) {
      const w = await world('scale');
      phase(`scale: seed ${n} rows`);
      const seeded = await seedSynthetic(w.dbs.catalog, w.def, { rows: n, seed });
      const opts = {
        workers: 1,
        chunkSizeRows: scaleChunkSizeRows,
        timeoutMs: Math.max(600_000, n * 10),
      };
      if (i === 0 && !only.has('freshet') && !only.has('es')) {
        phase('scale: warm-up, one unmeasured refresh');
        await esSettled(w.es);
        await freshetRun(w, opts);
      }
      phase(`scale: refresh ${n} rows, 1 worker, chunks of ${scaleChunkSizeRows}`);
      await esSettled(w.es);
      runs.push({ rows: n, seedMs: seeded.ms, run: await freshetRun(w, { ...opts, nodeArgs }) });
      // The next size starts on a machine without this one's databases and indices.
      await w.close();
    }
    result.scale = { chunkSizeRows: scaleChunkSizeRows, runs };
  }

  if (only.has('orchestration')) {
    phase(`BullMQ floor, ${noopChunks} no-op chunks`);
    const floor = await withCpu(() => bullmqFloor(m.config, noopChunks));
    phase(`Freshet, ${noopChunks} empty chunks`);
    const noop = await world('noop');
    await seedSynthetic(noop.dbs.catalog, noop.def, { rows: noopChunks, seed });
    // Every row removed: each chunk moves no row, with all the bookkeeping.
    await noop.dbs.catalog.query(
      `UPDATE ${noop.def.upstreamTable} SET ${noop.def.removedColumn ?? 'removed_from_source'} = true`,
    );
    await noop.dbs.catalog.query(`VACUUM ANALYZE ${noop.def.upstreamTable}`);
    const run = await freshetRun(noop, {
      workers: 1,
      chunkSizeRows: 1,
      timeoutMs: 1_800_000,
      nodeArgs,
    });
    result.orchestration = {
      floor,
      freshet: {
        label: 'Freshet (1 worker, empty chunks)',
        chunks: run.chunks,
        jobs: run.chunkJobs.reduce((n, j) => n + j.attempts, 0),
        chunkSpanMs: run.chunkSpanMs,
        chunksPerSec: (run.chunks * 1000) / run.chunkSpanMs,
        msPerChunk: run.chunkSpanMs / run.chunks,
        totalMs: run.endToEndMs,
      },
      freshetRun: run,
    };
    await noop.close();
    phase('PostgreSQL statements per empty chunk (in-process worker, 1000 chunks)');
    const stmt = await world('stmt');
    result.orchestration.statements = await profileStatements(stmt, Math.min(1000, noopChunks));
    await stmt.close();
  }

  if (only.has('plan')) {
    phase(`plan of ${planRows} rows in Redis`);
    result.plan = await planScale(m.config, planRows, m.def.chunkSizeRows);
  }

  if (only.has('memory')) {
    const mem = await world('mem');
    const runs: FreshetRun[] = [];
    for (const n of [100_000, 1_000_000]) {
      phase(`memory: seed and refresh ${n} rows, 1 worker, chunks of ${mem.def.chunkSizeRows}`);
      await seedSynthetic(mem.dbs.catalog, mem.def, { rows: n, seed });
      runs.push(
        await freshetRun(mem, {
          workers: 1,
          chunkSizeRows: mem.def.chunkSizeRows,
          timeoutMs: 3_600_000,
          nodeArgs,
        }),
      );
    }
    result.memory = { tableRows: [100_000, 1_000_000], runs };
  }
}

let failed = false;
try {
  await main();
} catch (err) {
  failed = true;
  console.error(`bench: failed: ${(err as Error).stack ?? String(err)}`);
} finally {
  phase('cleanup');
  await closeWorlds();
}
result.finishedAt = new Date().toISOString();
result.host.loadEnd = loadAverage();
evaluate(result);
const report = formatReport(result);
console.log(report);
mkdirSync(resultsDir, { recursive: true });
writeFileSync(path.join(resultsDir, 'latest.json'), JSON.stringify(result, null, 2));
writeFileSync(path.join(resultsDir, 'latest.txt'), `${report}\n`);
if (values.json) {
  writeFileSync(path.resolve(values.json), JSON.stringify(result, null, 2));
  console.error(`bench: wrote ${values.json}`);
}
process.exitCode = failed ? 1 : 0;
