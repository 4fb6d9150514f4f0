import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import {
  chmodSync,
  chownSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  rmSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { waitUntil } from './backends.js';
import { freePort } from './faults.js';

/** The OS user that owns the data dir and runs the server (initdb and postgres refuse root). */
const PG_OS_USER = 'postgres';

/** A PostgreSQL server of the test's own, stopped and started at will. */
export interface PgServer {
  readonly port: number;
  /** postgres://postgres@127.0.0.1:port/postgres (trust auth): where the test's databases go. */
  readonly adminUrl: string;
  readonly dataDir: string;
  /**
   * Stops the server and waits for its process to exit: `fast` (SIGINT: sessions are terminated,
   * a clean shutdown) or `immediate` (SIGQUIT: no shutdown checkpoint, crash recovery at start).
   */
  stop(mode: 'fast' | 'immediate'): Promise<void>;
  /** Starts it (again) on the same port and data dir; resolves once it accepts connections. */
  start(): Promise<void>;
  /** Stops it if it runs and removes its folder (also done at process exit). */
  close(): Promise<void>;
  /** Everything the server logged. */
  output(): string;
}

/** The machine's PostgreSQL binaries: the newest /usr/lib/postgresql/<major>/bin with initdb. */
export function pgBinDir(): string {
  const base = '/usr/lib/postgresql';
  const majors = existsSync(base)
    ? readdirSync(base)
        .filter((d) => /^\d+$/.test(d) && existsSync(path.join(base, d, 'bin', 'initdb')))
        .sort((a, b) => Number(a) - Number(b))
    : [];
  const major = majors.at(-1);
  if (!major) throw new Error(`no PostgreSQL binaries under ${base}/*/bin (install postgresql)`);
  return path.join(base, major, 'bin');
}

/** Runs a PostgreSQL binary as the postgres OS user (setpriv execs it: the child pid is its pid). */
function asPostgres(bin: string, args: string[]): [string, string[]] {
  return [
    'setpriv',
    [`--reuid=${PG_OS_USER}`, `--regid=${PG_OS_USER}`, '--init-groups', '--', bin, ...args],
  ];
}

function exited(child: ChildProcess): boolean {
  return child.exitCode !== null || child.signalCode !== null;
}

/**
 * initdb into a fresh temporary folder (owned by the postgres OS user) and starts `postgres` on
 * a free port of 127.0.0.1 with trust auth, small shared buffers and fsync off (a test server:
 * speed over durability across a machine crash; a clean or immediate stop loses nothing).
 * Resolves once it accepts connections.
 */
export async function startPgServer(opts: { maxConnections?: number } = {}): Promise<PgServer> {
  const bin = pgBinDir();
  const port = await freePort();
  const base = mkdtempSync(path.join(tmpdir(), 'freshet-pg-'));
  // The postgres OS user must reach its data dir under the root-only temporary folder.
  chmodSync(base, 0o755);
  const dataDir = path.join(base, 'data');
  const socketDir = path.join(base, 'socket');
  const { uid, gid } = osUser(PG_OS_USER);
  mkdirSync(dataDir, { mode: 0o700 });
  mkdirSync(socketDir, { mode: 0o700 });
  chownSync(dataDir, uid, gid);
  chownSync(socketDir, uid, gid);
  let child: ChildProcess | undefined;
  let out = '';
  // Removed by close(); and at exit, should a test end without reaching it (SIGQUIT: the
  // postmaster takes its backends down with it).
  process.once('exit', () => {
    if (child && !exited(child)) child.kill('SIGQUIT');
    rmSync(base, { recursive: true, force: true, maxRetries: 3 });
  });

  const [cmd, args] = asPostgres(path.join(bin, 'initdb'), [
    '-D',
    dataDir,
    '-U',
    'postgres',
    '--auth=trust',
    '--encoding=UTF8',
    '--locale=C.UTF-8',
    '--no-sync',
  ]);
  const init = spawnSync(cmd, args, { encoding: 'utf8', timeout: 120_000 });
  if (init.status !== 0) {
    rmSync(base, { recursive: true, force: true });
    throw new Error(`initdb failed (${init.status ?? init.signal}):\n${init.stdout}${init.stderr}`);
  }

  const adminUrl = `postgres://postgres@127.0.0.1:${port}/postgres`;
  const accepts = async () => {
    const c = new pg.Client({ connectionString: adminUrl, connectionTimeoutMillis: 2_000 });
    c.on('error', () => undefined);
    try {
      await c.connect();
      await c.query('SELECT 1');
      return true;
    } catch {
      return false;
    } finally {
      await c.end().catch(() => undefined);
    }
  };
  const server: PgServer = {
    port,
    adminUrl,
    dataDir,
    output: () => out,
    async start() {
      if (child && !exited(child)) return;
      const [c, a] = asPostgres(path.join(bin, 'postgres'), [
        '-D',
        dataDir,
        '-p',
        String(port),
        '-c',
        'listen_addresses=127.0.0.1',
        '-c',
        `unix_socket_directories=${socketDir}`,
        '-c',
        'shared_buffers=32MB',
        '-c',
        `max_connections=${opts.maxConnections ?? 200}`,
        '-c',
        'fsync=off',
        '-c',
        'synchronous_commit=off',
        '-c',
        'full_page_writes=off',
        '-c',
        'jit=off',
      ]);
      child = spawn(c, a, { stdio: ['ignore', 'pipe', 'pipe'] });
      child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
      child.stderr?.on('data', (d: Buffer) => (out += d.toString()));
      const proc = child;
      await waitUntil(
        async () => {
          if (exited(proc)) throw new Error(`postgres exited during start:\n${out.slice(-4000)}`);
          return accepts();
        },
        `PostgreSQL accepts connections on port ${port}`,
        60_000,
      );
    },
    async stop(mode) {
      if (!child || exited(child)) return;
      const gone = once(child, 'exit');
      child.kill(mode === 'fast' ? 'SIGINT' : 'SIGQUIT');
      await gone;
    },
    async close() {
      if (child && !exited(child)) {
        const gone = once(child, 'exit');
        child.kill('SIGQUIT');
        await gone;
      }
      rmSync(base, { recursive: true, force: true, maxRetries: 3 });
    },
  };
  try {
    await server.start();
  } catch (err) {
    await server.close();
    throw err;
  }
  return server;
}

function osUser(name: string): { uid: number; gid: number } {
  const id = (flag: string) => {
    const r = spawnSync('id', [flag, name], { encoding: 'utf8' });
    const n = Number(r.stdout.trim());
    if (r.status !== 0 || !Number.isInteger(n)) {
      throw new Error(
        `no OS user '${name}' to run PostgreSQL as (id ${flag} ${name}: ${r.stderr})`,
      );
    }
    return n;
  };
  return { uid: id('-u'), gid: id('-g') };
}
