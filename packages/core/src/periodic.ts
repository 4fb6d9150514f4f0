/** A check run now on demand and every `intervalMs`, one at a time. */
export interface Periodic<R> {
  /** Runs the check now (or joins the one in progress). Rejects if it fails. */
  tick(): Promise<R>;
  /** Stops the timer and waits for a check in progress. */
  close(): Promise<void>;
}

/**
 * Runs `check` every `intervalMs` after the previous run ended (0: never by itself, only through
 * `tick()`); a failed run goes to `onError` and the next one still comes. The timer never keeps
 * a process alive by itself.
 */
export function startPeriodic<R>(
  check: () => Promise<R>,
  intervalMs: number,
  onError: (err: unknown) => void,
): Periodic<R> {
  let current: Promise<R> | undefined;
  let timer: NodeJS.Timeout | undefined;
  let closed = false;

  function tick(): Promise<R> {
    current ??= check().finally(() => {
      current = undefined;
    });
    return current;
  }

  function schedule(): void {
    if (closed || intervalMs <= 0) return;
    timer = setTimeout(() => {
      tick().catch(onError).finally(schedule);
    }, intervalMs);
    timer.unref();
  }
  schedule();

  return {
    tick,
    async close() {
      closed = true;
      clearTimeout(timer);
      await current?.catch(() => undefined);
    },
  };
}
