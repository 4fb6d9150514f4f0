// Checks docker-compose.yml and scripts/docker/Dockerfile by reading them: there is no Docker engine here.
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { parse } from 'yaml';
import { loadConfig, repoRoot } from '../../packages/core/src/config.js';

type EnvValue = string | number | boolean | null;

interface Service {
  image?: string;
  build?: string | { context?: string; dockerfile?: string };
  command?: string | string[];
  environment?: Record<string, EnvValue> | string[];
  depends_on?: string[] | Record<string, { condition?: string }>;
  healthcheck?: { test?: string | string[]; disable?: boolean };
  ports?: (string | number | { target?: number | string })[];
  volumes?: (string | { source?: string; target?: string })[];
  container_name?: string;
  stop_grace_period?: string;
}

interface ComposeFile {
  services: Record<string, Service>;
  volumes?: Record<string, unknown>;
}

const read = (file: string) => readFileSync(path.join(repoRoot, file), 'utf8');

// Compose reads `<<` merge keys (YAML 1.1); the yaml package does so only when asked.
const compose = parse(read('docker-compose.yml'), { merge: true }) as ComposeFile;
const services = compose.services;

const dataServices = ['redis', 'postgres', 'elasticsearch'] as const;
const apps = ['producer', 'worker', 'dashboard'] as const;

function service(name: string): Service {
  const s = services[name];
  assert.ok(s, `docker-compose.yml has no service '${name}'`);
  return s;
}

/** The setting names config.ts declares: the defaulted ones and, from the source, the optional ones. */
const knownSettings = new Set([
  ...Object.keys(loadConfig({})),
  ...[...read('packages/core/src/config.ts').matchAll(/^ {2}([A-Z][A-Z0-9_]*):/gm)].map(
    (m) => m[1] ?? '',
  ),
]);

/** A service's environment as written, before interpolation. */
function rawEnvironment(s: Service): Record<string, string> {
  const env = s.environment ?? {};
  if (Array.isArray(env)) {
    return Object.fromEntries(
      env.map((entry) => {
        const eq = entry.indexOf('=');
        return eq === -1 ? [entry, ''] : [entry.slice(0, eq), entry.slice(eq + 1)];
      }),
    );
  }
  return Object.fromEntries(
    Object.entries(env).map(([key, value]) => [key, value === null ? '' : String(value)]),
  );
}

/**
 * Compose's interpolation with an empty shell: `${X:-default}` gives its default, while `${X:?msg}`,
 * `${X}` and `$X` (which the user must set) get a sample value long enough for a token.
 */
function interpolate(value: string): string {
  return value.replace(
    /\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?+])([^}]*))?\}|\$([A-Za-z_][A-Za-z0-9_]*)/g,
    (match, braced?: string, op?: string, arg?: string, bare?: string) => {
      if (match === '$$') return '$';
      const name = braced ?? bare ?? '';
      if (op === '-' || op === ':-') return arg ?? '';
      if (op === '+' || op === ':+') return arg ?? '';
      return `sample-${name.toLowerCase().replaceAll('_', '-')}`;
    },
  );
}

const environment = (s: Service) =>
  Object.fromEntries(
    Object.entries(rawEnvironment(s)).map(([key, value]) => [key, interpolate(value)]),
  );

const words = (command: string | string[] | undefined) =>
  Array.isArray(command) ? command : (command ?? '').split(/\s+/).filter(Boolean);

/** The source (volume name or host path) mounted on `target`, in short or long syntax. */
function mountSource(s: Service, target: string): string | undefined {
  for (const volume of s.volumes ?? []) {
    if (typeof volume === 'string') {
      const [source, mounted] = volume.split(':');
      if (mounted === target) return source;
    } else if (volume.target === target) {
      return volume.source;
    }
  }
  return undefined;
}

const healthcheckText = (s: Service) => words(s.healthcheck?.test).join(' ');

/** A compose duration such as `45s`, `1m30s` or `500ms`, in milliseconds. */
function durationMs(value: string): number {
  const units: Record<string, number> = { us: 0.001, ms: 1, s: 1000, m: 60_000, h: 3_600_000 };
  assert.match(value, /^(\d+(\.\d+)?(us|ms|s|m|h))+$/, `'${value}' is not a compose duration`);
  let total = 0;
  for (const [, amount, unit] of value.matchAll(/(\d+(?:\.\d+)?)(us|ms|s|m|h)/g)) {
    total += Number(amount) * (units[unit ?? ''] ?? Number.NaN);
  }
  return total;
}

/** The container port of a `ports` entry (`[ip:][host:]container[/proto]` or long syntax). */
function containerPort(entry: string | number | { target?: number | string }): number {
  if (typeof entry === 'object') return Number(entry.target);
  const spec = interpolate(String(entry)).replace(/\/(tcp|udp)$/, '');
  return Number(spec.slice(spec.lastIndexOf(':') + 1));
}

/** The image name without registry path or tag: `docker.elastic.co/x/elasticsearch:8` -> `elasticsearch`. */
const imageName = (s: Service) => (s.image ?? '').split('/').pop()?.split(':')[0] ?? '';

/** The port each data image serves on inside the network. */
const imagePorts: Record<string, number> = { redis: 6379, postgres: 5432, elasticsearch: 9200 };

/** The package.json of the Elasticsearch client that packages/core resolves. */
function esClientVersion(): string {
  const candidates = ['packages/core/node_modules', 'node_modules'].map((dir) =>
    path.join(repoRoot, dir, '@elastic/elasticsearch/package.json'),
  );
  const file = candidates.find((candidate) => existsSync(candidate));
  assert.ok(file, '@elastic/elasticsearch is not installed: run npm ci');
  return (JSON.parse(readFileSync(file, 'utf8')) as { version: string }).version;
}

void describe('docker-compose.yml', () => {
  void it('defines the data services and the three apps', () => {
    for (const name of [...dataServices, ...apps]) service(name);
  });

  void it('runs Redis with AOF on and the noeviction policy BullMQ needs', () => {
    const command = words(service('redis').command);
    const flag = (name: string) => command[command.indexOf(name) + 1];
    assert.ok(
      command.includes('--appendonly'),
      `redis command lacks --appendonly: ${command.join(' ')}`,
    );
    assert.equal(flag('--appendonly'), 'yes');
    assert.ok(command.includes('--maxmemory-policy'), 'redis command lacks --maxmemory-policy');
    assert.equal(flag('--maxmemory-policy'), 'noeviction');
    assert.match(service('redis').image ?? '', /^redis:7(\b|$)/);
  });

  void it('runs the Elasticsearch version of scripts/services.sh, with the major of the client', () => {
    const image = service('elasticsearch').image ?? '';
    const version = /^docker\.elastic\.co\/elasticsearch\/elasticsearch:(\d+\.\d+\.\d+)$/.exec(
      image,
    )?.[1];
    assert.ok(version, `elasticsearch image '${image}' is not the official one with a version`);
    const scripted = /FRESHET_ES_VERSION:-([0-9][0-9.]*)\}/.exec(read('scripts/services.sh'))?.[1];
    assert.ok(scripted, 'no FRESHET_ES_VERSION default found in scripts/services.sh');
    assert.equal(version, scripted, 'compose and scripts/services.sh run different versions');
    const major = (v: string) => v.split('.')[0];
    assert.equal(major(version), major(esClientVersion()), 'server and client majors differ');
  });

  void it('runs a single Elasticsearch node, security off, with a capped heap', () => {
    const env = environment(service('elasticsearch'));
    assert.equal(env['discovery.type'], 'single-node');
    assert.equal(env['xpack.security.enabled'], 'false');
    const opts = env.ES_JAVA_OPTS ?? '';
    assert.match(opts, /-Xmx\d+[mg]\b/, `ES_JAVA_OPTS '${opts}' does not cap the heap`);
    assert.equal(/-Xms(\S+)/.exec(opts)?.[1], /-Xmx(\S+)/.exec(opts)?.[1], 'Xms and Xmx differ');
  });

  void it('creates both databases on the first start of PostgreSQL', () => {
    const postgres = service('postgres');
    assert.match(postgres.image ?? '', /^postgres:(15|16)(\b|$)/);
    const initDir = mountSource(postgres, '/docker-entrypoint-initdb.d');
    assert.ok(initDir, 'no init directory mounted on /docker-entrypoint-initdb.d');
    const sql = readdirSync(path.join(repoRoot, initDir))
      .map((file) => readFileSync(path.join(repoRoot, initDir, file), 'utf8'))
      .join('\n');
    for (const db of ['freshet_catalog', 'freshet_api']) {
      assert.match(sql, new RegExp(`CREATE DATABASE "?${db}"?`, 'i'), `${db} is not created`);
    }
  });

  void it('keeps the data of each data service in a declared named volume', () => {
    const declared = Object.keys(compose.volumes ?? {});
    const mounts: Record<string, string> = {
      redis: '/data',
      postgres: '/var/lib/postgresql/data',
      elasticsearch: '/usr/share/elasticsearch/data',
    };
    for (const name of dataServices) {
      const volume = mountSource(service(name), mounts[name] ?? '');
      assert.ok(volume, `${name} keeps no volume on ${mounts[name]}`);
      assert.ok(declared.includes(volume), `${name}: volume '${volume}' is not declared`);
    }
  });

  void it('gives each data service and the dashboard a healthcheck', () => {
    const expected: Record<string, RegExp> = {
      redis: /redis-cli .*ping/,
      postgres: /pg_isready/,
      elasticsearch: /_cluster\/health/,
      dashboard: /\/healthz/,
    };
    for (const [name, pattern] of Object.entries(expected)) {
      const s = service(name);
      assert.notEqual(s.healthcheck?.disable, true, `${name} healthcheck is disabled`);
      const test = healthcheckText(s);
      assert.doesNotMatch(test, /^NONE\b/, `${name} healthcheck is NONE`);
      assert.match(test, pattern, `${name} healthcheck '${test}'`);
    }
  });

  void it('starts each app only once the data services are healthy', () => {
    for (const app of apps) {
      const dependsOn = service(app).depends_on;
      assert.ok(dependsOn && !Array.isArray(dependsOn), `${app} depends_on has no conditions`);
      for (const data of dataServices) {
        assert.equal(dependsOn[data]?.condition, 'service_healthy', `${app} -> ${data}`);
      }
    }
  });

  void it('builds every app from scripts/docker/Dockerfile and runs its freshet command', () => {
    const commands: Record<(typeof apps)[number], string> = {
      producer: 'schedule',
      worker: 'worker',
      dashboard: 'dashboard',
    };
    for (const app of apps) {
      const build = service(app).build;
      const dockerfile = typeof build === 'object' ? build.dockerfile : undefined;
      assert.equal(
        dockerfile,
        'scripts/docker/Dockerfile',
        `${app} is not built from scripts/docker/Dockerfile`,
      );
      assert.deepEqual(words(service(app).command), [commands[app]], `${app} command`);
    }
  });

  void it('lets the worker scale: no container_name and no published port', () => {
    const worker = service('worker');
    assert.equal(worker.container_name, undefined);
    assert.equal(worker.ports, undefined);
  });

  void it('gives each app a stop grace period longer than its SHUTDOWN_TIMEOUT_MS', () => {
    for (const app of apps) {
      const s = service(app);
      const { SHUTDOWN_TIMEOUT_MS } = loadConfig(environment(s));
      // Compose's default grace period is 10 s.
      const grace = durationMs(s.stop_grace_period ?? '10s');
      assert.ok(grace > SHUTDOWN_TIMEOUT_MS, `${app}: ${grace} ms <= ${SHUTDOWN_TIMEOUT_MS} ms`);
    }
  });

  void it('sets on the apps only settings the config module knows', () => {
    assert.ok(knownSettings.has('REDIS_URL') && knownSettings.has('FRESHET_OPERATOR_TOKEN'));
    for (const app of apps) {
      const unknown = Object.keys(rawEnvironment(service(app))).filter(
        (key) => !knownSettings.has(key),
      );
      assert.deepEqual(unknown, [], `${app} sets settings config.ts does not read`);
    }
  });

  void it('gives each app an environment loadConfig accepts', () => {
    for (const app of apps) {
      assert.doesNotThrow(() => loadConfig(environment(service(app))), `${app} environment`);
    }
    const dashboard = loadConfig(environment(service('dashboard')));
    assert.ok(dashboard.FRESHET_OPERATOR_TOKEN, 'the dashboard gets no operator token');
    assert.ok(dashboard.FRESHET_VIEWER_TOKEN, 'the dashboard gets no viewer token');
  });

  void it('points the app URLs at the services of this file, on their ports', () => {
    const targets = {
      REDIS_URL: 'redis',
      CATALOG_DATABASE_URL: 'postgres',
      API_DATABASE_URL: 'postgres',
      ELASTICSEARCH_URL: 'elasticsearch',
    } as const;
    const schemePorts: Record<string, number> = {
      'redis:': 6379,
      'rediss:': 6379,
      'postgres:': 5432,
      'postgresql:': 5432,
      'http:': 80,
      'https:': 443,
    };
    const pg = environment(service('postgres'));
    for (const app of apps) {
      const config = loadConfig(environment(service(app)));
      for (const [setting, image] of Object.entries(targets)) {
        assert.ok(setting in rawEnvironment(service(app)), `${app} does not set ${setting}`);
        const url = new URL(config[setting as keyof typeof targets]);
        const target = services[url.hostname];
        assert.ok(target, `${app} ${setting} points at '${url.hostname}', not a service`);
        assert.equal(imageName(target), image, `${app} ${setting} points at a non-${image}`);
        const port = url.port ? Number(url.port) : schemePorts[url.protocol];
        assert.equal(port, imagePorts[image], `${app} ${setting} port`);
        if (image === 'postgres') {
          assert.equal(url.username, pg.POSTGRES_USER ?? 'postgres', `${app} ${setting} user`);
          assert.equal(decodeURIComponent(url.password), pg.POSTGRES_PASSWORD ?? '');
          assert.match(url.pathname, /^\/freshet_(catalog|api)$/, `${app} ${setting} database`);
        }
      }
      assert.notEqual(config.CATALOG_DATABASE_URL, config.API_DATABASE_URL);
    }
  });

  void it('publishes the dashboard on DASHBOARD_PORT and checks /healthz there', () => {
    const dashboard = service('dashboard');
    const { DASHBOARD_PORT } = loadConfig(environment(dashboard));
    const ports = (dashboard.ports ?? []).map(containerPort);
    assert.deepEqual(ports, [DASHBOARD_PORT]);
    assert.ok(
      healthcheckText(dashboard).includes(`:${DASHBOARD_PORT}/healthz`),
      `dashboard healthcheck does not probe port ${DASHBOARD_PORT}`,
    );
  });
});

void describe('scripts/docker/Dockerfile', () => {
  // Instructions only: the comments may name what the file avoids.
  const dockerfile = read('scripts/docker/Dockerfile')
    .split('\n')
    .filter((line) => !line.trimStart().startsWith('#'))
    .join('\n');

  void it('installs without dev dependencies: tsx, the runtime loader, is a dependency', () => {
    assert.match(dockerfile, /^RUN npm ci --omit=dev\b/m);
    const root = JSON.parse(read('package.json')) as { dependencies?: Record<string, string> };
    assert.ok(root.dependencies?.tsx, 'scripts/freshet.mjs runs through tsx at run time');
  });

  void it('copies every workspace manifest before the sources, for layer caching', () => {
    const workspaces = (JSON.parse(read('package.json')) as { workspaces: string[] }).workspaces;
    const install = dockerfile.indexOf('RUN npm ci');
    const sources = dockerfile.indexOf('COPY . .');
    assert.ok(install > 0 && sources > install, 'npm ci must run before the sources are copied');
    for (const manifest of ['package-lock.json', ...workspaces.map((w) => `${w}/package.json`)]) {
      const at = dockerfile.indexOf(manifest);
      assert.ok(at > 0 && at < install, `${manifest} is not copied before npm ci`);
    }
  });

  void it('runs the freshet CLI as the non-root node user', () => {
    assert.match(dockerfile, /^FROM node:24[-.\w]*$/m);
    assert.match(dockerfile, /^USER node$/m);
    assert.match(dockerfile, /^ENTRYPOINT \["node", "scripts\/freshet\.mjs"\]$/m);
  });

  void it('leaves node_modules and .git out of the build context', () => {
    const ignored = read('.dockerignore')
      .split('\n')
      .map((line) => line.trim());
    for (const entry of ['.git', '.env']) assert.ok(ignored.includes(entry), entry);
    assert.ok(
      ignored.some((line) => /^(\*\*\/)?node_modules\/?$/.test(line)),
      'node_modules',
    );
  });
});
