// Entry point of a worker process started by `freshet workers` (the supervisor spawns this file
// with an IPC channel): the only place in the worker app that handles signals and exits.
// Standalone workers run `freshet worker` instead; both start the same `startWorker`.
import { closeOnSignal, createLogger, loadConfig, maskSecrets, type Logger } from '@freshet/core';
import { startWorker } from './worker.js';

/**
 * Ends this worker when its supervisor is gone, however it died (SIGKILL included): the kernel
 * closes the supervisor's end of the IPC channel, and a worker left behind would otherwise take
 * jobs that nobody supervises, forever. The loss goes through the same graceful shutdown as
 * SIGTERM (stop taking jobs, let running ones finish, close, exit within SHUTDOWN_TIMEOUT_MS).
 */
function stopWhenSupervisorGone(log: Logger, closing: () => boolean): void {
  // Spawned without an IPC channel (by hand, or by something else than the supervisor).
  if (process.send === undefined) return;
  const onGone = () => {
    // Already shutting down on a signal: a second one would exit at once, mid-job.
    if (closing()) return;
    log.warn('supervisor gone (IPC channel closed): shutting down');
    process.kill(process.pid, 'SIGTERM');
  };
  // The supervisor may have died while this worker was starting, before the listener existed.
  if (!process.connected) onGone();
  else process.once('disconnect', onGone);
}

try {
  const config = loadConfig();
  const logger = createLogger(config);
  const app = await startWorker(config, logger);
  let closed: Promise<void> | undefined;
  closeOnSignal({ close: () => (closed ??= app.close()) }, logger, config.SHUTDOWN_TIMEOUT_MS);
  stopWhenSupervisorGone(logger.child({ app: 'worker' }), () => closed !== undefined);
} catch (err) {
  // One line (the setting to fix) for the supervisor's log, like `freshet worker` prints.
  const e = err as Error & { exitCode?: number };
  process.stderr.write(`freshet worker: ${maskSecrets(e.message)}\n`);
  process.exitCode = typeof e.exitCode === 'number' ? e.exitCode : 1;
}
