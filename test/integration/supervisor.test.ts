// `freshet workers`: the queue-depth signal, the supervisor's control loop (fake clock and fake
// processes), and the real thing: worker processes scaled 0 -> N -> 0 around a refresh on the
// real Redis, PostgreSQL and Elasticsearch.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { Writable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { FlowProducer, Worker } from 'bullmq';
import {
  CHUNK_QUEUE,
  createLogger,
  createProducerRedis,
  createQueues,
  createWorkerRedis,
  getMedia,
  loadConfig,
  queueDepth,
  queueDepthOf,
  seedSynthetic,
  STAGE_QUEUE,
  type Queues,
} from '@freshet/core';
import { startRefresh } from '@freshet/control';
import {
  createWorkerSpawner,
  startSupervisor,
  Supervisor,
  type Clock,
  type ScaleEvent,
  type SupervisorApp,
  type SupervisorOptions,
  type WorkerExit,
  type WorkerProcess,
} from '../../apps/producer/src/supervisor/index.js';
import { waitUntil } from '../helpers/backends.js';
import { createTestEnv, type TestEnv } from '../helpers/env.js';
import { spawnCli } from '../helpers/processes.js';

/** A clock that moves only when told to, running due timers in order. */
class FakeClock implements Clock {
  private t = 0;
  private seq = 0;
  private readonly timers = new Map<number, { at: number; fn: () => void }>();
  now = () => this.t;
  setTimeout = (fn: () => void, ms: number) => {
    const id = ++this.seq;
    this.timers.set(id, { at: this.t + ms, fn });
    return id;
  };
  clearTimeout = (handle: unknown) => {
    this.timers.delete(handle as number);
  };
  advance(ms: number): void {
    const end = this.t + ms;
    for (;;) {
      const next = [...this.timers.entries()]
        .filter(([, timer]) => timer.at <= end)
        .sort(([, a], [, b]) => a.at - b.at)[0];
      if (!next) break;
      this.timers.delete(next[0]);
      this.t = next[1].at;
      next[1].fn();
    }
    this.t = end;
  }
}

/** A worker process that ends when the test says so (or on SIGKILL). */
class FakeWorker implements WorkerProcess {
  static pids = 1000;
  readonly pid = FakeWorker.pids++;
  readonly signals: string[] = [];
  readonly exited: Promise<WorkerExit>;
  private resolve!: (exit: WorkerExit) => void;
  constructor() {
    this.exited = new Promise((resolve) => (this.resolve = resolve));
  }
  signal(signal: 'SIGTERM' | 'SIGKILL'): void {
    this.signals.push(signal);
    if (signal === 'SIGKILL') this.end(null, 'SIGKILL');
  }
  end(code: number | null, signal: NodeJS.Signals | null = null): void {
    this.resolve({ code, signal });
  }
}

/** Lets promise callbacks (exit handlers) run. */
const settle = () => new Promise((resolve) => setImmediate(resolve));

const silent = createLogger({ LOG_LEVEL: 'silent' });

function fakeSupervisor(options: Partial<SupervisorOptions> = {}) {
  const clock = new FakeClock();
  const spawned: FakeWorker[] = [];
  let depth: number | Error = 0;
  const supervisor = new Supervisor(
    {
      min: 0,
      max: 4,
      perWorker: 2,
      intervalMs: 1000,
      idleMs: 10_000,
      killAfterMs: 40_000,
      ...options,
    },
    {
      sample: () =>
        depth instanceof Error
          ? Promise.reject(depth)
          : Promise.resolve({ total: depth, byQueue: { q: depth } }),
      spawn: () => {
        const w = new FakeWorker();
        spawned.push(w);
        return w;
      },
      logger: silent,
      clock,
    },
  );
  const scales: ScaleEvent[] = [];
  supervisor.on('scale', (e) => scales.push(e));
  return {
    supervisor,
    clock,
    spawned,
    scales,
    /** Sets the depth and takes one sample. */
    async tickAt(d: number | Error) {
      depth = d;
      await supervisor.tick();
      await settle();
      return supervisor.state();
    },
  };
}

describe('the supervisor control loop (fake clock and processes)', () => {
  it('computes desired = clamp(ceil(depth / perWorker), min, max)', () => {
    const { supervisor } = fakeSupervisor({ min: 1, max: 4, perWorker: 3 });
    assert.deepEqual(
      [0, 1, 3, 4, 9, 12, 13, 1000].map((d) => supervisor.desiredFor(d)),
      [1, 1, 1, 2, 3, 4, 4, 4],
    );
  });

  it('rejects impossible options', () => {
    assert.throws(() => fakeSupervisor({ min: 3, max: 2 }), /min \(3\) must not exceed max \(2\)/);
    assert.throws(() => fakeSupervisor({ max: 0 }), /max must be at least 1/);
    assert.throws(() => fakeSupervisor({ perWorker: 0 }), /perWorker must be at least 1/);
  });

  it('starts min workers, then scales up at once on depth', async () => {
    const f = fakeSupervisor({ min: 1 });
    f.supervisor.start();
    await settle();
    assert.equal(f.supervisor.state().running, 1);
    assert.equal((await f.tickAt(5)).running, 3);
    assert.equal((await f.tickAt(100)).running, 4, 'capped at max');
    assert.equal(f.spawned.length, 4);
    assert.deepEqual(
      f.scales.map((s) => [s.reason, s.from, s.to]),
      [
        ['start', 0, 1],
        ['scale up', 1, 3],
        ['scale up', 3, 4],
      ],
    );
    await closeFake(f);
  });

  it('scales down only after idleMs below the target, to the peak desired in that window', async () => {
    const f = fakeSupervisor({ idleMs: 10_000 });
    await f.tickAt(8);
    assert.equal(f.supervisor.state().running, 4);
    await f.tickAt(1); // desired 1: the idle window starts
    f.clock.advance(6_000);
    await f.tickAt(4); // desired 2: still below 4, the window goes on with peak 2
    f.clock.advance(3_999);
    assert.equal((await f.tickAt(0)).running, 4, 'not before idleMs');
    f.clock.advance(1);
    const s = await f.tickAt(0);
    assert.equal(s.target, 2);
    assert.equal(s.running, 2);
    assert.equal(s.stopping, 2);
    // The newest two got SIGTERM, the oldest two nothing.
    assert.deepEqual(
      f.spawned.map((w) => w.signals.join()),
      ['', '', 'SIGTERM', 'SIGTERM'],
    );
    for (const w of f.spawned.slice(2)) w.end(0);
    await f.supervisor.waitForWorkers(2);
    assert.equal(f.spawned.length, 4, 'a graceful stop is not replaced');
    await closeFake(f);
  });

  it('cancels a pending scale-down when the depth comes back', async () => {
    const f = fakeSupervisor({ idleMs: 10_000 });
    await f.tickAt(8);
    await f.tickAt(0);
    f.clock.advance(9_000);
    await f.tickAt(8); // back to full demand: the window is forgotten
    f.clock.advance(9_000);
    assert.equal((await f.tickAt(0)).running, 4);
    f.clock.advance(9_999);
    assert.equal((await f.tickAt(0)).running, 4, 'a new window started at the last low sample');
    f.clock.advance(1);
    assert.equal((await f.tickAt(0)).running, 0);
    await closeFake(f);
  });

  it('sends SIGKILL only killAfterMs after the SIGTERM', async () => {
    const f = fakeSupervisor({ idleMs: 0, killAfterMs: 40_000 });
    await f.tickAt(1);
    await f.tickAt(0);
    const [w] = f.spawned;
    assert.ok(w);
    assert.deepEqual(w.signals, ['SIGTERM']);
    f.clock.advance(39_999);
    assert.deepEqual(w.signals, ['SIGTERM']);
    f.clock.advance(1);
    assert.deepEqual(w.signals, ['SIGTERM', 'SIGKILL']);
    await f.supervisor.waitForWorkers(0);
    await closeFake(f);
  });

  it('replaces a worker that dies, at once if it had been up, after a backoff if not', async () => {
    const f = fakeSupervisor({ minUptimeMs: 10_000, restartBackoffMs: 1000 });
    await f.tickAt(4);
    f.clock.advance(60_000);
    const exits: boolean[] = [];
    f.supervisor.on('exit', (e) => exits.push(e.expected));
    f.spawned[0]?.end(null, 'SIGKILL'); // kill -9 from outside
    await settle();
    assert.deepEqual(exits, [false]);
    assert.equal(f.spawned.length, 3, 'replaced at once');
    assert.equal(f.supervisor.state().running, 2);
    // The replacement dies within a second: the next one waits 1 s, then 2 s.
    f.spawned[2]?.end(1);
    await settle();
    assert.equal(f.spawned.length, 3);
    f.clock.advance(999);
    assert.equal(f.spawned.length, 3);
    f.clock.advance(1);
    assert.equal(f.spawned.length, 4);
    f.spawned[3]?.end(1);
    await settle();
    f.clock.advance(1999);
    assert.equal(f.spawned.length, 4);
    f.clock.advance(1);
    assert.equal(f.spawned.length, 5);
    assert.equal(f.supervisor.state().running, 2);
    await closeFake(f);
  });

  it('keeps its workers when the depth cannot be read', async () => {
    const f = fakeSupervisor({ idleMs: 0 });
    await f.tickAt(8);
    const s = await f.tickAt(new Error('redis is away'));
    assert.equal(s.running, 4);
    assert.equal(s.depth, undefined);
    await closeFake(f);
  });

  it('stops every worker gracefully on close', async () => {
    const f = fakeSupervisor();
    await f.tickAt(6);
    const closed = f.supervisor.close();
    await settle();
    assert.deepEqual(
      f.spawned.map((w) => w.signals),
      [['SIGTERM'], ['SIGTERM'], ['SIGTERM']],
    );
    for (const w of f.spawned) w.end(0);
    await closed;
    assert.equal(f.supervisor.state().running + f.supervisor.state().stopping, 0);
    assert.equal(f.spawned.length, 3, 'nothing replaced while closing');
  });
});

async function closeFake(f: ReturnType<typeof fakeSupervisor>): Promise<void> {
  const closed = f.supervisor.close();
  await settle();
  for (const w of f.spawned) w.end(0);
  await closed;
}

describe('queueDepth on the real Redis', { timeout: 60_000 }, () => {
  let t: TestEnv;
  let queues: Queues;
  let redis: ReturnType<typeof createProducerRedis>;
  let config: ReturnType<typeof loadConfig>;

  before(async () => {
    t = await createTestEnv();
    config = loadConfig({ ...t.env, FRESHET_QUEUE_PREFIX: `${t.config.FRESHET_QUEUE_PREFIX}d` });
    redis = createProducerRedis(config);
    queues = createQueues(config, redis);
  });

  after(async () => {
    for (const q of queues?.all() ?? []) await q.obliterate({ force: true }).catch(() => undefined);
    await queues?.close();
    redis?.disconnect();
    await t?.close();
  });

  it('counts waiting, prioritized, active and due delayed jobs; not parents or future delays; 0 when paused', async () => {
    const empty = await queueDepth(queues);
    assert.deepEqual(empty, { total: 0, byQueue: { [STAGE_QUEUE]: 0, [CHUNK_QUEUE]: 0 } });

    await queues.stage.add('a', {}, { jobId: 'a' });
    await queues.stage.add('b', {}, { jobId: 'b' });
    for (const id of ['p1', 'p2', 'p3']) await queues.chunk.add(id, {}, { jobId: id, priority: 2 });
    await queues.chunk.add('later', {}, { jobId: 'later', delay: 3_600_000 });
    // A parent waiting for its child: the child counts, the parent does not.
    const flow = new FlowProducer({ connection: redis, prefix: queues.prefix });
    await flow.add({
      name: 'parent',
      queueName: STAGE_QUEUE,
      opts: { jobId: 'parent' },
      children: [{ name: 'child', queueName: CHUNK_QUEUE, opts: { jobId: 'child' } }],
    });
    await flow.close();
    assert.deepEqual(await queueDepth(queues), {
      total: 6,
      byQueue: { [STAGE_QUEUE]: 2, [CHUNK_QUEUE]: 4 },
    });

    // An active job still counts: it needs its worker.
    const workerRedis = createWorkerRedis(config);
    const worker = new Worker(STAGE_QUEUE, undefined, {
      connection: workerRedis,
      prefix: queues.prefix,
      autorun: false,
    });
    const active = await worker.getNextJob('test-token');
    assert.ok(active, 'a job was taken');
    assert.deepEqual(await queues.stage.getJobCounts('waiting', 'active'), {
      waiting: 1,
      active: 1,
    });
    assert.deepEqual((await queueDepth(queues)).byQueue, { [STAGE_QUEUE]: 2, [CHUNK_QUEUE]: 4 });
    await worker.close(true);
    workerRedis.disconnect();

    // A delayed job counts once it is due: only a worker moves it back to the wait list.
    assert.equal(await queueDepthOf(queues.chunk, redis, Date.now() + 2 * 3_600_000), 5);

    await queues.stage.pause();
    assert.deepEqual((await queueDepth(queues)).byQueue, { [STAGE_QUEUE]: 0, [CHUNK_QUEUE]: 4 });
    await queues.stage.resume();
    assert.equal((await queueDepth(queues)).byQueue[STAGE_QUEUE], 2);
  });
});

describe('freshet workers around a real refresh', { timeout: 400_000 }, () => {
  let t: TestEnv;
  let app: SupervisorApp;
  let runId: string;
  const scales: ScaleEvent[] = [];
  const logLines: Record<string, unknown>[] = [];
  let workerOutput = '';
  const pids = new Set<number>();
  let killed: number | undefined;
  let replacement: number | undefined;
  let peak = 0;
  const MAX = 3;

  const alive = (pid: number) => {
    try {
      process.kill(pid, 0);
    } catch {
      return false;
    }
    // A worker orphaned by its supervisor's death is reaped by init, which in some containers
    // never reaps: an exited process left as a zombie has ended all the same.
    try {
      return readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.[0] !== 'Z';
    } catch {
      return true;
    }
  };
  const diagnostics = () =>
    `supervisor: ${JSON.stringify(app?.supervisor.state())}\nworkers:\n${workerOutput.slice(-3000)}`;

  before(async () => {
    t = await createTestEnv({
      CHUNK_SIZE_ROWS: '100',
      WORKER_CONCURRENCY: '2',
      MAX_ACTIVE_CHUNKS: '6',
    });
    await seedSynthetic(t.dbs.catalog, getMedia(t.media, 'image'), { rows: 8000, seed: 11 });
    const logStream = new Writable({
      write(chunk: Buffer, _encoding, done) {
        for (const line of chunk.toString().split('\n').filter(Boolean)) {
          logLines.push(JSON.parse(line) as Record<string, unknown>);
        }
        done();
      },
    });
    app = await startSupervisor(
      t.config,
      createLogger({ LOG_LEVEL: 'info' }, logStream),
      { min: 0, max: MAX, intervalMs: 250, idleMs: 3_000 },
      {
        spawn: createWorkerSpawner({
          env: t.env,
          output: (chunk) => {
            workerOutput = (workerOutput + chunk.toString()).slice(-20_000);
          },
        }),
      },
    );
    app.supervisor.on('scale', (e) => scales.push(e));
    app.supervisor.on('spawn', (w) => {
      if (w.pid !== undefined) pids.add(w.pid);
    });
    app.supervisor.on('change', (s) => (peak = Math.max(peak, s.running)));
  });

  after(async () => {
    await app?.close();
    await t?.close();
  });

  it('sets the chunk queue global concurrency to MAX_ACTIVE_CHUNKS', async () => {
    assert.equal(await t.queues.chunk.getGlobalConcurrency(), 6);
  });

  it('runs no worker while the queues are empty', async () => {
    let ticks = 0;
    await new Promise<void>((resolve) => {
      const onTick = () => {
        if (++ticks < 3) return;
        app.supervisor.off('tick', onTick);
        resolve();
      };
      app.supervisor.on('tick', onTick);
    });
    assert.equal(app.supervisor.state().running, 0);
    assert.equal(pids.size, 0);
  });

  it(`scales 0 -> ${MAX} when a refresh starts`, async () => {
    runId = await startRefresh(
      { config: t.config, api: t.dbs.api, media: t.media, queues: t.queues },
      { media: 'image' },
    );
    await app.supervisor
      .waitFor((s) => s.running === MAX, 120_000)
      .catch((err: Error) => {
        throw new Error(`${err.message}\n${diagnostics()}`);
      });
    assert.equal(scales[0]?.from, 0);
    assert.equal(scales[0]?.reason, 'scale up');
  });

  it('replaces a worker killed with SIGKILL in the middle of a chunk', async () => {
    // The victim is a supervised worker running a chunk step (and no stage job) right now.
    let victim: number | undefined;
    await waitUntil(
      async () => {
        const { rows } = await t.dbs.api.query<{ worker: string; chunks: number; stages: number }>(
          `SELECT worker, count(chunk)::int AS chunks, count(*) FILTER (WHERE chunk IS NULL)::int AS stages
             FROM freshet.attempts WHERE run_id = $1 AND status = 'running' GROUP BY worker`,
          [runId],
        );
        const running = app.supervisor.state().workers.filter((w) => !w.stopping);
        victim = rows
          .filter((r) => r.chunks > 0 && r.stages === 0)
          .map((r) => Number(r.worker.split(':').pop()))
          .find((pid) => running.some((w) => w.pid === pid));
        return victim !== undefined;
      },
      'a supervised worker runs a chunk step',
      60_000,
    );
    assert.ok(victim !== undefined);
    const before = new Set(pids);
    const exited = new Promise<boolean>((resolve) =>
      app.supervisor.on('exit', (e) => e.pid === victim && resolve(e.expected)),
    );
    process.kill(victim, 'SIGKILL');
    killed = victim;
    assert.equal(await exited, false, 'the kill is seen as unexpected');
    const s = await app.supervisor
      .waitFor(
        (st) => st.running === MAX && st.workers.some((w) => !before.has(w.pid ?? -1)),
        60_000,
      )
      .catch((err: Error) => {
        throw new Error(`${err.message}\n${diagnostics()}`);
      });
    replacement = s.workers.find((w) => !before.has(w.pid ?? -1))?.pid;
    assert.ok(replacement !== undefined && replacement !== victim);
    assert.equal(alive(victim), false);
  });

  it('finishes the run with exact counts', async () => {
    await t.waitForRunEnd(runId, 240_000).catch((err: Error) => {
      throw new Error(`${err.message}\n${diagnostics()}`);
    });
    const run = await t.store.getRun(runId);
    assert.equal(run.status, 'succeeded', run.error ?? '');
    const table = await t.dbs.api.query<{ n: number; d: number }>(
      'SELECT count(*)::int AS n, count(DISTINCT identifier)::int AS d FROM image',
    );
    const docs = await t.es.count({ index: `${t.config.ELASTICSEARCH_INDEX_PREFIX}image` });
    assert.equal(table.rows[0]?.n, table.rows[0]?.d, 'no identifier twice');
    assert.equal(docs.count, table.rows[0]?.n, 'alias documents == table rows');
    const eligible = await t.dbs.catalog.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM image u WHERE NOT removed_from_source
         AND NOT EXISTS (SELECT 1 FROM deleted_image d WHERE d.identifier = u.identifier)`,
    );
    const rejected = Object.values(
      (run.counts as { rejected: Record<string, number> }).rejected,
    ).reduce((a, b) => a + b, 0);
    assert.equal(
      (table.rows[0]?.n ?? 0) + rejected,
      eligible.rows[0]?.n,
      'every upstream row is indexed or rejected with a reason, none twice',
    );
    const workers = await t.dbs.api.query<{ worker: string }>(
      'SELECT DISTINCT worker FROM freshet.attempts WHERE run_id = $1',
      [runId],
    );
    assert.ok(workers.rows.length >= 2, `work done by ${JSON.stringify(workers.rows)}`);
  });

  it('returns to 0 workers when idle, each stopped gracefully', async () => {
    await app.supervisor.waitForWorkers(0, 60_000);
    assert.equal(peak, MAX);
    assert.deepEqual(scales.at(-1), {
      from: scales.at(-1)?.from,
      to: 0,
      depth: 0,
      reason: 'scale down',
    });
    for (const pid of pids) await waitUntil(() => !alive(pid), `worker ${pid} is gone`, 10_000);
    // Every exit after the scale-down was a graceful one (code 0), the killed one aside.
    const exits = logLines.filter((l) => l.msg === 'worker stopped');
    assert.ok(exits.length >= MAX, `${exits.length} graceful stops`);
    for (const e of exits) assert.equal(e.code, 0, JSON.stringify(e));
    assert.ok(
      logLines.some((l) => l.msg === 'worker exited unexpectedly' && l.workerPid === killed),
    );
  });

  it('logs every scaling decision', () => {
    const decisions = logLines.filter((l) =>
      /^(scale up|scale down): \d+ -> \d+ workers$/.test(String(l.msg)),
    );
    assert.equal(decisions.length, scales.length);
    for (const d of decisions) {
      assert.equal(typeof d.depth, 'number');
      assert.equal(typeof d.from, 'number');
      assert.equal(typeof d.to, 'number');
      assert.equal(d.app, 'supervisor');
    }
  });

  it('runs as `freshet workers`, and stops its workers on SIGTERM', async () => {
    const cli = spawnCli(['workers', '--min', '1', '--max', '2', '--interval-ms', '200'], {
      ...t.env,
      LOG_LEVEL: 'info',
    });
    await cli.waitFor(/"msg":"worker started"/, 60_000);
    const spawned = /"workerPid":(\d+)[^\n]*"msg":"worker started by supervisor"/.exec(
      cli.output(),
    );
    const pid = Number(spawned?.[1]);
    assert.ok(alive(pid), cli.output().slice(-2000));
    assert.equal(await cli.stop('SIGTERM'), 0, cli.output().slice(-2000));
    assert.match(cli.output(), /"msg":"worker stopped"/);
    assert.match(cli.output(), /"msg":"supervisor stopped"/);
    assert.equal(alive(pid), false, 'the worker is gone with its supervisor');
  });

  it('stops its workers gracefully when it is killed with SIGKILL', async () => {
    const cli = spawnCli(['workers', '--min', '2', '--max', '2', '--interval-ms', '200'], {
      ...t.env,
      LOG_LEVEL: 'info',
      SHUTDOWN_TIMEOUT_MS: '10000',
    });
    const workerPids: number[] = [];
    try {
      // Both workers up and taking jobs: each has logged `worker started` under its own pid.
      await cli.waitFor(/"msg":"worker started"[\s\S]*"msg":"worker started"/, 60_000);
      for (const [, pid] of cli
        .output()
        .matchAll(/"workerPid":(\d+)[^\n]*"msg":"worker started by supervisor"/g)) {
        workerPids.push(Number(pid));
      }
      assert.equal(workerPids.length, 2, cli.output().slice(-2000));
      for (const pid of workerPids) {
        assert.match(cli.output(), new RegExp(`"pid":${pid},[^\n]*"msg":"worker started"`));
      }
      assert.equal(await cli.stop('SIGKILL'), null, 'the supervisor died at once');
      for (const pid of workerPids) {
        await waitUntil(
          () => !alive(pid),
          `worker ${pid} exits after its supervisor`,
          20_000,
        ).catch((err: Error) => {
          throw new Error(`${err.message}\n${cli.output().slice(-3000)}`);
        });
      }
      // Gracefully: each noticed, closed its worker, then exited. (Its log reaches the pipe it
      // shares with the dead supervisor; the last lines may still be in flight.)
      for (const pid of workerPids) {
        await cli.waitFor(new RegExp(`"pid":${pid},[^\n]*"msg":"supervisor gone`), 5_000);
        await cli.waitFor(new RegExp(`"pid":${pid},[^\n]*"msg":"worker stopped"`), 5_000);
      }
    } finally {
      // Never leave workers behind when the test fails (they would take other tests' jobs).
      for (const pid of workerPids) if (alive(pid)) process.kill(pid, 'SIGKILL');
    }
  });

  it('refuses --min above --max with a usage error', async () => {
    const cli = spawnCli(['workers', '--min', '3', '--max', '2'], t.env);
    assert.equal(await new Promise((resolve) => cli.child.once('exit', resolve)), 2);
    assert.match(cli.output(), /--min \(3\) must not exceed --max \(2\)/);
  });
});
