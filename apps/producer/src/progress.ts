import { SingleBar } from 'cli-progress';
import { RunStore, type Pool, type Queues, type RunRow } from '@freshet/core';

/** States in which following a run stops: ended, or blocked waiting for an operator's retry. */
const terminal = new Set(['succeeded', 'failed', 'cancelled', 'blocked']);

export interface WaitOptions {
  readonly intervalMs?: number;
  /** Where the bar and notices go (stderr by default). */
  readonly stream?: NodeJS.WritableStream;
}

/**
 * Follows a run until it ends, drawing a progress bar (stage, chunks done/total, rows/s, ETA),
 * and says plainly when no worker is connected. Resolves with the final run row.
 */
export async function waitForRun(
  deps: { api: Pool; queues: Queues },
  runId: string,
  options: WaitOptions = {},
): Promise<RunRow> {
  const store = new RunStore(deps.api);
  const stream = options.stream ?? process.stderr;
  const interval = options.intervalMs ?? 500;
  const bar = new SingleBar({
    stream,
    format:
      '{stage} |{bar}| {value}/{total} chunks | {rate} rows/s | ETA {eta_formatted} | {status}',
    hideCursor: false,
    clearOnComplete: false,
    noTTYOutput: true,
    notTTYSchedule: 5000,
  });
  let started = false;
  let warnedNoWorker = false;
  let lastWorkerCheck = 0;
  const t0 = Date.now();
  for (;;) {
    const run = await store.getRun(runId);
    const progress = await store.chunkProgress(runId);
    const total = Math.max(progress.total, 1);
    const seconds = Math.max((Date.now() - t0) / 1000, 0.001);
    const payload = {
      stage: (run.stage ?? 'queued').padEnd(9),
      rate: Math.round(progress.rows_indexed / seconds),
      status: run.status + (run.error ? `: ${run.error}` : ''),
    };
    if (!started) {
      bar.start(total, progress.indexed, payload);
      started = true;
    }
    bar.setTotal(total);
    bar.update(progress.indexed, payload);
    if (terminal.has(run.status)) {
      bar.stop();
      return run;
    }
    if (Date.now() - lastWorkerCheck > 2000) {
      lastWorkerCheck = Date.now();
      const workers = await deps.queues.chunk.getWorkersCount();
      if (workers === 0 && !warnedNoWorker) {
        stream.write(
          `\nno worker is connected to queue ${deps.queues.prefix}:${deps.queues.chunk.name}; the run waits until one starts (run \`freshet worker\`)\n`,
        );
        warnedNoWorker = true;
      } else if (workers > 0) {
        warnedNoWorker = false;
      }
    }
    await new Promise((resolve) => setTimeout(resolve, interval));
  }
}
