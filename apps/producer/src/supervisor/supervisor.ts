import { EventEmitter } from 'node:events';
import type { Logger, QueueDepth } from '@freshet/core';

/** How a worker process ended. */
export interface WorkerExit {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  /** Why the process could not be started, if it could not. */
  readonly error?: string;
}

/** A worker process as the supervisor sees it (a child process, or a fake in tests). */
export interface WorkerProcess {
  /** The operating-system process id (undefined if the process could not be started). */
  readonly pid: number | undefined;
  /** Resolves once, when the process has ended (or failed to start). Never rejects. */
  readonly exited: Promise<WorkerExit>;
  /** Sends a signal; a process that has already ended ignores it. */
  signal(signal: 'SIGTERM' | 'SIGKILL'): void;
}

/** Starts one worker process. */
export type SpawnWorker = () => WorkerProcess;

/** Time as the supervisor reads it: injectable so the control loop can be tested without waiting. */
export interface Clock {
  now(): number;
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

/** The real clock. */
export const systemClock: Clock = {
  now: () => Date.now(),
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (handle) => clearTimeout(handle as NodeJS.Timeout),
};

/** Scaling policy of a {@link Supervisor}. */
export interface SupervisorOptions {
  /** Fewest worker processes, also while idle (0 scales to zero). */
  readonly min: number;
  /** Most worker processes. */
  readonly max: number;
  /** Jobs one worker process takes on (WORKER_CONCURRENCY): desired = ceil(depth / perWorker). */
  readonly perWorker: number;
  /** Time between two samples of the queue depth (ms). */
  readonly intervalMs: number;
  /** How long the depth must stay below what the running workers can take before scaling down (ms). */
  readonly idleMs: number;
  /** SIGKILL a worker this long after its SIGTERM (SHUTDOWN_TIMEOUT_MS plus a margin). */
  readonly killAfterMs: number;
  /**
   * First delay before replacing a worker that crashed within {@link minUptimeMs} of its start;
   * it doubles with each such crash in a row, up to 30 s, so a worker that cannot start (bad
   * configuration, a service down) is not restarted in a tight loop. Default 1000 ms.
   */
  readonly restartBackoffMs?: number;
  /** A worker that ran at least this long before crashing is replaced at once. Default 10 s. */
  readonly minUptimeMs?: number;
}

/** What a {@link Supervisor} needs from the outside world. */
export interface SupervisorDeps {
  /** Reads the queue depth (see `queueDepth` in core); a rejection keeps the current workers. */
  readonly sample: () => Promise<QueueDepth>;
  readonly spawn: SpawnWorker;
  readonly logger: Logger;
  readonly clock?: Clock;
}

/** One supervised worker process. */
export interface SupervisedWorker {
  /** Sequence number, unique within this supervisor. */
  readonly id: number;
  readonly pid: number | undefined;
  readonly startedAt: number;
  /** True once it has been sent SIGTERM (it is finishing its jobs). */
  readonly stopping: boolean;
}

/** A snapshot of the supervisor, as passed to {@link Supervisor.waitFor} predicates. */
export interface SupervisorState {
  /** Worker processes alive and not stopping. */
  readonly running: number;
  /** Worker processes finishing their jobs after a SIGTERM. */
  readonly stopping: number;
  /** How many workers the supervisor currently wants running. */
  readonly target: number;
  /** The last depth sampled (undefined before the first sample or after a failed one). */
  readonly depth: number | undefined;
  readonly workers: readonly SupervisedWorker[];
}

/** A scaling decision, emitted as `scale` and logged. */
export interface ScaleEvent {
  readonly from: number;
  readonly to: number;
  readonly depth: number;
  readonly reason: 'start' | 'scale up' | 'scale down' | 'close';
}

/** Events of a {@link Supervisor}. */
export interface SupervisorEvents {
  /** Any change of {@link SupervisorState} (a spawn, a stop, an exit, a new target, a sample). */
  change: [SupervisorState];
  /** The target changed. */
  scale: [ScaleEvent];
  spawn: [SupervisedWorker];
  /** A worker process ended; `expected` is false for a crash or an outside kill. */
  exit: [SupervisedWorker & WorkerExit & { readonly expected: boolean }];
  /** A sample was taken and acted on. */
  tick: [SupervisorState];
}

interface Child {
  readonly id: number;
  readonly proc: WorkerProcess;
  readonly startedAt: number;
  stopping: boolean;
  killTimer?: unknown;
}

const clamp = (n: number, lo: number, hi: number) => Math.min(hi, Math.max(lo, n));
const maxRestartBackoffMs = 30_000;

/**
 * Runs between `min` and `max` worker processes on one machine, scaled on the queue depth:
 * desired = clamp(ceil(depth / perWorker), min, max).
 *
 * - Scaling up is immediate.
 * - Scaling down waits until the desired count has stayed below the target for `idleMs`, then
 *   goes to the highest count desired during that window. Stopped workers get SIGTERM and finish
 *   their jobs; SIGKILL follows only after `killAfterMs`. The newest workers are stopped first.
 * - A worker that exits unexpectedly (crash, `kill -9`) is replaced while the target is above 0
 *   (after a backoff when it keeps dying right after its start).
 * - A failed sample keeps the current target: an unknown depth is no reason to stop work.
 *
 * The loop is driven by {@link tick} (called every `intervalMs` after {@link start}), with an
 * injectable clock and spawn function, so it can be tested without processes or waiting.
 */
export class Supervisor extends EventEmitter<SupervisorEvents> {
  private readonly clock: Clock;
  private readonly log: Logger;
  private readonly children = new Map<number, Child>();
  private nextId = 1;
  private target: number;
  private depth: number | undefined;
  /** When the desired count first fell below the target, and the highest count desired since. */
  private low: { since: number; peak: number } | undefined;
  private crashesInARow = 0;
  private respawnAt = 0;
  private respawnTimer: unknown;
  private loopTimer: unknown;
  private ticking: Promise<void> | undefined;
  private closing: Promise<void> | undefined;

  constructor(
    private readonly options: SupervisorOptions,
    private readonly deps: SupervisorDeps,
  ) {
    super();
    const { min, max, perWorker, intervalMs, idleMs, killAfterMs } = options;
    for (const [name, value] of Object.entries({ min, max, perWorker, intervalMs, idleMs })) {
      if (!Number.isSafeInteger(value) || value < 0) {
        throw new RangeError(`${name} must be a non-negative integer, got ${value}`);
      }
    }
    if (max < 1) throw new RangeError(`max must be at least 1, got ${max}`);
    if (min > max) throw new RangeError(`min (${min}) must not exceed max (${max})`);
    if (perWorker < 1) throw new RangeError(`perWorker must be at least 1, got ${perWorker}`);
    if (!(killAfterMs > 0))
      throw new RangeError(`killAfterMs must be positive, got ${killAfterMs}`);
    this.clock = deps.clock ?? systemClock;
    this.log = deps.logger;
    this.target = min;
  }

  /** The workers wanted for `depth` jobs, before the scale-down delay. */
  desiredFor(depth: number): number {
    const { min, max, perWorker } = this.options;
    return clamp(Math.ceil(Math.max(0, depth) / perWorker), min, max);
  }

  /** The current state. */
  state(): SupervisorState {
    const workers = [...this.children.values()].map((c) => this.info(c));
    const stopping = workers.filter((w) => w.stopping).length;
    return {
      running: workers.length - stopping,
      stopping,
      target: this.target,
      depth: this.depth,
      workers,
    };
  }

  /** Starts `min` workers and the sampling loop (first sample now, then every `intervalMs`). */
  start(): void {
    this.log.info(
      {
        min: this.options.min,
        max: this.options.max,
        perWorker: this.options.perWorker,
        intervalMs: this.options.intervalMs,
        idleMs: this.options.idleMs,
      },
      'supervisor started',
    );
    if (this.target > 0) this.emitScale(0, this.target, 0, 'start');
    this.reconcile();
    const loop = () => {
      this.loopTimer = undefined;
      void this.tick().finally(() => {
        if (!this.closing) this.loopTimer = this.clock.setTimeout(loop, this.options.intervalMs);
      });
    };
    loop();
  }

  /**
   * Samples the depth once and acts on it: scale up at once, scale down after `idleMs` below the
   * target, replace missing workers. Concurrent calls share one sample. Never rejects.
   */
  tick(): Promise<void> {
    this.ticking ??= this.runTick().finally(() => {
      this.ticking = undefined;
    });
    return this.ticking;
  }

  private async runTick(): Promise<void> {
    if (this.closing) return;
    let sample: QueueDepth;
    try {
      sample = await this.deps.sample();
    } catch (err) {
      this.depth = undefined;
      this.log.warn({ err, workers: this.target }, 'queue depth unavailable: keeping the workers');
      this.reconcile();
      this.emitChange('tick');
      return;
    }
    if (this.closing) return;
    this.depth = sample.total;
    const desired = this.desiredFor(sample.total);
    const now = this.clock.now();
    const depthFields = { depth: sample.total, byQueue: sample.byQueue, desired };
    if (desired >= this.target) {
      if (this.low) {
        this.log.info({ ...depthFields, workers: this.target }, 'scale-down cancelled');
        this.low = undefined;
      }
      if (desired > this.target) this.setTarget(desired, sample, 'scale up');
    } else if (!this.low) {
      this.low = { since: now, peak: desired };
      this.log.info(
        { ...depthFields, workers: this.target, idleMs: this.options.idleMs },
        'scale-down pending: waiting for the idle period',
      );
    } else {
      this.low.peak = Math.max(this.low.peak, desired);
    }
    if (this.low && now - this.low.since >= this.options.idleMs) {
      const to = this.low.peak;
      this.low = undefined;
      this.setTarget(to, sample, 'scale down');
    }
    this.log.debug({ ...depthFields, target: this.target }, 'depth sampled');
    this.reconcile();
    this.emitChange('tick');
  }

  /**
   * Resolves with the state once `predicate` holds (checked now and after every change); rejects
   * after `timeoutMs` if given, or when the supervisor closes first.
   */
  waitFor(
    predicate: (state: SupervisorState) => boolean,
    timeoutMs?: number,
  ): Promise<SupervisorState> {
    const now = this.state();
    if (predicate(now)) return Promise.resolve(now);
    return new Promise((resolve, reject) => {
      let timer: unknown;
      const onChange = (state: SupervisorState) => {
        if (!predicate(state)) return;
        cleanup();
        resolve(state);
      };
      const cleanup = () => {
        this.off('change', onChange);
        if (timer !== undefined) this.clock.clearTimeout(timer);
      };
      this.on('change', onChange);
      if (timeoutMs !== undefined) {
        timer = this.clock.setTimeout(() => {
          cleanup();
          const s = this.state();
          reject(
            new Error(
              `supervisor: condition not met within ${timeoutMs} ms (running ${s.running}, stopping ${s.stopping}, target ${s.target}, depth ${s.depth})`,
            ),
          );
        }, timeoutMs);
      }
    });
  }

  /** Resolves once exactly `n` workers are running and none is still stopping. */
  waitForWorkers(n: number, timeoutMs?: number): Promise<SupervisorState> {
    return this.waitFor((s) => s.running === n && s.stopping === 0, timeoutMs);
  }

  /**
   * Stops sampling and stops every worker gracefully (SIGTERM, SIGKILL after `killAfterMs`);
   * resolves when all have exited. Idempotent.
   */
  close(): Promise<void> {
    this.closing ??= this.runClose();
    return this.closing;
  }

  private async runClose(): Promise<void> {
    if (this.loopTimer !== undefined) this.clock.clearTimeout(this.loopTimer);
    if (this.respawnTimer !== undefined) this.clock.clearTimeout(this.respawnTimer);
    this.loopTimer = this.respawnTimer = undefined;
    await this.ticking;
    if (this.target !== 0) this.setTarget(0, { total: this.depth ?? 0, byQueue: {} }, 'close');
    this.low = undefined;
    const children = [...this.children.values()];
    for (const child of children) if (!child.stopping) this.stop(child);
    await Promise.all(children.map((c) => c.proc.exited));
    this.log.info('supervisor stopped');
  }

  /** Sends SIGKILL to every worker at once (for a process that is exiting now). Synchronous. */
  killAll(): void {
    for (const child of this.children.values()) child.proc.signal('SIGKILL');
  }

  private setTarget(to: number, sample: QueueDepth, reason: ScaleEvent['reason']): void {
    const from = this.target;
    this.target = to;
    this.emitScale(from, to, sample.total, reason, sample.byQueue);
  }

  private emitScale(
    from: number,
    to: number,
    depth: number,
    reason: ScaleEvent['reason'],
    byQueue?: Record<string, number>,
  ): void {
    this.log.info(
      { from, to, depth, byQueue, perWorker: this.options.perWorker, reason },
      `${reason}: ${from} -> ${to} workers`,
    );
    this.emit('scale', { from, to, depth, reason });
  }

  /** Starts or stops workers until the running count matches the target. */
  private reconcile(): void {
    if (this.closing && this.target > 0) return;
    const running = [...this.children.values()].filter((c) => !c.stopping);
    // Newest first: the oldest workers are the ones most likely to be warm and busy.
    for (const child of running.slice(this.target).reverse()) this.stop(child);
    let missing = this.target - running.length;
    if (missing <= 0) return;
    const wait = this.respawnAt - this.clock.now();
    if (wait > 0) {
      if (this.respawnTimer === undefined) {
        this.log.warn({ delayMs: wait, missing }, 'workers keep crashing: replacement delayed');
        this.respawnTimer = this.clock.setTimeout(() => {
          this.respawnTimer = undefined;
          this.reconcile();
        }, wait);
      }
      return;
    }
    while (missing-- > 0) this.spawnOne();
  }

  private spawnOne(): void {
    let proc: WorkerProcess;
    try {
      proc = this.deps.spawn();
    } catch (err) {
      this.log.error({ err }, 'could not start a worker process');
      this.noteCrash(0);
      return;
    }
    const child: Child = { id: this.nextId++, proc, startedAt: this.clock.now(), stopping: false };
    this.children.set(child.id, child);
    this.log.info({ worker: child.id, workerPid: proc.pid }, 'worker started by supervisor');
    void proc.exited.then((exit) => this.onExit(child, exit));
    this.emit('spawn', this.info(child));
    this.emitChange();
  }

  private stop(child: Child): void {
    child.stopping = true;
    this.log.info({ worker: child.id, workerPid: child.proc.pid }, 'stopping worker (SIGTERM)');
    child.proc.signal('SIGTERM');
    child.killTimer = this.clock.setTimeout(() => {
      this.log.warn(
        { worker: child.id, workerPid: child.proc.pid, killAfterMs: this.options.killAfterMs },
        'worker did not stop in time: SIGKILL',
      );
      child.proc.signal('SIGKILL');
    }, this.options.killAfterMs);
    this.emitChange();
  }

  private onExit(child: Child, exit: WorkerExit): void {
    this.children.delete(child.id);
    if (child.killTimer !== undefined) this.clock.clearTimeout(child.killTimer);
    const expected = child.stopping;
    const uptimeMs = this.clock.now() - child.startedAt;
    const fields = { worker: child.id, workerPid: child.proc.pid, ...exit, uptimeMs };
    if (expected) {
      this.log.info(fields, 'worker stopped');
    } else {
      this.log.warn(fields, 'worker exited unexpectedly');
      this.noteCrash(uptimeMs);
    }
    this.emit('exit', { ...this.info(child), ...exit, expected });
    this.reconcile();
    this.emitChange();
  }

  /** Counts early crashes in a row and pushes the next spawn back accordingly. */
  private noteCrash(uptimeMs: number): void {
    if (uptimeMs >= (this.options.minUptimeMs ?? 10_000)) {
      this.crashesInARow = 0;
      this.respawnAt = 0;
      return;
    }
    this.crashesInARow++;
    const base = this.options.restartBackoffMs ?? 1000;
    const delay = Math.min(base * 2 ** (this.crashesInARow - 1), maxRestartBackoffMs);
    this.respawnAt = this.clock.now() + delay;
  }

  private info(child: Child): SupervisedWorker {
    return {
      id: child.id,
      pid: child.proc.pid,
      startedAt: child.startedAt,
      stopping: child.stopping,
    };
  }

  private emitChange(also?: 'tick'): void {
    const state = this.state();
    if (also) this.emit(also, state);
    this.emit('change', state);
  }
}
