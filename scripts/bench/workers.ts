import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import path from 'node:path';
import { repoRoot } from '@freshet/core';
import { processMemory } from './measure.js';

/** A spawned `freshet worker` process. */
export interface WorkerProcess {
  readonly pid: number;
  /** Resolves once the worker logged that it started. */
  ready(timeoutMs?: number): Promise<void>;
  /** The last output lines (for error messages). */
  tail(): string;
  /** Reads its peak RSS (VmHWM), then stops it with SIGTERM and waits for the exit. */
  stop(): Promise<{ peakRssMiB: number; code: number | null }>;
}

const keepChars = 20_000;

/**
 * Spawns `node [nodeArgs] scripts/freshet.mjs worker` with `env`, the way an operator (and the
 * integration tests) run workers: a separate process per worker.
 */
export function spawnWorker(
  env: NodeJS.ProcessEnv,
  nodeArgs: readonly string[] = [],
): WorkerProcess {
  const child: ChildProcess = spawn(
    process.execPath,
    [...nodeArgs, path.join(repoRoot, 'scripts/freshet.mjs'), 'worker'],
    { env, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let out = '';
  let started = false;
  const startWaiters: (() => void)[] = [];
  const onData = (d: Buffer) => {
    out = (out + d.toString()).slice(-keepChars);
    if (!started && out.includes('worker started')) {
      started = true;
      for (const w of startWaiters.splice(0)) w();
    }
  };
  child.stdout?.on('data', onData);
  child.stderr?.on('data', onData);
  const exited = once(child, 'exit') as Promise<[number | null, NodeJS.Signals | null]>;
  return {
    pid: child.pid ?? -1,
    tail: () => out.slice(-4000),
    ready(timeoutMs = 60_000) {
      if (started) return Promise.resolve();
      return new Promise((resolve, reject) => {
        const timer = setTimeout(
          () => reject(new Error(`worker ${child.pid} did not start:\n${out.slice(-2000)}`)),
          timeoutMs,
        );
        startWaiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
        const early = (why: string) => {
          clearTimeout(timer);
          reject(new Error(`worker ${child.pid} ${why} before starting:\n${out.slice(-2000)}`));
        };
        exited.then(
          ([code]) => early(`exited (${code})`),
          (err: Error) => early(`failed (${err.message})`),
        );
      });
    },
    async stop() {
      const peakRssMiB = processMemory(child.pid ?? -1)?.peakMiB ?? 0;
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      const [code] = await exited;
      return { peakRssMiB, code };
    },
  };
}
