import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pg from 'pg';
import {
  aliasFilters,
  getMedia,
  nonSensitiveQuery,
  refreshNames,
  repoRoot,
  type EsClient,
  type MediaCatalog,
  type RefreshNames,
  type RunRow,
  type RunStore,
} from '@freshet/core';
import { waitUntil } from './backends.js';
import type { TestEnv } from './env.js';
import { spawnCli, type CliProcess } from './processes.js';

/** A TCP port on 127.0.0.1 that was free a moment ago (bound by the OS, then released). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => {
        if (address && typeof address === 'object') resolve(address.port);
        else reject(new Error(`unexpected server address ${String(address)}`));
      });
    });
  });
}

function exited(child: ChildProcess): boolean {
  return child.exitCode !== null || child.signalCode !== null;
}

// ---------------------------------------------------------------------------------------------
// Redis of the test's own: AOF on, noeviction, on its own port, stopped and started at will.
// ---------------------------------------------------------------------------------------------

export interface RedisServer {
  readonly port: number;
  /** redis://[:password@]127.0.0.1:port */
  readonly url: string;
  readonly dir: string;
  /** Starts the server (again) on the same port and data dir; resolves once it answers PING. */
  start(): Promise<void>;
  /** `redis-cli shutdown` (which writes the AOF) and waits for the process to exit. */
  shutdown(): Promise<void>;
  /** Stops the server if it runs and removes its data dir. */
  close(): Promise<void>;
  /** Everything the server printed. */
  output(): string;
}

/**
 * A redis-server child process (`--daemonize no`) with AOF on, `noeviction`, its data in a fresh
 * temporary dir, optionally with a password. Resolves once it answers PING.
 */
export async function startRedisServer(opts: { password?: string } = {}): Promise<RedisServer> {
  const port = await freePort();
  const dir = mkdtempSync(path.join(tmpdir(), 'freshet-redis-'));
  // Removed by close(); and at exit, should a test end without reaching it.
  process.once('exit', () => rmSync(dir, { recursive: true, force: true }));
  const auth = opts.password ? ['-a', opts.password, '--no-auth-warning'] : [];
  let child: ChildProcess | undefined;
  let out = '';
  const cli = (...args: string[]) =>
    spawnSync('redis-cli', ['-h', '127.0.0.1', '-p', String(port), ...auth, ...args], {
      encoding: 'utf8',
      timeout: 10_000,
    });
  const server: RedisServer = {
    port,
    url: opts.password
      ? `redis://:${encodeURIComponent(opts.password)}@127.0.0.1:${port}`
      : `redis://127.0.0.1:${port}`,
    dir,
    output: () => out,
    async start() {
      if (child && !exited(child)) return;
      child = spawn(
        'redis-server',
        [
          '--port',
          String(port),
          '--bind',
          '127.0.0.1',
          '--dir',
          dir,
          '--appendonly',
          'yes',
          '--save',
          '',
          '--maxmemory-policy',
          'noeviction',
          '--daemonize',
          'no',
          ...(opts.password ? ['--requirepass', opts.password] : []),
        ],
        { stdio: ['ignore', 'pipe', 'pipe'] },
      );
      child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
      child.stderr?.on('data', (d: Buffer) => (out += d.toString()));
      const proc = child;
      await waitUntil(
        () => {
          if (exited(proc)) throw new Error(`redis-server exited during start:\n${out}`);
          return cli('ping').stdout.includes('PONG');
        },
        `redis-server answers on port ${port}`,
        20_000,
      );
    },
    async shutdown() {
      if (!child || exited(child)) return;
      const gone = once(child, 'exit');
      cli('shutdown');
      await gone;
    },
    async close() {
      if (child && !exited(child)) {
        const gone = once(child, 'exit');
        child.kill('SIGKILL');
        await gone;
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
  await server.start();
  return server;
}

// ---------------------------------------------------------------------------------------------
// A second Elasticsearch node of the test's own (never the shared one on 9200).
// ---------------------------------------------------------------------------------------------

export interface EsNode {
  readonly port: number;
  readonly url: string;
  /** Starts the node (again), with its data kept; resolves at yellow health. */
  start(): Promise<void>;
  /** SIGTERM, and waits for the process to be gone. */
  stop(): Promise<void>;
  /** Stops the node and removes its data and config dirs. */
  remove(): Promise<void>;
}

/**
 * Runs `scripts/services.sh <args>` and resolves with what it printed; rejects with `failure`
 * and the output when it exits non-zero.
 */
export async function runServices(
  args: string[],
  env: NodeJS.ProcessEnv = process.env,
  failure = `services.sh ${args.join(' ')} failed`,
): Promise<string> {
  const child = spawn('bash', [path.join(repoRoot, 'scripts/services.sh'), ...args], {
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (out += d.toString()));
  const [code] = (await once(child, 'exit')) as [number | null];
  if (code !== 0) throw new Error(`${failure}:\n${out}`);
  return out;
}

/** Whether a process with this pid exists. */
export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/**
 * A single-node Elasticsearch started by scripts/services.sh on a free port, with its own data
 * and config dirs (FRESHET_ES_DATA / FRESHET_ES_CONF) and extra YAML settings. 20-30 s to start.
 */
export async function startEsNode(settings: string[] = []): Promise<EsNode> {
  let port = await freePort();
  // The transport port is the HTTP port + 100: both must be free.
  for (let i = 0; i < 20 && (port + 100 > 65535 || !(await portFree(port + 100))); i++) {
    port = await freePort();
  }
  const base = mkdtempSync(path.join(tmpdir(), 'freshet-es-'));
  // The Elasticsearch user must be able to reach its dirs under the root-only temp dir.
  chmodSync(base, 0o755);
  const data = path.join(base, 'data');
  const env = {
    ...process.env,
    FRESHET_ES_PORT: String(port),
    FRESHET_ES_HEAP: '512m',
    FRESHET_ES_DATA: data,
    FRESHET_ES_CONF: path.join(base, 'conf'),
    FRESHET_ES_SETTINGS: settings.join('\n'),
  };
  const pid = () => {
    const file = path.join(data, 'es.pid');
    return existsSync(file) ? Number(readFileSync(file, 'utf8').trim()) : null;
  };
  const node: EsNode = {
    port,
    url: `http://127.0.0.1:${port}`,
    async start() {
      await runServices(['elasticsearch'], env, `Elasticsearch on port ${port} did not start`);
    },
    async stop() {
      const p = pid();
      if (p === null || !alive(p)) return;
      process.kill(p, 'SIGTERM');
      await waitUntil(() => !alive(p), `Elasticsearch pid ${p} exits`, 60_000);
    },
    async remove() {
      await node.stop();
      rmSync(base, { recursive: true, force: true });
    },
  };
  try {
    await node.start();
  } catch (err) {
    await node.remove();
    throw err;
  }
  return node;
}

function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}

// ---------------------------------------------------------------------------------------------
// Worker processes under a supervisor-like loop that replaces the ones that die.
// ---------------------------------------------------------------------------------------------

export interface WorkerPool {
  /** Every worker process ever started, in order. */
  readonly all: CliProcess[];
  /** Workers still running. */
  alive(): CliProcess[];
  /** Resolves once every running worker has printed `worker started`. */
  ready(timeoutMs?: number): Promise<void>;
  /** SIGKILLs the worker with this pid and waits for it to be gone (the pool starts another). */
  kill(pid: number): Promise<void>;
  /** Starts one more worker. */
  add(): CliProcess;
  /** All the output of all workers. */
  output(): string;
  /** Stops respawning, then stops every worker (SIGTERM, SIGKILL after 15 s). */
  close(): Promise<void>;
}

/** `size` `freshet worker` processes; with `respawn`, a worker that dies is replaced at once. */
export function startWorkerPool(
  env: NodeJS.ProcessEnv,
  size: number,
  opts: { respawn?: boolean } = {},
): WorkerPool {
  const all: CliProcess[] = [];
  let closing = false;
  const add = (): CliProcess => {
    const w = spawnCli(['worker'], env);
    all.push(w);
    w.child.once('exit', () => {
      if (!closing && opts.respawn) add();
    });
    return w;
  };
  for (let i = 0; i < size; i++) add();
  const running = () => all.filter((w) => !exited(w.child));
  return {
    all,
    alive: running,
    add,
    async ready(timeoutMs = 60_000) {
      await Promise.all(running().map((w) => w.waitFor(/worker started/, timeoutMs)));
    },
    async kill(pid) {
      const w = all.find((x) => x.child.pid === pid);
      if (!w) throw new Error(`no worker with pid ${pid}`);
      await w.stop('SIGKILL');
    },
    output: () => all.map((w) => w.output()).join('\n'),
    async close() {
      closing = true;
      await Promise.all(
        running().map(async (w) => {
          const timer = setTimeout(() => w.child.kill('SIGKILL'), 15_000);
          await w.stop('SIGTERM');
          clearTimeout(timer);
        }),
      );
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Waiting on runs, and the exact accounting every fault test asserts.
// ---------------------------------------------------------------------------------------------

export const endStatuses = ['succeeded', 'failed', 'blocked', 'cancelled'] as const;

/** Polls the run store (PostgreSQL: it survives Redis restarts) until the run is in `statuses`. */
export async function waitForRunStatus(
  store: RunStore,
  runId: string,
  statuses: readonly string[] = endStatuses,
  timeoutMs = 120_000,
): Promise<RunRow> {
  let run: RunRow | undefined;
  try {
    await waitUntil(
      async () => {
        run = await store.getRun(runId);
        return statuses.includes(run.status);
      },
      `run ${runId} is ${statuses.join(' or ')}`,
      timeoutMs,
    );
  } catch (err) {
    throw new Error(
      `${(err as Error).message}; it is ${run?.status ?? '?'} at ${run?.stage ?? '?'} (${run?.error ?? 'no error'})`,
      { cause: err },
    );
  }
  return run as RunRow;
}

export interface Accounting {
  /** Rows in the upstream table. */
  readonly upstream: number;
  /** Skipped by the copy, by reason (removed, deleted), as the run counted them. */
  readonly skipped: Record<string, number>;
  /** Rejected with a reason, as the run counted them. */
  readonly rejected: Record<string, number>;
  /** upstream - skipped - rejected. */
  readonly expected: number;
  readonly tableRows: number;
  readonly distinctKeys: number;
  readonly docs: number;
  /**
   * Documents of the run's filtered view: its filtered index's (`index` mode), or its main
   * index's through the filtered alias's filter (`alias` mode).
   */
  readonly filteredDocs: number;
  /** Indices holding the media's alias and filtered alias. */
  readonly aliasHolders: string[];
  readonly filteredAliasHolders: string[];
  /** The filtered alias's filter on each of its holders (null: none). */
  readonly filteredAliasFilters: unknown[];
  readonly names: RefreshNames;
}

const sum = (o: Record<string, number>) => Object.values(o).reduce((a, b) => a + Number(b), 0);

/**
 * Counts everything a finished run's exactness depends on: the upstream rows, what the run says it
 * skipped and rejected (freshet.runs.counts), the promoted table's rows and distinct keys, and the
 * documents in the run's own index. Call it before a later run replaces the table. `media`: the
 * definitions the run was built with (default: the test's), which decide its filtered mode.
 */
export async function accounting(
  t: TestEnv,
  runId: string,
  media: MediaCatalog = t.media,
): Promise<Accounting> {
  const run = await t.store.getRun(runId);
  const def = getMedia(media, run.media);
  const names = refreshNames(def, run.profile, runId, t.config.ELASTICSEARCH_INDEX_PREFIX);
  const counts = (run.counts ?? {}) as {
    skipped?: Record<string, number>;
    rejected?: Record<string, number>;
  };
  const upstream = await t.dbs.catalog.query<{ n: number }>(
    `SELECT count(*)::bigint AS n FROM "${def.upstreamTable}"`,
  );
  const table = await t.dbs.api.query<{ n: number; d: number }>(
    `SELECT count(*)::bigint AS n, count(DISTINCT "${def.key.column}")::bigint AS d FROM "${names.table}"`,
  );
  await t.es.indices.refresh({ index: names.indices.join(',') });
  const docs = (await t.es.count({ index: names.index })).count;
  const filteredDocs = (
    names.filteredIndex === null
      ? await t.es.count({ index: names.index, query: nonSensitiveQuery() })
      : await t.es.count({ index: names.filteredIndex })
  ).count;
  const holders = async (name: string) => (await aliasFilters(t.es, name)).map((h) => h.index);
  const filtered = await aliasFilters(t.es, names.filteredAlias);
  const skipped = counts.skipped ?? {};
  const rejected = counts.rejected ?? {};
  const upstreamRows = Number(upstream.rows[0]?.n ?? 0);
  return {
    upstream: upstreamRows,
    skipped,
    rejected,
    expected: upstreamRows - sum(skipped) - sum(rejected),
    tableRows: Number(table.rows[0]?.n ?? 0),
    distinctKeys: Number(table.rows[0]?.d ?? 0),
    docs,
    filteredDocs,
    aliasHolders: await holders(names.alias),
    filteredAliasHolders: filtered.map((h) => h.index),
    filteredAliasFilters: filtered.map((h) => h.filter),
    names,
  };
}

/** The one line every fault test ends on: table rows == distinct keys == documents == expected. */
export function exactnessProblems(a: Accounting): string[] {
  const problems: string[] = [];
  if (a.tableRows !== a.distinctKeys)
    problems.push(`${a.tableRows - a.distinctKeys} identifier(s) twice in ${a.names.table}`);
  if (a.docs !== a.tableRows)
    problems.push(
      `${a.names.index} holds ${a.docs} documents, ${a.names.table} ${a.tableRows} rows`,
    );
  if (a.tableRows !== a.expected) {
    problems.push(
      `${a.names.table} holds ${a.tableRows} rows, expected ${a.expected} = ${a.upstream} upstream - skipped ${JSON.stringify(a.skipped)} - rejected ${JSON.stringify(a.rejected)}`,
    );
  }
  if (a.filteredDocs > a.docs) problems.push(`more filtered documents than documents`);
  if (a.aliasHolders.join() !== a.names.index)
    problems.push(`alias ${a.names.alias} is on ${a.aliasHolders.join(',') || 'nothing'}`);
  const filtered = a.names.aliases[1];
  if (a.filteredAliasHolders.join() !== filtered.index) {
    problems.push(
      `alias ${a.names.filteredAlias} is on ${a.filteredAliasHolders.join(',') || 'nothing'}, not ${filtered.index}`,
    );
  }
  if (JSON.stringify(a.filteredAliasFilters) !== JSON.stringify([filtered.filter ?? null])) {
    problems.push(
      `alias ${a.names.filteredAlias} has filter ${JSON.stringify(a.filteredAliasFilters)}, not ${JSON.stringify(filtered.filter ?? null)}`,
    );
  }
  return problems;
}

/**
 * Chunk steps that ran more than once to a different result: every `done` attempt of one step of
 * one chunk must report the same row count. Also lists chunk steps not done.
 */
export async function chunkDisagreements(t: TestEnv, runId: string): Promise<unknown[]> {
  const { rows } = await t.dbs.api.query<{ chunk: number; step: string; rows: unknown }>(
    `SELECT chunk, step, array_agg(DISTINCT rows) AS rows FROM freshet.attempts
      WHERE run_id = $1 AND chunk IS NOT NULL AND status = 'done'
      GROUP BY chunk, step HAVING count(DISTINCT rows) > 1
     UNION ALL
     SELECT chunk, 'not done: ' || index_status, NULL
       FROM freshet.chunks WHERE run_id = $1
        AND index_status <> 'done'`,
    [runId],
  );
  return rows;
}

/** md5 of a table's rows in key order. */
export async function tableChecksum(pool: pg.Pool, table: string, key: string): Promise<string> {
  const { rows } = await pool.query<{ md5: string | null }>(
    `SELECT md5(coalesce(string_agg(t::text, E'\\n' ORDER BY t."${key}"), '')) AS md5 FROM "${table}" t`,
  );
  return rows[0]?.md5 ?? '';
}

/** md5 of an index's documents (id and source), in id order; for indices of up to 10,000 docs. */
export async function indexChecksum(
  es: EsClient,
  index: string,
  query?: Record<string, unknown>,
): Promise<string> {
  await es.indices.refresh({ index });
  const res = await es.search<Record<string, unknown>>({
    index,
    size: 10_000,
    track_total_hits: true,
    ...(query === undefined ? {} : { query }),
  });
  const total = typeof res.hits.total === 'number' ? res.hits.total : (res.hits.total?.value ?? 0);
  if (total > 10_000) throw new Error(`indexChecksum reads at most 10,000 documents (${index})`);
  const lines = res.hits.hits
    .map((h) => `${h._id ?? ''} ${JSON.stringify(h._source)}`)
    .sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  return createHash('md5').update(lines.join('\n')).digest('hex');
}

/**
 * Checksum of the documents of a run's filtered view: its filtered index (`index` mode), or its
 * main index through the filtered alias's filter (`alias` mode).
 */
export function filteredViewChecksum(es: EsClient, names: RefreshNames): Promise<string> {
  return names.filteredIndex === null
    ? indexChecksum(es, names.index, nonSensitiveQuery())
    : indexChecksum(es, names.filteredIndex);
}

// ---------------------------------------------------------------------------------------------
// Checkpoints: make a worker stop at an exact point, from PostgreSQL, with no hook in its code.
// ---------------------------------------------------------------------------------------------

/** Advisory lock keys of checkpoints: this base plus a counter. */
const CHECKPOINT_KEY = 7_466_500;

/** One armed checkpoint. */
export interface Checkpoint {
  /** Resolves with the backend pid of the statement held at the checkpoint. */
  reached(timeoutMs?: number): Promise<number>;
  /**
   * Ends the held statement without letting it write (its backend is terminated, as if its
   * process had died before the statement) and removes the trigger.
   */
  abort(pid: number): Promise<void>;
  /** Lets the held statement (and any later one) go on, and removes the trigger. */
  release(): Promise<void>;
}

export interface Checkpoints {
  /**
   * Arms a checkpoint: a statement matching it (a BEFORE trigger on `table` for `event`, with the
   * SQL condition `when` over NEW) waits inside the statement until the test aborts or releases it.
   */
  arm(table: string, event: 'INSERT' | 'UPDATE', when: string): Promise<Checkpoint>;
  close(): Promise<void>;
}

/**
 * Checkpoints in a database: a BEFORE trigger whose function waits on an advisory lock the test
 * holds. A worker reaching it stops inside that statement; the test can then kill the worker at
 * exactly that point. Test-only objects (a function and triggers) in the test's own database.
 */
export async function openCheckpoints(url: string): Promise<Checkpoints> {
  const holder = new pg.Client({ connectionString: url, application_name: 'freshet-test-hold' });
  holder.on('error', () => undefined);
  await holder.connect();
  await holder.query(
    `CREATE OR REPLACE FUNCTION public.fault_checkpoint() RETURNS trigger LANGUAGE plpgsql AS $$
     BEGIN PERFORM pg_advisory_xact_lock_shared(TG_ARGV[0]::bigint); RETURN NEW; END $$`,
  );
  let n = 0;
  const armed = new Map<string, { table: string; key: number }>();
  const drop = async (name: string) => {
    const a = armed.get(name);
    if (!a) return;
    armed.delete(name);
    // Unlock first: a statement held in the trigger keeps its table locked until it goes on, and
    // DROP TRIGGER waits for that lock.
    await holder.query('SELECT pg_advisory_unlock($1)', [a.key]);
    await holder.query(`DROP TRIGGER IF EXISTS ${name} ON ${a.table}`);
  };
  return {
    async arm(table, event, when) {
      const key = CHECKPOINT_KEY + ++n;
      const name = `fault_checkpoint_${n}`;
      await holder.query('SELECT pg_advisory_lock($1)', [key]);
      await holder.query(
        `CREATE TRIGGER ${name} BEFORE ${event} ON ${table} FOR EACH ROW
           WHEN (${when}) EXECUTE FUNCTION public.fault_checkpoint('${key}')`,
      );
      armed.set(name, { table, key });
      return {
        async reached(timeoutMs = 60_000) {
          let pid: number | undefined;
          await waitUntil(
            async () => {
              const { rows } = await holder.query<{ pid: number }>(
                `SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND NOT granted
                   AND classid = 0 AND objid = $1 AND objsubid = 1
                   AND database = (SELECT oid FROM pg_database WHERE datname = current_database())`,
                [key],
              );
              pid = rows[0]?.pid;
              return pid !== undefined;
            },
            `a worker reaches checkpoint ${name} (${event} ${table} when ${when})`,
            timeoutMs,
          );
          return pid as number;
        },
        async abort(pid) {
          await holder.query('SELECT pg_terminate_backend($1)', [pid]);
          await waitUntil(
            async () =>
              (await holder.query('SELECT 1 FROM pg_stat_activity WHERE pid = $1', [pid]))
                .rowCount === 0,
            `backend ${pid} is gone`,
            10_000,
          );
          await drop(name);
        },
        release: () => drop(name),
      };
    },
    async close() {
      for (const name of [...armed.keys()]) await drop(name).catch(() => undefined);
      await holder.end().catch(() => undefined);
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Test media types (definitions file + mapping), beyond test/helpers/clip-media.ts.
// ---------------------------------------------------------------------------------------------

/** The mapping of every fault-test media type (core features only). */
export const faultMapping = {
  settings: { index: { number_of_shards: 1 } },
  mappings: {
    dynamic: 'strict',
    properties: {
      id: { type: 'long' },
      title: { type: 'text' },
      provider: { type: 'keyword' },
      license: { type: 'keyword' },
      url: { type: 'keyword' },
      thumbnail: { type: 'keyword' },
      description: { type: 'text' },
      tags: {
        dynamic: false,
        properties: {
          name: { type: 'text' },
          accuracy: { type: 'float' },
          provider: { type: 'keyword' },
        },
      },
    },
  },
};

/**
 * A media definition over an upstream table `table` with integer keys. `hostile: true` makes the
 * key nullable (the table has no primary key) and keeps tags and meta (read for `description`)
 * in `json` columns, which, unlike jsonb, can hold \u0000 and lone surrogate escapes.
 */
export function faultDefinition(table: string, opts: { hostile?: boolean } = {}) {
  const hostile = opts.hostile === true;
  return {
    upstreamTable: table,
    downstreamTable: table,
    key: { column: 'id', type: 'bigint' },
    providerColumn: 'provider',
    columns: [
      { name: 'id', type: 'bigint', ...(hostile ? {} : { notNull: true }) },
      { name: 'title', type: 'text' },
      { name: 'provider', type: 'varchar(40)' },
      { name: 'license', type: 'varchar(20)', notNull: true },
      { name: 'url', type: 'text', notNull: true },
      { name: 'thumbnail', type: 'text' },
      { name: 'tags', type: hostile ? 'json' : 'jsonb' },
      { name: 'meta', type: hostile ? 'json' : 'jsonb' },
    ],
    cleaning: {
      urlColumns: ['url', 'thumbnail'],
      licenseColumn: 'license',
      tags: {
        column: 'tags',
        minAccuracy: 0.9,
        denylistedProviders: ['badprovider'],
        denylist: ['no person'],
        denylistSubstrings: ['uploaded:by'],
        maxNameLength: 255,
      },
    },
    document: {
      mapping: 'fault.json',
      fields: {
        id: 'id',
        title: 'title',
        provider: 'provider',
        license: 'license',
        url: 'url',
        thumbnail: 'thumbnail',
        tags: 'tags',
        description: { column: 'meta', key: 'description' },
      },
      sensitiveFields: ['title', 'tags'],
    },
    chunkSizeRows: 100,
  };
}

/**
 * Writes a definitions file holding `definitions` (by media name), the fault mapping
 * (`fault.json`) and any other mapping files in `mappings` (by file name).
 */
export function writeFaultMedia(
  definitions: Record<string, unknown>,
  mappings: Record<string, unknown> = {},
): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'freshet-faults-'));
  process.once('exit', () => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(path.join(dir, 'fault.json'), JSON.stringify(faultMapping));
  for (const [file, body] of Object.entries(mappings)) {
    writeFileSync(path.join(dir, file), JSON.stringify(body));
  }
  const file = path.join(dir, 'media.json');
  writeFileSync(file, JSON.stringify(definitions));
  return file;
}

/**
 * Creates the catalog table `table` for {@link faultDefinition} (a primary key unless hostile)
 * and fills it with `rows` ordinary rows at sparse keys (id = 7 i), with some dirt: every 25th
 * row has no license, every 40th a URL that is not one, every 10th a low-accuracy tag.
 */
export async function seedFaultTable(
  catalog: pg.Pool,
  table: string,
  rows: number,
  opts: { hostile?: boolean; from?: number } = {},
): Promise<void> {
  const hostile = opts.hostile === true;
  await catalog.query(
    `CREATE TABLE IF NOT EXISTS "${table}" (id bigint ${hostile ? '' : 'PRIMARY KEY'}, title text,
       provider varchar(40), license varchar(20) NOT NULL, url text NOT NULL, thumbnail text,
       tags ${hostile ? 'json' : 'jsonb'}, meta ${hostile ? 'json' : 'jsonb'})`,
  );
  await catalog.query(
    `INSERT INTO "${table}" (id, title, provider, license, url, thumbnail, tags, meta)
     SELECT i * 7, 'clip ' || i, 'p' || (i % 13),
            CASE WHEN i % 25 = 0 THEN '' WHEN i % 10 = 0 THEN 'BY' ELSE 'by' END,
            CASE WHEN i % 40 = 0 THEN 'javascript:alert(' || i || ')' ELSE 'example.org/clip/' || i END,
            'https://example.org/thumb/' || i,
            jsonb_build_array(jsonb_build_object('name', 'tag' || (i % 7), 'accuracy',
              CASE WHEN i % 10 = 0 THEN 0.5 ELSE 0.95 END))::text::${hostile ? 'json' : 'jsonb'},
            jsonb_build_object('description', 'the clip ' || i)::text::${hostile ? 'json' : 'jsonb'}
       FROM generate_series($1::int, $2::int) AS i`,
    [opts.from ?? 1, (opts.from ?? 1) + rows - 1],
  );
}

/**
 * Creates the catalog view `view` over `table` whose rows a job's query can only read once the
 * test lets it: the view takes a shared advisory lock keyed by the job's step (`c1.index`, from
 * the `freshet <runId>.c1.index` application_name every job connection carries), and
 * {@link holdSource} holds that key. A query of a job not held passes straight through.
 */
export async function createHoldView(catalog: pg.Pool, view: string, table: string): Promise<void> {
  await catalog.query(
    `CREATE OR REPLACE VIEW "${view}" AS SELECT c.* FROM "${table}" c
      WHERE (SELECT count(*) FROM (SELECT pg_advisory_xact_lock_shared(hashtext(
        regexp_replace(current_setting('application_name'), '^freshet [^.]*[.]', '')))) x) = 1`,
  );
}

export interface SourceHold {
  /** Resolves with the pid of the catalog backend of `step` waiting at the hold. */
  reached(timeoutMs?: number): Promise<number>;
  release(): Promise<void>;
}

/** Holds the source query of one job step (e.g. `c1.index`) at a {@link createHoldView} view. */
export async function holdSource(url: string, step: string): Promise<SourceHold> {
  const client = new pg.Client({ connectionString: url, application_name: 'freshet-test-hold' });
  client.on('error', () => undefined);
  await client.connect();
  await client.query('SELECT pg_advisory_lock(hashtext($1))', [step]);
  return {
    async reached(timeoutMs = 60_000) {
      let pid: number | undefined;
      await waitUntil(
        async () => {
          const { rows } = await client.query<{ pid: number }>(
            `SELECT pid FROM pg_stat_activity WHERE application_name LIKE $1
               AND datname = current_database()
               AND wait_event_type = 'Lock' AND wait_event = 'advisory'`,
            [`freshet %.${step}`],
          );
          pid = rows[0]?.pid;
          return pid !== undefined;
        },
        `the source query of ${step} is held`,
        timeoutMs,
      );
      return pid as number;
    },
    async release() {
      await client.end().catch(() => undefined);
    },
  };
}

/**
 * Scans `text` for each secret (and its URL-encoded form); returns the secrets found, with a
 * little context, so a failure shows where the leak is.
 */
export function leakedSecrets(text: string, secrets: readonly string[]): string[] {
  const found: string[] = [];
  for (const s of secrets) {
    for (const form of new Set([s, encodeURIComponent(s)])) {
      const i = text.indexOf(form);
      if (i >= 0) found.push(`${s} at: ${text.slice(Math.max(0, i - 120), i + form.length + 40)}`);
    }
  }
  return found;
}
