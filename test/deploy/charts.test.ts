/**
 * The Helm charts, rendered by a real Helm (v4, fetched by scripts/helm.sh) and checked without
 * a cluster: `helm lint --strict` on every chart with every value set, `helm template` of the
 * umbrella with every value set and of each service chart alone, every rendered object
 * validated against the Kubernetes (and Prometheus Operator) schemas, then what the charts
 * promise: the deploy contract, security settings, hooks, subsets, production and scale-out
 * values. The charts and their dependencies (a placeholder for the official NATS chart) are laid
 * out by ChartWorkspace (./support/helm.ts).
 */
import { readdir, readFile } from 'node:fs/promises';
import { createServer, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { chartSchemas } from '../../scripts/chart-schemas.ts';
import {
  annotation,
  ChartWorkspace,
  COMPONENT,
  containersOf,
  execFileAsync,
  type HelmResult,
  identity,
  type K8sObject,
  labelOf,
  NAME,
  natsChartValues,
  podSpecOf,
  ROOT,
  SERVICE_CHARTS,
  schemaError,
  secretKeysOf,
  secretRefsOf,
  spec,
} from './support/helm.ts';

const RELEASE = 'allot';
const NAMESPACE = 'allot';

let workspace: ChartWorkspace;
const helm = (args: string[]) => workspace.helm(args);
const chartDir = (chart: string) => workspace.chartDir(chart);
const umbrellaDir = () => workspace.umbrellaDir;
const render = (chart: string, valueFiles: string[], sets: string[] = []) =>
  workspace.render(chart, valueFiles, { sets, release: RELEASE, namespace: NAMESPACE });

async function valueFilesOf(chart: string): Promise<string[]> {
  const ci = join(ROOT, 'charts', chart, 'ci');
  const files = (await readdir(ci)).filter((file) => file.endsWith('.yaml')).sort();
  return files.map((file) => join(chartDir(chart), 'ci', file));
}

/**
 * The value sets: every file the umbrella ships (values-scale.yaml on top of
 * values-production.yaml, as the docs install it), its ci/ files, and each service chart's.
 */
const UMBRELLA_FILES: Record<string, string[]> = {
  'values.yaml': ['values.yaml'],
  'values-production.yaml': ['values-production.yaml'],
  'values-minimal.yaml': ['values-minimal.yaml'],
  'values-scale.yaml': ['values-production.yaml', 'values-scale.yaml'],
};
let umbrellaSets: string[] = [];
const umbrellaRenders = new Map<string, K8sObject[]>();
const chartRenders = new Map<string, K8sObject[]>();
const lints = new Map<string, HelmResult>();
/** NOTES.txt as `helm install --dry-run=client` prints it (helm template leaves it out). */
const notes = new Map<string, HelmResult>();

const valueArgs = (files: string[]) => files.flatMap((file) => ['-f', file]);
const umbrellaFiles = (set: string) =>
  (UMBRELLA_FILES[set] ?? [set]).map((file) => join(umbrellaDir(), file));

async function installNotes(chart: string, files: string[]): Promise<HelmResult> {
  const result = await helm([
    'install',
    RELEASE,
    chartDir(chart),
    '--namespace',
    NAMESPACE,
    '--dry-run=client',
    ...valueArgs(files),
  ]);
  return { ...result, stdout: result.stdout.split('\nNOTES:\n')[1] ?? '' };
}

const umbrella = (set: string) => {
  const objects = umbrellaRenders.get(set);
  if (!objects) throw new Error(`no render for ${set}`);
  return objects;
};

beforeAll(async () => {
  workspace = await ChartWorkspace.create();
  umbrellaSets = [
    ...Object.keys(UMBRELLA_FILES),
    ...(await readdir(join(ROOT, 'charts/allot/ci')))
      .filter((f) => f.endsWith('.yaml'))
      .map((f) => `ci/${f}`),
  ];
  const chartSets = await Promise.all(
    Object.keys(SERVICE_CHARTS).map(async (chart) => ({ chart, files: await valueFilesOf(chart) })),
  );

  await Promise.all([
    ...umbrellaSets.map(async (set) => {
      const files = umbrellaFiles(set);
      lints.set(`allot -f ${set}`, await helm(['lint', '--strict', umbrellaDir(), ...valueArgs(files)]));
      umbrellaRenders.set(set, await render('allot', files));
      notes.set(set, await installNotes('allot', files));
    }),
    ...chartSets.flatMap(({ chart, files }) =>
      files.map(async (file) => {
        const set = `${chart} -f ci/${file.split('/').at(-1)}`;
        lints.set(set, await helm(['lint', '--strict', chartDir(chart), '-f', file]));
        chartRenders.set(set, await render(chart, [file]));
        notes.set(set, await installNotes(chart, [file]));
      }),
    ),
    (async () => lints.set('common', await helm(['lint', '--strict', chartDir('common')])))(),
  ]);
}, 300_000);

afterAll(async () => {
  await workspace?.dispose();
});

describe('helm lint --strict', () => {
  it('passes for the library, every service chart with each of its ci/ values, and the umbrella with every value set', () => {
    expect(lints.size).toBe(1 + chartRenders.size + umbrellaSets.length);
    for (const [set, result] of lints) {
      expect(result.ok, `${set}\n${result.stdout}\n${result.stderr}`).toBe(true);
      expect(result.stdout, set).not.toMatch(/\[(WARNING|ERROR)\]/);
    }
  });
});

describe('helm template', () => {
  it('renders only known kinds, each valid against its Kubernetes schema', () => {
    const all = [...umbrellaRenders.entries(), ...chartRenders.entries()];
    expect(all.length).toBeGreaterThanOrEqual(umbrellaSets.length + 2 * Object.keys(SERVICE_CHARTS).length);
    for (const [set, objects] of all) {
      expect(objects.length, set).toBeGreaterThan(0);
      for (const object of objects) {
        expect(schemaError(object), `${set}: ${identity(object)}`).toBe('');
      }
      const names = objects.map(identity);
      expect(new Set(names).size, `${set}: duplicate objects`).toBe(names.length);
    }
  });

  it('labels every object with its chart and release', () => {
    for (const [set, objects] of [...umbrellaRenders.entries(), ...chartRenders.entries()]) {
      for (const object of objects) {
        expect(labelOf(object, NAME), `${set}: ${identity(object)}`).toBeTruthy();
        expect(labelOf(object, 'app.kubernetes.io/instance'), `${set}: ${identity(object)}`).toBe(RELEASE);
      }
    }
  });

  it('keeps the committed values.schema.json files as scripts/chart-schemas.ts writes them', async () => {
    for (const [path, schema] of Object.entries(chartSchemas())) {
      expect(JSON.parse(await readFile(join(ROOT, path), 'utf8')), path).toEqual(schema);
    }
  });
});

describe('security', () => {
  it('runs every container non-root, read-only, unprivileged, with resources; long-running ones with probes', () => {
    for (const [set, objects] of [...umbrellaRenders.entries(), ...chartRenders.entries()]) {
      for (const object of objects) {
        const pod = podSpecOf(object);
        if (!pod) continue;
        const where = `${set}: ${identity(object)}`;
        expect(pod.automountServiceAccountToken, where).toBe(false);
        expect(pod.securityContext?.runAsNonRoot, where).toBe(true);
        expect(pod.securityContext?.seccompProfile?.type, where).toBe('RuntimeDefault');
        for (const container of containersOf(object)) {
          const at = `${where} ${container.name}`;
          const security = container.securityContext;
          expect(security?.runAsNonRoot, at).toBe(true);
          expect(security?.readOnlyRootFilesystem, at).toBe(true);
          expect(security?.allowPrivilegeEscalation, at).toBe(false);
          expect(security?.capabilities?.drop, at).toContain('ALL');
          expect(security?.seccompProfile?.type, at).toBe('RuntimeDefault');
          expect(Object.keys(container.resources?.requests ?? {}), at).toEqual(
            expect.arrayContaining(['cpu', 'memory']),
          );
          expect(Object.keys(container.resources?.limits ?? {}), at).toEqual(
            expect.arrayContaining(['memory']),
          );
          if (object.kind === 'Deployment' || object.kind === 'StatefulSet') {
            expect(container.startupProbe, at).toBeDefined();
            expect(container.livenessProbe, at).toBeDefined();
            expect(container.readinessProbe, at).toBeDefined();
          }
          if (container.image.startsWith('ghcr.io/allot-dev/')) {
            expect(container.volumeMounts, at).toContainEqual({ name: 'tmp', mountPath: '/tmp' });
            expect(pod.volumes?.find((v) => v.name === 'tmp')?.emptyDir, at).toBeDefined();
          }
        }
      }
    }
  });

  it('renders no ServiceAccount that mounts a token', () => {
    for (const objects of umbrellaRenders.values()) {
      for (const account of objects.filter((o) => o.kind === 'ServiceAccount')) {
        expect(
          (account as unknown as { automountServiceAccountToken: boolean }).automountServiceAccountToken,
        ).toBe(false);
      }
    }
  });
});

/** What the deploy contract says each Allot process is. */
const DATA_PLANE_KEYS = ['DATABASE_URL', 'REDIS_URL', 'NATS_URL', 'ALLOT_API_KEY'];
/** Read when the Secret has them (optional secretKeyRefs), after the required keys. */
const REDIS_OPTIONAL_KEYS = ['REDIS_TLS_CA'];
const PROCESSES: Record<
  string,
  { image: string; args: string[]; secretKeys: string[]; optional?: string[] }
> = {
  'allot-gate': {
    image: 'allot-gate',
    args: ['server.mjs'],
    secretKeys: DATA_PLANE_KEYS,
    optional: REDIS_OPTIONAL_KEYS,
  },
  'allot-credits': {
    image: 'allot-credits',
    args: ['server.mjs'],
    secretKeys: DATA_PLANE_KEYS,
    optional: REDIS_OPTIONAL_KEYS,
  },
  'allot-credits-worker': {
    image: 'allot-credits',
    args: ['worker.mjs'],
    secretKeys: DATA_PLANE_KEYS,
    optional: REDIS_OPTIONAL_KEYS,
  },
  'allot-metering': {
    image: 'allot-metering',
    args: ['server.mjs'],
    secretKeys: ['DATABASE_URL', 'NATS_URL', 'ALLOT_API_KEY'],
  },
  'allot-metering-worker': {
    image: 'allot-metering',
    args: ['worker.mjs'],
    secretKeys: ['DATABASE_URL', 'NATS_URL', 'ALLOT_API_KEY'],
  },
  'allot-governance': {
    image: 'allot-governance',
    args: ['server.mjs'],
    secretKeys: DATA_PLANE_KEYS,
    optional: REDIS_OPTIONAL_KEYS,
  },
  'allot-control-plane': {
    image: 'allot-control-plane',
    args: ['server.mjs'],
    secretKeys: ['DATABASE_URL', 'ALLOT_HUB_PASSWORD', 'ALLOT_API_KEY'],
  },
  'allot-mcp': {
    image: 'allot-mcp',
    args: ['server.mjs'],
    secretKeys: DATA_PLANE_KEYS,
    optional: REDIS_OPTIONAL_KEYS,
  },
  // REDIS_URL optional: see charts/uplink/templates/_helpers.tpl.
  'allot-uplink': {
    image: 'allot-uplink',
    args: ['uplink.mjs'],
    secretKeys: ['DATABASE_URL', 'NATS_URL', 'ALLOT_UPLINK_PASSWORD'],
    optional: ['REDIS_URL', ...REDIS_OPTIONAL_KEYS],
  },
};

describe('the deploy contract', () => {
  it('runs each process from its image with its args on port 8080, probed on /healthz and /readyz', () => {
    const deployments = umbrella('ci/all.yaml').filter((o) => o.kind === 'Deployment');
    expect(deployments.map((d) => d.metadata.name).sort()).toEqual(Object.keys(PROCESSES).sort());
    for (const deployment of deployments) {
      const expected = PROCESSES[deployment.metadata.name]!;
      const pod = podSpecOf(deployment)!;
      expect(pod.containers).toHaveLength(1);
      const [container] = pod.containers;
      expect(container!.image).toBe(`ghcr.io/allot-dev/${expected.image}:0.1.0`);
      expect(container!.args).toEqual(expected.args);
      expect(container!.command).toBeUndefined();
      expect(container!.ports).toEqual([{ name: 'http', containerPort: 8080, protocol: 'TCP' }]);
      expect(container!.startupProbe?.httpGet).toEqual({ path: '/healthz', port: 'http' });
      expect(container!.livenessProbe?.httpGet).toEqual({ path: '/healthz', port: 'http' });
      expect(container!.readinessProbe?.httpGet).toEqual({ path: '/readyz', port: 'http' });
      const refs = secretRefsOf(container!);
      expect(refs.filter((ref) => !ref.optional).map((ref) => ref.key)).toEqual(expected.secretKeys);
      expect(refs.filter((ref) => ref.optional).map((ref) => ref.key)).toEqual(expected.optional ?? []);
      expect(pod.terminationGracePeriodSeconds).toBeGreaterThan(10);
      const template = spec<{ template: { metadata: { annotations: Record<string, string> } } }>(deployment);
      expect(template.template.metadata.annotations['checksum/config']).toMatch(/^[a-f0-9]{64}$/);
      expect(container!.envFrom?.[0]?.configMapRef?.name).toBe(
        `${deployment.metadata.name.replace(/-worker$/, '')}-env`,
      );
    }
  });

  it('sets the contract plain variables in each chart env ConfigMap', () => {
    const configMaps = new Map(
      umbrella('ci/all.yaml')
        .filter((o) => o.kind === 'ConfigMap' && o.metadata.name.endsWith('-env'))
        .map((o) => [o.metadata.name, o.data ?? {}]),
    );
    for (const data of configMaps.values()) {
      expect(data).toMatchObject({ PORT: '8080', NODE_ENV: 'production', LOG_LEVEL: 'info' });
    }
    expect(configMaps.get('allot-gate-env')).toMatchObject({
      ALLOT_TENANT: 'default',
      ALLOT_FAIL_OPEN: 'false',
    });
    expect(configMaps.get('allot-metering-env')).toMatchObject({ METERING_PARTITIONS: '4' });
    expect(configMaps.get('allot-control-plane-env')).toMatchObject({
      ALLOT_TENANT: 'operator',
      ALLOT_HUB_URL: 'nats://allot-nats:4222',
      ALLOT_HUB_USER: 'control-plane',
    });
    expect(configMaps.get('allot-uplink-env')).toMatchObject({
      ALLOT_UPLINK_URL: 'nats://allot-nats:4222',
      ALLOT_UPLINK_USER: 'default',
    });
    expect(configMaps.get('allot-mcp-env')).toMatchObject({
      ALLOT_GATE_URL: 'http://allot-gate:8080',
      ALLOT_CREDITS_URL: 'http://allot-credits:8080',
      ALLOT_METERING_URL: 'http://allot-metering:8080',
    });
    const meteringServer = podSpecOf(
      umbrella('ci/all.yaml').find((o) => identity(o) === 'Deployment/allot-metering')!,
    )!.containers[0]!;
    expect(meteringServer.env).toContainEqual({ name: 'METERING_WORKER', value: 'false' });
  });

  it('runs exactly one uplink agent, replaced not rolled, that only dials out', () => {
    const objects = umbrella('ci/data-plane-with-uplink.yaml');
    const uplink = objects.filter((o) => labelOf(o, NAME) === 'uplink');
    const deployment = uplink.find((o) => o.kind === 'Deployment')!;
    expect(spec<{ replicas: number; strategy: { type: string } }>(deployment)).toMatchObject({
      replicas: 1,
      strategy: { type: 'Recreate' },
    });
    expect(uplink.filter((o) => ['HorizontalPodAutoscaler', 'PodDisruptionBudget'].includes(o.kind))).toEqual(
      [],
    );
    const policy = spec<{
      ingress: Array<{ from: unknown[] }>;
      egress: Array<{ ports: Array<{ port: number | string }> }>;
    }>(uplink.find((o) => o.kind === 'NetworkPolicy')!);
    // Only the Prometheus namespace the ci file names may come in; nothing from the vendor.
    expect(policy.ingress.flatMap((rule) => rule.from)).toEqual([
      { namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'monitoring' } } },
    ]);
    const egressPorts = policy.egress.flatMap((rule) => rule.ports.map((p) => p.port));
    expect(egressPorts).toEqual(expect.arrayContaining([53, 5432, 6379, 4222, 7422, 443]));
    const env = new Map(
      objects.filter((o) => identity(o) === 'ConfigMap/allot-uplink-env').map((o) => [0, o.data ?? {}]),
    ).get(0);
    expect(env).toMatchObject({ ALLOT_UPLINK_URL: 'tls://hub.example.com:443', ALLOT_UPLINK_USER: 'acme' });
    const secretRefs = secretRefsOf(podSpecOf(deployment)!.containers[0]!);
    expect(secretRefs).toContainEqual({ name: 'allot-credentials', key: 'ALLOT_UPLINK_PASSWORD' });
    expect(secretRefs).toContainEqual({ name: 'allot-credentials', key: 'REDIS_URL', optional: true });
  });

  it('lets data-plane pods in on port http only, and out to DNS and their backends', () => {
    const policy = umbrella('values.yaml').find((o) => identity(o) === 'NetworkPolicy/allot-gate')!;
    const body = spec<{
      policyTypes: string[];
      ingress: Array<{ ports: unknown[] }>;
      egress: Array<{ ports: Array<{ port: number }> }>;
    }>(policy);
    expect(body.policyTypes).toEqual(['Ingress', 'Egress']);
    expect(body.ingress.flatMap((rule) => rule.ports)).toEqual([{ port: 'http', protocol: 'TCP' }]);
    expect(body.egress.flatMap((rule) => rule.ports.map((p) => p.port)).sort()).toEqual([
      4222, 53, 53, 5432, 6379,
    ]);
    const metering = umbrella('values.yaml').find((o) => identity(o) === 'NetworkPolicy/allot-metering')!;
    const meteringPorts = spec<{ egress: Array<{ ports: Array<{ port: number }> }> }>(
      metering,
    ).egress.flatMap((rule) => rule.ports.map((p) => p.port));
    expect(meteringPorts).not.toContain(6379);
    const mcp = umbrella('values.yaml').find((o) => identity(o) === 'NetworkPolicy/allot-mcp')!;
    const mcpPorts = spec<{ egress: Array<{ ports: Array<{ port: number }> }> }>(mcp).egress.flatMap((rule) =>
      rule.ports.map((p) => p.port),
    );
    expect(mcpPorts).toContain(8080); // its tools call the gate's API
  });
});

describe('scaling', () => {
  const hpas = (set: string) =>
    umbrella(set)
      .filter((o) => o.kind === 'HorizontalPodAutoscaler')
      .map((o) => o.metadata.name)
      .sort();

  it('autoscales the gate and the metering server by default, nothing in the minimal values', () => {
    expect(hpas('values.yaml')).toEqual(['allot-gate', 'allot-metering']);
    expect(hpas('values-minimal.yaml')).toEqual([]);
    const gate = umbrella('values-minimal.yaml').find((o) => identity(o) === 'Deployment/allot-gate')!;
    expect(spec<{ replicas: number }>(gate).replicas).toBe(1);
  });

  it('leaves replicas to the HPA it renders, and budgets disruptions only for several replicas', () => {
    for (const [set, objects] of umbrellaRenders) {
      const scaled = new Set(
        objects.filter((o) => o.kind === 'HorizontalPodAutoscaler').map((o) => o.metadata.name),
      );
      for (const deployment of objects.filter((o) => o.kind === 'Deployment')) {
        const { replicas } = spec<{ replicas?: number }>(deployment);
        const name = deployment.metadata.name;
        expect(replicas === undefined, `${set}: ${name}`).toBe(scaled.has(name));
        const minimum = scaled.has(name)
          ? spec<{ minReplicas: number }>(
              objects.find((o) => identity(o) === `HorizontalPodAutoscaler/${name}`)!,
            ).minReplicas
          : replicas!;
        const pdb = objects.find((o) => identity(o) === `PodDisruptionBudget/${name}`);
        expect(pdb !== undefined, `${set}: ${name} runs ${minimum}`).toBe(minimum > 1);
      }
    }
  });

  it('gives production at least two replicas of every service, with HPAs, PDBs, policies and monitors', () => {
    const objects = umbrella('values-production.yaml');
    const deployments = objects.filter((o) => o.kind === 'Deployment');
    expect(deployments.length).toBeGreaterThanOrEqual(7);
    for (const deployment of deployments) {
      const name = deployment.metadata.name;
      const hpa = objects.find((o) => identity(o) === `HorizontalPodAutoscaler/${name}`);
      const replicas = hpa
        ? spec<{ minReplicas: number }>(hpa).minReplicas
        : spec<{ replicas: number }>(deployment).replicas;
      expect(replicas, name).toBeGreaterThanOrEqual(2);
      for (const kind of ['PodDisruptionBudget', 'NetworkPolicy', 'ServiceMonitor']) {
        expect(
          objects.some((o) => identity(o) === `${kind}/${name}`),
          `${kind}/${name}`,
        ).toBe(true);
      }
    }
    expect(objects.filter((o) => o.kind === 'HorizontalPodAutoscaler').length).toBeGreaterThanOrEqual(5);
  });
});

describe('production values', () => {
  it('bring no database, cache or broker, and no Secret from values', () => {
    const sets = {
      'values-production.yaml': 'allot-credentials',
      'ci/data-plane-with-uplink.yaml': 'allot-credentials',
      'ci/control-plane-production.yaml': 'allot-control-plane-credentials',
    };
    for (const [set, secret] of Object.entries(sets)) {
      const objects = umbrella(set);
      expect(
        objects.filter((o) => o.kind === 'StatefulSet'),
        set,
      ).toEqual([]);
      expect(
        objects.filter((o) => o.kind === 'Secret'),
        set,
      ).toEqual([]);
      for (const object of objects) {
        expect(['postgres', 'redis', 'nats'], `${set}: ${identity(object)}`).not.toContain(
          labelOf(object, NAME),
        );
        expect(identity(object), set).not.toMatch(/nats|postgres|redis/);
        for (const container of containersOf(object)) {
          expect(container.image, `${set}: ${identity(object)}`).not.toMatch(/postgres|redis|nats/);
        }
      }
      // Every credential is read from the existing Secret.
      const refs = objects
        .flatMap(containersOf)
        .flatMap(secretRefsOf)
        .map((ref) => ref.name);
      expect(new Set(refs), set).toEqual(new Set([secret]));
    }
  });

  it('is where the development defaults are not: they do run PostgreSQL, Redis and the NATS chart', () => {
    const names = new Set(umbrella('values.yaml').map((o) => labelOf(o, NAME)));
    for (const backend of ['postgres', 'redis', 'nats']) expect(names).toContain(backend);
    const images = umbrella('values.yaml')
      .flatMap(containersOf)
      .map((c) => c.image);
    expect(images).toEqual(expect.arrayContaining(['postgres:15-alpine', 'redis:7-alpine']));
  });
});

/** Renders values that must fail; returns Helm's error. */
async function rejected(chart: string, values: unknown, sets: string[] = []): Promise<string> {
  const file = await workspace.writeFile(
    `bad-${Math.random().toString(36).slice(2)}.yaml`,
    stringify(values),
  );
  const args = ['template', RELEASE, chartDir(chart), '-f', file];
  for (const set of sets) args.push('--set', set);
  const result = await helm(args);
  expect(result.ok, `${chart} accepted ${JSON.stringify(values)}`).toBe(false);
  return result.stderr;
}

describe('backend modes', () => {
  const envOf = (objects: K8sObject[], chart: string) =>
    objects.find((o) => identity(o) === `ConfigMap/allot-${chart}-env`)?.data ?? {};

  it('tell every chart that uses Redis whether it is a Redis Cluster, and every NATS user the stream replicas', () => {
    const defaults = umbrella('ci/all.yaml');
    for (const chart of ['gate', 'credits', 'governance', 'mcp', 'uplink']) {
      expect(envOf(defaults, chart), chart).toMatchObject({ REDIS_CLUSTER: 'false', NATS_REPLICAS: '1' });
    }
    expect(envOf(defaults, 'metering')).toMatchObject({ NATS_REPLICAS: '1' });
    expect(envOf(defaults, 'metering')).not.toHaveProperty('REDIS_CLUSTER');
    // The control plane talks to its hub, not to JetStream streams of its own.
    expect(envOf(defaults, 'control-plane')).not.toHaveProperty('NATS_REPLICAS');
    expect(envOf(defaults, 'control-plane')).not.toHaveProperty('REDIS_CLUSTER');

    const scaled = umbrella('values-scale.yaml');
    for (const chart of ['gate', 'credits', 'governance', 'mcp']) {
      expect(envOf(scaled, chart), chart).toMatchObject({ REDIS_CLUSTER: 'true', NATS_REPLICAS: '3' });
    }
    expect(envOf(scaled, 'metering')).toMatchObject({ NATS_REPLICAS: '3', METERING_PARTITIONS: '4' });
  });

  it('open port ranges for a Redis Cluster whose nodes listen on many ports', async () => {
    const file = await workspace.writeFile(
      'redis-ranges.yaml',
      stringify({
        gate: { networkPolicy: { backends: { redis: { ports: [6379, { port: 11000, endPort: 13047 }] } } } },
      }),
    );
    const objects = await render('allot', [file]);
    const policy = objects.find((o) => identity(o) === 'NetworkPolicy/allot-gate')!;
    const ports = spec<{ egress: Array<{ ports: unknown[] }> }>(policy).egress.flatMap((rule) => rule.ports);
    expect(ports).toEqual(
      expect.arrayContaining([
        { port: 6379, protocol: 'TCP' },
        { port: 11000, endPort: 13047, protocol: 'TCP' },
      ]),
    );
    expect(schemaError(policy)).toBe('');
  });
});

describe('scale-out values (values-scale.yaml on values-production.yaml)', () => {
  const objects = () => umbrella('values-scale.yaml');
  const deployment = (name: string) => objects().find((o) => identity(o) === `Deployment/${name}`);
  const envOfDeployment = (name: string) =>
    Object.fromEntries(
      (podSpecOf(deployment(name)!)!.containers[0]!.env ?? []).flatMap((e) =>
        e.value === undefined ? [] : [[e.name, e.value]],
      ),
    );

  it('runs the NATS chart as a 3-node JetStream cluster on volumes, one server per zone, fsyncing every write', () => {
    const nats = natsChartValues(objects());
    expect(nats).toMatchObject({
      enabled: true,
      config: {
        cluster: { enabled: true, replicas: 3 },
        jetstream: {
          enabled: true,
          fileStore: { enabled: true, pvc: { enabled: true, size: '10Gi' } },
          merge: { sync_interval: 'always' },
        },
      },
      podTemplate: {
        topologySpreadConstraints: {
          'topology.kubernetes.io/zone': { maxSkew: 1, whenUnsatisfiable: 'DoNotSchedule' },
        },
      },
      podDisruptionBudget: { enabled: true },
      global: { nats: { replicas: 3 }, redis: { cluster: true } },
    });
  });

  it('brings no database, cache or Secret, and reads every credential from the existing Secret', () => {
    expect(objects().filter((o) => ['Secret', 'StatefulSet'].includes(o.kind))).toEqual([]);
    expect(objects().filter((o) => ['postgres', 'redis'].includes(labelOf(o, NAME) ?? ''))).toEqual([]);
    const refs = new Set(
      objects()
        .flatMap(containersOf)
        .flatMap(secretRefsOf)
        .map((ref) => ref.name),
    );
    expect(refs).toEqual(new Set(['allot-credentials']));
  });

  it('runs at least three gates under an HPA, spreads every process across zones, and budgets disruptions', () => {
    const hpa = objects().find((o) => identity(o) === 'HorizontalPodAutoscaler/allot-gate')!;
    expect(spec<{ minReplicas: number }>(hpa).minReplicas).toBeGreaterThanOrEqual(3);
    for (const d of objects().filter((o) => o.kind === 'Deployment')) {
      const spread = podSpecOf(d)!.topologySpreadConstraints ?? [];
      expect(spread, d.metadata.name).toContainEqual(
        expect.objectContaining({
          topologyKey: 'topology.kubernetes.io/zone',
          labelSelector: { matchLabels: expect.objectContaining({ [COMPONENT]: labelOf(d, COMPONENT) }) },
        }),
      );
      const name = d.metadata.name;
      const autoscaler = objects().find((o) => identity(o) === `HorizontalPodAutoscaler/${name}`);
      const fewest = autoscaler
        ? spec<{ minReplicas: number }>(autoscaler).minReplicas
        : spec<{ replicas: number }>(d).replicas;
      const pdb = objects().some((o) => identity(o) === `PodDisruptionBudget/${name}`);
      expect(pdb, `${name} runs at least ${fewest}`).toBe(fewest > 1);
    }
  });

  it('splits the metering partitions between two workers; only the first turns settles into usage', () => {
    const workers = objects()
      .filter((o) => o.kind === 'Deployment' && labelOf(o, NAME) === 'metering')
      .map((o) => o.metadata.name)
      .sort();
    expect(workers).toEqual(['allot-metering', 'allot-metering-worker-0', 'allot-metering-worker-1']);
    expect(envOfDeployment('allot-metering-worker-0')).toMatchObject({
      METERING_TAKE: '0,1',
      METERING_SETTLED_USAGE: 'true',
    });
    expect(envOfDeployment('allot-metering-worker-1')).toMatchObject({
      METERING_TAKE: '2,3',
      METERING_SETTLED_USAGE: 'false',
    });
    for (const name of ['allot-metering-worker-0', 'allot-metering-worker-1']) {
      expect(podSpecOf(deployment(name)!)!.containers[0]!.args).toEqual(['worker.mjs']);
      for (const kind of ['Service', 'NetworkPolicy', 'ServiceMonitor']) {
        expect(
          objects().some((o) => identity(o) === `${kind}/${name}`),
          `${kind}/${name}`,
        ).toBe(true);
      }
    }
  });

  it('refuses partition sets that leave a partition out, take one twice, or name one that does not exist', async () => {
    const base = { global: { existingSecret: 'allot' }, devBackends: { postgres: { enabled: false } } };
    const sets = (partitionSets: string[], more: Record<string, unknown> = {}) => ({
      ...base,
      metering: { worker: { partitionSets, ...more } },
    });
    const [missing, twice, unknown, both] = await Promise.all([
      rejected('allot', sets(['0,1', '2'])),
      rejected('allot', sets(['0,1', '1,2,3'])),
      rejected('allot', sets(['0,1', '2,3,4'])),
      rejected('allot', sets(['0,1', '2,3'], { take: '0' })),
    ]);
    expect(missing).toMatch(/leave partitions 3 to no worker/);
    expect(twice).toMatch(/partition 1 is in two of worker.partitionSets/);
    expect(unknown).toMatch(/names partition 4, but partitions \(METERING_PARTITIONS\) is 4/);
    expect(both).toMatch(/worker.take .* or worker.partitionSets .*, not both/);
  });

  it('raises an HPA maximum to its minimum rather than render one the API server refuses', async () => {
    const file = await workspace.writeFile(
      'gate-min.yaml',
      stringify({ gate: { autoscaling: { minReplicas: 12, maxReplicas: 10 } } }),
    );
    const hpa = (await render('allot', [file])).find(
      (o) => identity(o) === 'HorizontalPodAutoscaler/allot-gate',
    )!;
    expect(spec<{ minReplicas: number; maxReplicas: number }>(hpa)).toMatchObject({
      minReplicas: 12,
      maxReplicas: 12,
    });
  });
});

describe('subsets', () => {
  /** Umbrella key to disable → the app.kubernetes.io/name of its objects. */
  const COMPONENTS: Array<[string, string]> = [
    ...Object.entries(SERVICE_CHARTS).map(([chart, key]): [string, string] => [`${key}.enabled`, chart]),
    ['devBackends.postgres.enabled', 'postgres'],
    ['devBackends.redis.enabled', 'redis'],
    ['nats.enabled', 'nats'],
  ];

  it('removes all of a component’s objects, and only those, when it is disabled', async () => {
    const base = umbrella('ci/all.yaml');
    const file = join(umbrellaDir(), 'ci/all.yaml');
    const renders = await Promise.all(COMPONENTS.map(([flag]) => render('allot', [file], [`${flag}=false`])));
    COMPONENTS.forEach(([flag, name], i) => {
      const without = renders[i]!;
      const owned = base.filter((o) => labelOf(o, NAME) === name);
      expect(owned.length, `${name} renders objects in ci/all.yaml`).toBeGreaterThan(0);
      expect(
        without.filter((o) => labelOf(o, NAME) === name),
        flag,
      ).toEqual([]);
      expect(without, flag).toEqual(base.filter((o) => labelOf(o, NAME) !== name));
    });
  });

  it('renders each subset with exactly the components it names', () => {
    const components = (set: string) =>
      [...new Set(umbrella(set).map((o) => labelOf(o, NAME)))].sort((a, b) =>
        String(a).localeCompare(String(b)),
      );
    expect(components('ci/gate-only.yaml')).toEqual(['gate', 'nats', 'postgres', 'redis']);
    expect(components('values-minimal.yaml')).toEqual(['gate', 'nats', 'postgres', 'redis']);
    expect(components('ci/metering-only.yaml')).toEqual(['metering', 'nats', 'postgres']);
    expect(components('ci/control-plane-only.yaml')).toEqual(['control-plane', 'nats', 'postgres']);
    expect(components('ci/control-plane-production.yaml')).toEqual(['control-plane']);
    expect(components('ci/gate-credits-governance.yaml')).toEqual([
      'credits',
      'gate',
      'governance',
      'nats',
      'postgres',
      'redis',
    ]);
    expect(components('ci/all.yaml')).toEqual([
      'control-plane',
      'credits',
      'gate',
      'governance',
      'mcp',
      'metering',
      'nats',
      'postgres',
      'redis',
      'uplink',
    ]);
    expect(components('ci/data-plane-with-uplink.yaml')).toEqual([
      'credits',
      'gate',
      'governance',
      'mcp',
      'metering',
      'uplink',
    ]);
  });

  it('renders each service chart alone', () => {
    for (const [set, objects] of chartRenders) {
      const chart = set.split(' ')[0]!;
      expect(new Set(objects.map((o) => labelOf(o, NAME))), set).toEqual(new Set([chart]));
      expect(
        objects.some((o) => o.kind === 'Deployment'),
        set,
      ).toBe(true);
    }
  });
});

describe('migrations', () => {
  it('run as one hook Job per service chart, before install and upgrade when the Secret exists beforehand', () => {
    // With the dev Secret (an ordinary release object) the first install migrates post-install.
    const hooks: Record<string, string> = {
      'values-production.yaml': 'pre-install,pre-upgrade',
      'ci/data-plane-with-uplink.yaml': 'pre-install,pre-upgrade',
      'ci/control-plane-production.yaml': 'pre-install,pre-upgrade',
      'values-scale.yaml': 'pre-install,pre-upgrade',
      'values.yaml': 'post-install,pre-upgrade',
      'ci/all.yaml': 'post-install,pre-upgrade',
    };
    for (const [set, hook] of Object.entries(hooks)) {
      const objects = umbrella(set);
      const jobs = objects.filter((o) => o.kind === 'Job');
      // mcp owns no tables and its image has no migrate.mjs (scripts/bundle.ts).
      const charts = new Set(
        objects
          .filter((o) => o.kind === 'Deployment' && labelOf(o, NAME) !== 'mcp')
          .map((o) => labelOf(o, NAME)),
      );
      expect(new Set(jobs.map((job) => labelOf(job, NAME))), set).toEqual(charts);
      for (const job of jobs) {
        const where = `${set}: ${identity(job)}`;
        expect(labelOf(job, COMPONENT), where).toBe('migrations');
        expect(annotation(job, 'helm.sh/hook'), where).toBe(hook);
        expect(annotation(job, 'helm.sh/hook-delete-policy'), where).toBe(
          'before-hook-creation,hook-succeeded',
        );
        expect(annotation(job, 'helm.sh/hook-weight'), where).toMatch(/^-?\d+$/);
        const [container] = podSpecOf(job)!.containers;
        expect(container!.args, where).toEqual(['migrate.mjs']);
        expect(container!.envFrom, where).toBeUndefined(); // the env ConfigMap does not exist yet
        expect(secretKeysOf(container!), where).toContain('DATABASE_URL');
        expect(spec<{ template: { spec: { restartPolicy: string } } }>(job).template.spec.restartPolicy).toBe(
          'Never',
        );
      }
    }
  });
});

describe('helm test', () => {
  const testPod = (set: string) =>
    umbrella(set).find((o) => o.kind === 'Pod' && annotation(o, 'helm.sh/hook') === 'test');

  it('is a gate-image pod that makes one decision, surfaced through the umbrella', () => {
    for (const set of ['values.yaml', 'values-production.yaml', 'values-minimal.yaml']) {
      const pod = testPod(set);
      expect(pod, set).toBeDefined();
      const [container] = podSpecOf(pod!)!.containers;
      expect(container!.image).toBe('ghcr.io/allot-dev/allot-gate:0.1.0');
      expect(container!.args?.[0]).toBe('-e');
      expect(container!.env).toContainEqual({
        name: 'GATE_URL',
        value: 'http://allot-gate:8080/v1/decisions',
      });
    }
    expect(testPod('ci/metering-only.yaml')).toBeUndefined();
  });

  describe('its script', () => {
    type Answer = { status: number; body: string };
    let answers: Answer[] = [];
    const seen: Array<{
      method: string | undefined;
      url: string | undefined;
      authorization: string | undefined;
      body: string;
    }> = [];
    const server = createServer(async (request: IncomingMessage, response) => {
      let body = '';
      for await (const chunk of request) body += chunk;
      seen.push({
        method: request.method,
        url: request.url,
        authorization: request.headers.authorization,
        body,
      });
      const answer = answers.shift() ?? { status: 500, body: '{}' };
      response.writeHead(answer.status, { 'content-type': 'application/json' }).end(answer.body);
    });
    let url = '';

    beforeAll(async () => {
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1/decisions`;
    });
    afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

    /** Runs the rendered script under this Node (the image's entrypoint is node). */
    async function run(given: Answer[], waitMs = 0): Promise<number> {
      answers = given;
      const [container] = podSpecOf(testPod('values.yaml')!)!.containers;
      try {
        await execFileAsync(process.execPath, container!.args!, {
          env: { GATE_URL: url, ALLOT_API_KEY: 'test-key-0123456789', WAIT_MS: String(waitMs) },
        });
        return 0;
      } catch (error) {
        return (error as { code?: number }).code ?? -1;
      }
    }

    it('passes on HTTP 200 with a decision, sending the contract request', async () => {
      seen.length = 0;
      expect(await run([{ status: 200, body: '{"decision":"deny","reason":"unknown customer"}' }])).toBe(0);
      expect(seen).toEqual([
        {
          method: 'POST',
          url: '/v1/decisions',
          authorization: 'Bearer test-key-0123456789',
          body: JSON.stringify({ customerId: 'helm-test', feature: 'helm-test' }),
        },
      ]);
    });

    it('fails without a decision, on another status, or with nobody answering', async () => {
      expect(await run([{ status: 200, body: '{"ok":true}' }])).toBe(1);
      expect(await run([{ status: 200, body: 'not json' }])).toBe(1);
      expect(await run([{ status: 401, body: '{"decision":"deny"}' }])).toBe(1);
      answers = [];
      const [container] = podSpecOf(testPod('values.yaml')!)!.containers;
      const unreachable = await execFileAsync(process.execPath, container!.args!, {
        env: { GATE_URL: 'http://127.0.0.1:1/v1/decisions', ALLOT_API_KEY: 'k', WAIT_MS: '0' },
      }).then(
        () => 0,
        (error: { code?: number }) => error.code,
      );
      expect(unreachable).toBe(1);
    });

    it('waits out a gate that is not ready yet', async () => {
      expect(
        await run(
          [
            { status: 503, body: '{"ready":false}' },
            { status: 200, body: '{"decision":"allow"}' },
          ],
          10_000,
        ),
      ).toBe(0);
    }, 20_000);
  });
});

describe('NOTES.txt', () => {
  it('renders for every value set and says what was installed', () => {
    expect(notes.size).toBe(lints.size - 1);
    for (const [set, result] of notes) {
      expect(result.ok, `${set}\n${result.stderr}`).toBe(true);
      expect(result.stdout, set).toMatch(/installed/);
      expect(result.stdout, set).not.toMatch(/<no value>/);
    }
  });

  it('tells how to make a first decision, and warns when credentials come from values', () => {
    const dev = notes.get('values.yaml')!.stdout;
    expect(dev).toContain('svc/allot-gate');
    expect(dev).toContain('get secret allot-gate-dev-credentials');
    expect(dev).toContain('/v1/decisions');
    expect(dev).toContain('helm test allot -n allot --logs');
    expect(dev).toMatch(/WARNING: global.existingSecret is empty/);
    const production = notes.get('values-production.yaml')!.stdout;
    expect(production).toContain('get secret allot-credentials');
    expect(production).not.toMatch(/WARNING|Development backends/);
    const scaled = notes.get('values-scale.yaml')!.stdout;
    expect(scaled).toContain('a JetStream cluster of 3 servers');
    expect(scaled).toContain('streams and buckets with 3 replicas each');
    expect(scaled).not.toMatch(/WARNING|Development backends/);
    expect(notes.get('ci/control-plane-only.yaml')!.stdout).toMatch(/web UI/);
    expect(notes.get('ci/metering-only.yaml')!.stdout).not.toContain('/v1/decisions');
  });
});

describe('values.schema.json', () => {
  it('rejects bad values in the umbrella and in the service charts', async () => {
    const [replicas, unknownKey, logLevel, uplinkUrl, devSecretKey, credits, pdb] = await Promise.all([
      rejected('allot', { gate: { replicaCount: 'two' } }),
      rejected('allot', { gatee: { enabled: true } }),
      rejected('allot', { metering: { logLevel: 'loud' } }),
      rejected('allot', { uplink: { enabled: true, url: 'http://hub.example.com' } }),
      rejected('allot', { global: { devSecret: { DATABSE_URL: 'postgres://x' } } }),
      rejected('credits', { existingSecret: 'allot', server: { replicas: 2 } }),
      rejected('gate', { existingSecret: 'allot', pdb: { enabled: 'sometimes' } }),
    ]);
    expect(replicas).toMatch(/gate:[\s\S]*\/replicaCount[\s\S]*want integer/);
    expect(unknownKey).toMatch(/additional properties 'gatee' not allowed/);
    expect(logLevel).toMatch(/\/logLevel/);
    expect(uplinkUrl).toMatch(/\/url/);
    expect(devSecretKey).toMatch(/DATABSE_URL/);
    expect(credits).toMatch(/additional properties 'replicas' not allowed/);
    expect(pdb).toMatch(/\/pdb\/enabled/);
  });

  it('and the templates refuse what the schema cannot see', async () => {
    const production = join(umbrellaDir(), 'values-production.yaml');
    const noSecret = await helm([
      'template',
      RELEASE,
      umbrellaDir(),
      '-f',
      production,
      '--set',
      'global.existingSecret=',
    ]);
    expect(noSecret.ok).toBe(false);
    expect(noSecret.stderr).toMatch(/global.allowDevSecret is false/);
    const [devWithSecret, uplinkWithoutUrl, chartWithoutCredentials] = await Promise.all([
      rejected('allot', { global: { existingSecret: 'allot-credentials' } }),
      rejected('allot', { uplink: { enabled: true } }),
      rejected('governance', {}),
    ]);
    expect(devWithSecret).toMatch(/devBackends.postgres/);
    expect(uplinkWithoutUrl).toMatch(/uplink: url \(ALLOT_UPLINK_URL/);
    expect(chartWithoutCredentials).toMatch(/no existingSecret is set/);
  });
});
