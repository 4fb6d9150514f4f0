import { spawn, type StdioOptions } from 'node:child_process';
import path from 'node:path';
import { repoRoot } from '@freshet/core';
import type { SpawnWorker, WorkerExit } from './supervisor.js';

/** Options of {@link createWorkerSpawner}. */
export interface WorkerSpawnerOptions {
  /** The workers' environment; default: this process's environment (the same settings). */
  readonly env?: NodeJS.ProcessEnv;
  /**
   * Where the workers' stdout and stderr go: `inherit` (default: interleaved with the
   * supervisor's own JSON log lines, each line carrying its `pid`), `ignore`, or a callback.
   */
  readonly output?: 'inherit' | 'ignore' | ((chunk: Buffer, pid: number | undefined) => void);
}

/**
 * The command line of one worker: the same node binary running `apps/worker/src/main.ts` through
 * tsx (as `scripts/freshet.mjs` runs the CLI). That entry starts the worker `freshet worker`
 * starts, and also shuts it down when the supervisor is gone.
 */
export const workerCommand = (): [string, string[]] => [
  process.execPath,
  ['--import', import.meta.resolve('tsx'), path.join(repoRoot, 'apps/worker/src/main.ts')],
];

/**
 * Spawns worker child processes (same node, same environment; see {@link workerCommand}).
 *
 * Each child gets its own process group (`detached`), so a Ctrl-C in a terminal reaches the
 * supervisor only: it then stops the workers with one SIGTERM each. (A terminal signal plus the
 * supervisor's SIGTERM would count as the worker's second signal, which exits at once.)
 *
 * Each child also gets an IPC channel, used only for its end: when the supervisor dies, even
 * by SIGKILL (when none of its code runs), the kernel closes its end, and the worker shuts down
 * gracefully on the `disconnect` instead of running on unsupervised.
 */
export function createWorkerSpawner(options: WorkerSpawnerOptions = {}): SpawnWorker {
  const output = options.output ?? 'inherit';
  const stdio: StdioOptions =
    typeof output === 'function'
      ? ['ignore', 'pipe', 'pipe', 'ipc']
      : ['ignore', output, output, 'ipc'];
  return () => {
    const [command, args] = workerCommand();
    const child = spawn(command, args, { env: options.env, stdio, detached: true });
    if (typeof output === 'function') {
      const forward = (chunk: Buffer) => output(chunk, child.pid);
      child.stdout?.on('data', forward);
      child.stderr?.on('data', forward);
    }
    const exited = new Promise<WorkerExit>((resolve) => {
      child.once('exit', (code, signal) => resolve({ code, signal }));
      child.on('error', (err) => {
        // Only a failed spawn ends the child; a failed kill leaves it running.
        if (child.pid === undefined) resolve({ code: null, signal: null, error: err.message });
      });
    });
    return {
      pid: child.pid,
      exited,
      signal(signal) {
        if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) return;
        child.kill(signal);
      },
    };
  };
}
