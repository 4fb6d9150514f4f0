// Checks the Kubernetes manifests of scripts/k8s by reading them (there is no cluster here):
// they parse, they run the real CLI commands with settings the config module knows, and the
// autoscaler scales the worker Deployment on the metric the dashboard really serves.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { parse, parseAllDocuments } from 'yaml';
import { buildCli } from '../../apps/producer/src/cli.js';
import { loadConfig, repoRoot, type Config } from '../../packages/core/src/config.js';
import { QUEUE_DEPTH_METRIC } from '../../packages/core/src/depth.js';

const dir = 'scripts/k8s';
const read = (file: string) => readFileSync(path.join(repoRoot, file), 'utf8');

interface Meta {
  name?: string;
  namespace?: string;
  labels?: Record<string, string>;
}
interface Manifest {
  apiVersion?: string;
  kind?: string;
  metadata?: Meta;
  file: string;
  [key: string]: unknown;
}
interface EnvVar {
  name: string;
  value?: string;
  valueFrom?: unknown;
}
interface Container {
  name: string;
  image?: string;
  command?: string[];
  args?: string[];
  env?: EnvVar[];
  envFrom?: { configMapRef?: { name: string }; secretRef?: { name: string } }[];
  ports?: { name?: string; containerPort: number }[];
  readinessProbe?: { httpGet?: { path?: string; port?: number | string } };
  livenessProbe?: { httpGet?: { path?: string; port?: number | string } };
  resources?: { requests?: Record<string, string>; limits?: Record<string, string> };
}
interface PodSpec {
  terminationGracePeriodSeconds?: number;
  securityContext?: { runAsNonRoot?: boolean };
  containers: Container[];
}
interface Deployment extends Manifest {
  spec: {
    replicas?: number;
    selector: { matchLabels: Record<string, string> };
    template: { metadata: Meta; spec: PodSpec };
  };
}
interface Service extends Manifest {
  spec: {
    selector: Record<string, string>;
    ports: { name?: string; port: number; targetPort?: number | string }[];
  };
}
interface ScaledObject extends Manifest {
  spec: {
    scaleTargetRef: { apiVersion?: string; kind?: string; name: string };
    minReplicaCount?: number;
    maxReplicaCount?: number;
    triggers: { type: string; metadata: Record<string, string> }[];
  };
}
interface ServiceMonitor extends Manifest {
  spec: {
    selector: { matchLabels: Record<string, string> };
    namespaceSelector?: { matchNames?: string[] };
    endpoints: {
      port?: string;
      path?: string;
      authorization?: { type?: string; credentials?: { name: string; key: string } };
    }[];
  };
}

/** The API version of every kind the manifests may use. */
const apiVersions: Record<string, string> = {
  Namespace: 'v1',
  ConfigMap: 'v1',
  Secret: 'v1',
  Service: 'v1',
  Deployment: 'apps/v1',
  ScaledObject: 'keda.sh/v1alpha1',
  ServiceMonitor: 'monitoring.coreos.com/v1',
  Kustomization: 'kustomize.config.k8s.io/v1beta1',
};

const files = readdirSync(path.join(repoRoot, dir))
  .filter((f) => /\.ya?ml$/.test(f))
  .sort();

/** Every document of every file, parse errors collected rather than thrown. */
const parsed = files.map((file) => {
  const docs = parseAllDocuments(read(`${dir}/${file}`));
  const list = Array.isArray(docs) ? docs : [docs];
  return { file, docs: list };
});
const manifests: Manifest[] = parsed.flatMap(({ file, docs }) =>
  docs
    .map((d) => d.toJS() as Record<string, unknown> | null)
    .filter((m): m is Record<string, unknown> => m !== null)
    .map((m) => ({ ...m, file })),
);

function find<T extends Manifest>(kind: string, name: string): T {
  const m = manifests.find((x) => x.kind === kind && x.metadata?.name === name);
  assert.ok(m, `no ${kind} named ${name} in ${dir}`);
  return m as T;
}
const all = <T extends Manifest>(kind: string) => manifests.filter((m) => m.kind === kind) as T[];

const deployments = {
  worker: find<Deployment>('Deployment', 'freshet-worker'),
  dashboard: find<Deployment>('Deployment', 'freshet-dashboard'),
  producer: find<Deployment>('Deployment', 'freshet-producer'),
};
const container = (d: Deployment): Container => {
  assert.equal(d.spec.template.spec.containers.length, 1, `${d.metadata?.name}: one container`);
  return d.spec.template.spec.containers[0] as Container;
};

/** The setting names config.ts declares: the defaulted ones and, from the source, the optional ones. */
const knownSettings = new Set([
  ...Object.keys(loadConfig({})),
  ...[...read('packages/core/src/config.ts').matchAll(/^ {2}([A-Z][A-Z0-9_]*):/gm)].map(
    (m) => m[1] ?? '',
  ),
]);

/** Key/value pairs of a ConfigMap or Secret (`stringData`, or base64 `data`). */
function entries(m: Manifest): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries((m.data ?? {}) as Record<string, unknown>)) {
    out[k] = m.kind === 'Secret' ? Buffer.from(String(v), 'base64').toString() : String(v);
  }
  for (const [k, v] of Object.entries((m.stringData ?? {}) as Record<string, unknown>)) {
    out[k] = String(v);
  }
  return out;
}

/** What a container's process sees: its envFrom sources in order, then its own `env`. */
function environment(c: Container): Record<string, string> {
  const env: Record<string, string> = {};
  for (const from of c.envFrom ?? []) {
    const source = from.configMapRef
      ? find('ConfigMap', from.configMapRef.name)
      : find('Secret', from.secretRef?.name ?? '');
    Object.assign(env, entries(source));
  }
  for (const e of c.env ?? []) {
    assert.ok(e.value !== undefined, `${c.name}: ${e.name} has no literal value`);
    env[e.name] = e.value;
  }
  return env;
}
const configOf = (d: Deployment): Config => loadConfig(environment(container(d)));

void describe('scripts/k8s manifests', () => {
  void it('parse, every document with a known kind and apiVersion and a name', () => {
    assert.ok(files.length >= 5, `manifests found: ${files.join(', ')}`);
    for (const { file, docs } of parsed) {
      for (const doc of docs) {
        assert.deepEqual(
          doc.errors.map((e) => e.message),
          [],
          `${file} does not parse`,
        );
      }
    }
    for (const m of manifests) {
      const where = `${m.file}: ${m.kind} ${m.metadata?.name}`;
      assert.ok(m.kind && m.kind in apiVersions, `${where}: unexpected kind`);
      assert.equal(m.apiVersion, apiVersions[m.kind], `${where}: apiVersion`);
      if (m.kind !== 'Kustomization')
        assert.ok(m.metadata?.name, `${m.file}: a ${m.kind} without a name`);
      if (m.kind !== 'Kustomization' && m.kind !== 'Namespace') {
        assert.equal(m.metadata?.namespace, 'freshet', `${where}: namespace`);
      }
    }
    find('Namespace', 'freshet');
  });

  void it('are all applied by the kustomization, except the secret example, with one image', () => {
    const k = manifests.find((m) => m.kind === 'Kustomization') as
      | (Manifest & { resources: string[]; namespace?: string; images?: { name: string }[] })
      | undefined;
    assert.ok(k, 'no kustomization.yaml');
    assert.equal(k.namespace, 'freshet');
    const expected = files.filter((f) => f !== k.file && f !== 'secret.example.yaml');
    assert.deepEqual([...k.resources].sort(), expected);
    assert.ok(
      !k.resources.includes('secret.example.yaml'),
      'the secret example must not be applied',
    );
    const images = new Set(
      Object.values(deployments).map((d) => (container(d).image ?? '').split(':')[0]),
    );
    assert.deepEqual([...images], ['freshet'], 'every app runs the one Freshet image');
    assert.deepEqual(
      (k.images ?? []).map((i) => i.name),
      ['freshet'],
      'the kustomization sets the registry and tag of that image',
    );
  });

  void it('run each app with the freshet command that docker-compose.yml runs', () => {
    const compose = parse(read('docker-compose.yml'), { merge: true }) as {
      services: Record<string, { command?: string[] }>;
    };
    const commands = new Set(buildCli().commands.map((c) => c.name()));
    for (const [app, d] of Object.entries(deployments)) {
      const c = container(d);
      const argv = [...(c.command ?? []), ...(c.args ?? [])];
      assert.deepEqual(argv.slice(0, 2), ['node', 'scripts/freshet.mjs'], `${app} command`);
      const sub = argv[2] ?? '';
      assert.equal(argv.length, 3, `${app}: ${argv.join(' ')}`);
      assert.ok(commands.has(sub), `${app}: 'freshet ${sub}' is not a CLI command`);
      assert.deepEqual([sub], compose.services[app]?.command, `${app}: differs from compose`);
    }
  });

  void it('select their own pods, run as non-root, and request resources', () => {
    for (const [app, d] of Object.entries(deployments)) {
      const labels = d.spec.template.metadata.labels ?? {};
      for (const [k, v] of Object.entries(d.spec.selector.matchLabels)) {
        assert.equal(labels[k], v, `${app}: selector ${k} does not match the pod labels`);
      }
      assert.equal(d.spec.template.spec.securityContext?.runAsNonRoot, true, `${app} non-root`);
      const r = container(d).resources;
      assert.ok(r?.requests?.cpu && r.requests.memory, `${app}: cpu and memory requests`);
      assert.ok(r.limits?.memory, `${app}: memory limit`);
    }
  });

  void it('set only settings the config module knows', () => {
    assert.ok(knownSettings.has('REDIS_URL') && knownSettings.has('MAX_ACTIVE_CHUNKS'));
    const sources = [...all('ConfigMap'), ...all('Secret')];
    assert.ok(sources.length >= 2, 'a ConfigMap and the secrets');
    for (const m of sources) {
      const unknown = Object.keys(entries(m)).filter((key) => !knownSettings.has(key));
      assert.deepEqual(unknown, [], `${m.file}: ${m.kind} ${m.metadata?.name}`);
    }
    for (const d of all<Deployment>('Deployment')) {
      for (const c of d.spec.template.spec.containers) {
        const unknown = (c.env ?? []).map((e) => e.name).filter((n) => !knownSettings.has(n));
        assert.deepEqual(unknown, [], `${d.metadata?.name}: env`);
      }
    }
  });

  void it('give each app an environment loadConfig accepts, with credentials from secrets', () => {
    for (const [app, d] of Object.entries(deployments)) {
      const c = container(d);
      assert.doesNotThrow(() => configOf(d), `${app} environment`);
      const configMapKeys = new Set(all('ConfigMap').flatMap((m) => Object.keys(entries(m))));
      for (const secret of ['REDIS_URL', 'CATALOG_DATABASE_URL', 'API_DATABASE_URL']) {
        assert.ok(!configMapKeys.has(secret), `${secret} belongs in a Secret`);
        assert.ok(secret in environment(c), `${app} does not get ${secret}`);
      }
    }
    const dashboard = configOf(deployments.dashboard);
    assert.ok(dashboard.FRESHET_OPERATOR_TOKEN && dashboard.FRESHET_VIEWER_TOKEN);
    const worker = environment(container(deployments.worker));
    assert.ok(!('FRESHET_OPERATOR_TOKEN' in worker), 'the worker gets no dashboard token');
  });

  void it('let a worker finish its longest chunk step before Kubernetes kills it', () => {
    const d = deployments.worker;
    const grace = d.spec.template.spec.terminationGracePeriodSeconds ?? 30;
    const config = configOf(d);
    const defaults = loadConfig({});
    assert.ok(grace > defaults.CHUNK_DEADLINE_MS / 1000, `grace ${grace} s <= default deadline`);
    assert.ok(grace > config.CHUNK_DEADLINE_MS / 1000, `grace ${grace} s <= CHUNK_DEADLINE_MS`);
    // The worker's own deadline must outlast a chunk step and end before the SIGKILL.
    assert.ok(config.SHUTDOWN_TIMEOUT_MS > config.CHUNK_DEADLINE_MS, 'SHUTDOWN_TIMEOUT_MS');
    assert.ok(grace * 1000 > config.SHUTDOWN_TIMEOUT_MS, 'grace <= SHUTDOWN_TIMEOUT_MS');
    assert.equal(d.spec.replicas, undefined, 'the autoscaler owns the worker replica count');
    for (const app of ['dashboard', 'producer'] as const) {
      const g = deployments[app].spec.template.spec.terminationGracePeriodSeconds ?? 30;
      assert.ok(g * 1000 > configOf(deployments[app]).SHUTDOWN_TIMEOUT_MS, `${app} grace`);
    }
  });

  void it('probe the dashboard on /readyz and /healthz at its port, and serve that port', () => {
    const c = container(deployments.dashboard);
    const port = configOf(deployments.dashboard).DASHBOARD_PORT;
    assert.equal(port, loadConfig({}).DASHBOARD_PORT, 'DASHBOARD_PORT is the default (3000)');
    const named = (p: number | string | undefined) =>
      typeof p === 'string' ? c.ports?.find((x) => x.name === p)?.containerPort : p;
    assert.deepEqual(
      c.ports?.map((p) => p.containerPort),
      [port],
    );
    assert.equal(c.readinessProbe?.httpGet?.path, '/readyz');
    assert.equal(named(c.readinessProbe?.httpGet?.port), port);
    assert.equal(c.livenessProbe?.httpGet?.path, '/healthz');
    assert.equal(named(c.livenessProbe?.httpGet?.port), port);
    const health = read('apps/dashboard/src/health.ts');
    for (const route of ['/readyz', '/healthz']) assert.ok(health.includes(`'${route}'`), route);
  });

  void it('scale the worker Deployment from 0 on the dashboard metric freshet_queue_depth', () => {
    const so = find<ScaledObject>('ScaledObject', 'freshet-worker');
    const worker = deployments.worker;
    assert.deepEqual(so.spec.scaleTargetRef, {
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      name: worker.metadata?.name,
    });
    assert.equal(so.spec.minReplicaCount, 0);
    const max = so.spec.maxReplicaCount ?? 100;
    assert.ok(max >= 1);
    const config = configOf(worker);
    if (config.MAX_ACTIVE_CHUNKS) {
      // Enough pods to use the cap, not many more: extra pods would start no chunk.
      const useful = Math.ceil(config.MAX_ACTIVE_CHUNKS / config.WORKER_CONCURRENCY);
      assert.ok(max >= useful && max <= useful + 1, `maxReplicaCount ${max}, useful ${useful}`);
    }
    assert.equal(so.spec.triggers.length, 1);
    const trigger = so.spec.triggers[0];
    assert.equal(trigger?.type, 'prometheus');
    const meta = trigger?.metadata ?? {};
    assert.doesNotThrow(() => new URL(meta.serverAddress ?? ''), 'serverAddress is a URL');
    assert.equal(QUEUE_DEPTH_METRIC, 'freshet_queue_depth');
    const query = meta.query ?? '';
    const selector = new RegExp(`(?<![\\w:])${QUEUE_DEPTH_METRIC}(?![\\w:])(\\{([^}]*)\\})?`).exec(
      query,
    );
    assert.ok(selector, `query '${query}' does not read ${QUEUE_DEPTH_METRIC}`);
    // One pod per WORKER_CONCURRENCY jobs, like `freshet workers`.
    assert.equal(Number(meta.threshold), config.WORKER_CONCURRENCY, 'threshold');

    // The series it reads are the ones Prometheus scrapes from the dashboard Service.
    const service = find<Service>('Service', 'freshet-dashboard');
    const labels: Record<string, string | undefined> = Object.fromEntries(
      [...(selector[2] ?? '').matchAll(/(\w+)\s*=\s*"([^"]*)"/g)].map((m) => [m[1] ?? '', m[2]]),
    );
    assert.equal(labels.namespace, service.metadata?.namespace, 'query namespace label');
    assert.equal(labels.service, service.metadata?.name, 'query service label');
  });

  void it("have Prometheus scrape the dashboard's real /metrics on DASHBOARD_PORT", () => {
    const service = find<Service>('Service', 'freshet-dashboard');
    const dashboard = deployments.dashboard;
    const podLabels = dashboard.spec.template.metadata.labels ?? {};
    for (const [k, v] of Object.entries(service.spec.selector)) {
      assert.equal(podLabels[k], v, `Service selector ${k} misses the dashboard pods`);
    }
    const monitors = all<ServiceMonitor>('ServiceMonitor');
    assert.equal(monitors.length, 1);
    const sm = monitors[0] as ServiceMonitor;
    for (const [k, v] of Object.entries(sm.spec.selector.matchLabels)) {
      assert.equal(service.metadata?.labels?.[k], v, `ServiceMonitor selector ${k}`);
    }
    assert.deepEqual(sm.spec.namespaceSelector?.matchNames, [service.metadata?.namespace]);
    const [endpoint] = sm.spec.endpoints;
    assert.ok(endpoint);
    assert.equal(endpoint.path, '/metrics');
    assert.match(
      read('apps/dashboard/src/app.ts'),
      /\.get\('\/metrics'/,
      'the dashboard serves it',
    );
    const servicePort = service.spec.ports.find((p) => p.name === endpoint.port);
    assert.ok(servicePort, `the Service has no port named ${endpoint.port}`);
    const c = container(dashboard);
    const target =
      typeof servicePort.targetPort === 'string'
        ? c.ports?.find((p) => p.name === servicePort.targetPort)?.containerPort
        : (servicePort.targetPort ?? servicePort.port);
    const { DASHBOARD_PORT } = configOf(dashboard);
    assert.equal(target, DASHBOARD_PORT, 'the Service reaches the port the dashboard listens on');
    assert.equal(DASHBOARD_PORT, 3000);
    // /metrics needs a token: the viewer's, from the secret the dashboard itself reads.
    assert.equal(endpoint.authorization?.type, 'Bearer');
    const cred = endpoint.authorization?.credentials;
    assert.equal(cred?.key, 'FRESHET_VIEWER_TOKEN');
    assert.ok(
      c.envFrom?.some((f) => f.secretRef?.name === cred?.name),
      'the token secret is the dashboard one',
    );
  });
});
