import { readFileSync } from 'node:fs';
import {
  buildIndexBody,
  buildIndexName,
  chunkCount,
  cleanChunk,
  columnDefinitions,
  copyChunk,
  createDatabases,
  createLogger,
  ident,
  indexChunk,
  JobScope,
  jobTag,
  newRunId,
  parseSensitiveTerms,
  planUuidChunks,
  refreshNames,
  RunStore,
  type ChunkJobData,
  type JobContext,
  type RefreshContext,
} from '@freshet/core';
import type pg from 'pg';
import { CpuMeter, now, perSecond, type CpuSeconds } from './measure.js';
import { statementShape } from './statements.js';
import type { World } from './world.js';

/** Time spent in one kind of SQL statement (literals blanked out), over a stage. */
export interface StatementFigures {
  readonly sql: string;
  readonly calls: number;
  readonly ms: number;
}

/** One chunk step run over every chunk, stage by stage, with no queue and no bookkeeping. */
export interface StepStage {
  readonly step: 'copy' | 'clean' | 'index';
  readonly chunks: number;
  readonly rows: number;
  readonly ms: number;
  readonly rowsPerSec: number;
  /** Mean ms of a chunk in the first and the last quarter of the chunks. */
  readonly firstQuarterMs: number;
  readonly lastQuarterMs: number;
  /** CPU seconds by component during the stage ('bench' = this process, the steps' Node side). */
  readonly cpu: CpuSeconds;
  /** Peak V8 heap in use and peak Buffer memory of this process during the stage, MiB. */
  readonly peakHeapMiB: number;
  readonly peakBuffersMiB: number;
  /** The statements that took the most time (summed over the parallel jobs). */
  readonly statements: readonly StatementFigures[];
}

export interface StepsProfile {
  /** 'as-is', or the what-if tried ('jit-on'). */
  readonly variant: string;
  readonly concurrency: number;
  readonly chunkSizeRows: number;
  readonly stages: readonly StepStage[];
}

type Stats = Map<string, { calls: number; ms: number }>;

/**
 * Times every statement run through clients of `pool`: plain queries until their promise
 * settles, COPY streams until they end, cursors until they close.
 */
function instrument(pool: pg.Pool, stats: () => Stats): void {
  pool.on('connect', (client) => {
    const original = client.query.bind(client) as (...args: unknown[]) => unknown;
    const record = (sql: string, started: number) => {
      const s = stats();
      const key = statementShape(sql);
      const entry = s.get(key) ?? { calls: 0, ms: 0 };
      entry.calls++;
      entry.ms += now() - started;
      s.set(key, entry);
    };
    (client as unknown as { query: (...args: unknown[]) => unknown }).query = (
      ...args: unknown[]
    ) => {
      const first = args[0] as { text?: string; cursor?: unknown } | string | undefined;
      const text = typeof first === 'string' ? first : (first?.text ?? '(submittable)');
      const started = now();
      const result = original(...args);
      if (result instanceof Promise) {
        void result.then(
          () => record(text, started),
          () => record(text, started),
        );
      } else if (result && typeof (result as { once?: unknown }).once === 'function') {
        const emitter = result as NodeJS.EventEmitter;
        let done = false;
        const end = () => {
          if (!done) record(text, started);
          done = true;
        };
        for (const event of ['end', 'finish', 'close', 'error']) emitter.once(event, end);
      }
      return result;
    };
  });
}

async function parallel<T>(items: readonly T[], n: number, fn: (item: T) => Promise<void>) {
  let next = 0;
  const lanes = await Promise.allSettled(
    Array.from({ length: n }, async () => {
      for (;;) {
        const i = next++;
        const item = items[i];
        if (item === undefined) return;
        // After a failure the other lanes take no new items, and the failure is reported once
        // they have stopped, so cleanup does not race them.
        await fn(item).catch((err: unknown) => {
          next = items.length;
          throw err;
        });
      }
    }),
  );
  const failed = lanes.find((l) => l.status === 'rejected');
  if (failed) throw failed.reason;
}

/**
 * Runs Freshet's own chunk steps (copyChunk, cleanChunk, indexChunk from core) in this process
 * over every chunk of the table, one stage after the other with `concurrency` chunks at a time,
 * timing every SQL statement. No BullMQ, no run store: the data path alone. The temp table is
 * made as preflight makes it (with its build-time key index). With `jit` the sessions run with
 * PostgreSQL JIT compilation (PG_JIT), to measure that setting.
 */
export async function profileSteps(
  world: World,
  opts: { chunkSizeRows: number; concurrency: number; jit: boolean; upstreamRows: number },
): Promise<StepsProfile> {
  const { def, config } = world;
  const runId = newRunId();
  const names = refreshNames(def, 'production', runId, config.ELASTICSEARCH_INDEX_PREFIX);
  let stats: Stats = new Map();
  const dbs = createDatabases({ ...config, PG_JIT: opts.jit }, 'freshet-bench-steps');
  instrument(dbs.catalog, () => stats);
  instrument(dbs.api, () => stats);
  const ctx: RefreshContext = {
    config,
    dbs,
    es: world.es,
    media: world.media,
    store: new RunStore(dbs.api),
    sensitiveTerms: parseSensitiveTerms(readFileSync(config.SENSITIVE_TERMS_FILE, 'utf8')),
    logger: createLogger({ LOG_LEVEL: 'warn' }),
  };
  const temp = ident(names.tempTable);
  await world.dbs.api.query(`DROP TABLE IF EXISTS ${temp}`);
  await world.dbs.api.query(`CREATE TABLE ${temp} (\n  ${columnDefinitions(def)}\n)`);
  await world.dbs.api.query(
    `CREATE INDEX ${ident(buildIndexName(names.tempTable))} ON ${temp} (${ident(def.key.column)})`,
  );
  for (const index of names.indices) {
    await world.es.indices.create({ index, ...buildIndexBody(def) });
  }
  const ranges = planUuidChunks(chunkCount(opts.upstreamRows, opts.chunkSizeRows));
  const stages: StepStage[] = [];
  try {
    for (const step of ['copy', 'clean', 'index'] as const) {
      stats = new Map();
      const perChunk: number[] = new Array<number>(ranges.length).fill(0);
      let rows = 0;
      // With --expose-gc (run.sh), each stage starts from a collected heap.
      (globalThis as { gc?: () => void }).gc?.();
      let peakHeap = 0;
      let peakBuffers = 0;
      const sampler = setInterval(() => {
        const mem = process.memoryUsage();
        peakHeap = Math.max(peakHeap, mem.heapUsed);
        peakBuffers = Math.max(peakBuffers, mem.arrayBuffers);
      }, 20);
      const meter = new CpuMeter();
      const started = now();
      await parallel(
        ranges.map((range, chunk) => ({ range, chunk })),
        opts.concurrency,
        async ({ range, chunk }) => {
          const data: ChunkJobData = {
            runId,
            media: def.name,
            profile: 'production',
            chunk,
            range,
          };
          const scope = new JobScope(
            jobTag(`${runId}.c${chunk}.${step}`),
            new AbortController().signal,
          );
          const jobCtx: JobContext = { ...ctx, scope };
          const t = now();
          const result =
            step === 'copy'
              ? await copyChunk(jobCtx, data)
              : step === 'clean'
                ? await cleanChunk(jobCtx, data)
                : await indexChunk(jobCtx, data);
          perChunk[chunk] = now() - t;
          rows += result.rows;
        },
      );
      const ms = now() - started;
      const cpu = meter.stop();
      clearInterval(sampler);
      const quarter = Math.max(1, Math.floor(ranges.length / 4));
      const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length);
      stages.push({
        step,
        chunks: ranges.length,
        rows,
        ms,
        rowsPerSec: perSecond(rows, ms),
        firstQuarterMs: mean(perChunk.slice(0, quarter)),
        lastQuarterMs: mean(perChunk.slice(-quarter)),
        cpu,
        peakHeapMiB: peakHeap / 2 ** 20,
        peakBuffersMiB: peakBuffers / 2 ** 20,
        statements: [...stats]
          .map(([sql, s]) => ({ sql, calls: s.calls, ms: s.ms }))
          .sort((a, b) => b.ms - a.ms)
          .slice(0, 8),
      });
    }
  } finally {
    await dbs.close();
    await world.dbs.api.query(`DROP TABLE IF EXISTS ${temp}`);
    await world.es.indices.delete({
      index: names.indices.join(','),
      ignore_unavailable: true,
    });
  }
  return {
    variant: opts.jit ? 'jit-on' : 'as-is',
    concurrency: opts.concurrency,
    chunkSizeRows: opts.chunkSizeRows,
    stages,
  };
}
