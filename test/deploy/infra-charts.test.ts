/**
 * The CDKTF stacks (infra/) against the umbrella chart (charts/allot): for stacks of both clouds
 * and both planes, the helm_release's values exactly as Terraform would hand them to Helm, its
 * interpolations resolved (a literal the synthesized JSON holds, otherwise a stand-in for what
 * only exists after apply), rendered by the real Helm (ChartWorkspace, ./support/helm.ts), every
 * object validated against the Kubernetes schemas, then: the Deployments are exactly the enabled
 * components, every container reads its credentials from the Secret the stack creates and the
 * Secret holds every key they need (and none that nobody reads), nothing creates a database, a
 * cache, a broker or a Secret from values, and the settings each side assumes of the other (Redis
 * mode and ports, NATS replicas, replica counts, the URLs between services) agree.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { type Synth, single, synth } from '../../infra/test/synth.ts';
import { SECRET_KEYS } from '../../scripts/chart-schemas.ts';
import {
  ChartWorkspace,
  COMPONENT,
  containersOf,
  identity,
  type K8sObject,
  labelOf,
  NAME,
  natsChartValues,
  podSpecOf,
  ROOT,
  schemaError,
  secretRefsOf,
  spec,
} from './support/helm.ts';

type Cloud = 'aws' | 'gcp';
type Plane = 'data-plane' | 'control-plane';
type Input = Record<string, unknown> & {
  components?: string[];
  tenant?: string;
  replicas?: Record<string, number>;
  redis?: { mode?: string };
  nats?: { mode?: string; replicas?: number };
  uplink?: { url: string; user: string };
  image?: { registry?: string };
};

const ALL = ['gate', 'credits', 'metering', 'governance', 'mcp', 'uplink'];
const hub = { url: 'tls://hub.allot.example:443', user: 'acme' };
const awsExisting = {
  network: { mode: 'existing', networkId: 'vpc-0abc', subnetIds: ['subnet-a', 'subnet-b'] },
  cluster: { mode: 'existing', name: 'platform', nodeSecurityGroupIds: ['sg-nodes'] },
};
const gcpExisting = {
  network: {
    mode: 'existing',
    networkId: 'projects/acme-prod/global/networks/shared',
    subnetIds: ['projects/acme-prod/regions/us-central1/subnetworks/gke'],
    privateServiceAccess: 'existing',
  },
  cluster: { mode: 'existing', name: 'platform', location: 'us-central1-a' },
};

/** The stacks to check: each cloud's data plane in several shapes, and its control plane. */
const STACKS: Array<{ name: string; cloud: Cloud; plane: Plane; input: Input }> = (
  ['aws', 'gcp'] as const
).flatMap((cloud) => [
  { name: `${cloud} gate only`, cloud, plane: 'data-plane' as const, input: { components: ['gate'] } },
  {
    name: `${cloud} metering only`,
    cloud,
    plane: 'data-plane' as const,
    input: { components: ['metering'] },
  },
  {
    name: `${cloud} every data-plane component with the uplink`,
    cloud,
    plane: 'data-plane' as const,
    input: {
      tenant: 'acme-prod',
      components: ALL,
      uplink: hub,
      replicas: { gate: 4, credits: 3, metering: 2 },
      image: { registry: 'registry.example.com/mirror', tag: '0.1.1' },
    },
  },
  {
    name: `${cloud} in an existing network and cluster, with an external NATS`,
    cloud,
    plane: 'data-plane' as const,
    input: {
      components: ['gate', 'mcp', 'metering'],
      nats: { mode: 'external', url: 'nats://nats.internal:4222', replicas: 3 },
      ...(cloud === 'aws' ? awsExisting : gcpExisting),
    },
  },
  {
    name: `${cloud} every data-plane component on a Redis Cluster`,
    cloud,
    plane: 'data-plane' as const,
    input: { components: ALL, uplink: hub, redis: { mode: 'cluster', shards: 3, replicasPerShard: 1 } },
  },
  {
    name: `${cloud} control plane`,
    cloud,
    plane: 'control-plane' as const,
    input: { replicaCount: 3, hub: { allowedCidrs: ['203.0.113.0/24'] } },
  },
]);

/** The Deployments (less the release prefix) each umbrella component renders by default. */
const DEPLOYMENTS: Record<string, string[]> = {
  gate: ['gate'],
  credits: ['credits', 'credits-worker'],
  metering: ['metering', 'metering-worker'],
  governance: ['governance'],
  mcp: ['mcp'],
  uplink: ['uplink'],
  controlPlane: ['control-plane'],
};
const USES_REDIS = ['gate', 'credits', 'governance', 'mcp', 'uplink'];

/**
 * What Terraform knows only after apply, and the tests need as a value: the port Memorystore
 * serves TLS on (the instance's `port` attribute), and the discovery endpoint of Memorystore for
 * Redis Cluster. Anything else unknown gets a stand-in of the right kind.
 */
const AFTER_APPLY: Array<[RegExp, string]> = [
  [/^google_redis_instance\.[^.]+\.port$/, '6378'],
  [/^google_redis_cluster\.[^.]+\.discovery_endpoints\[0\]\.port$/, '6379'],
];

/** Replaces each `${…}` of a Terraform string as Terraform would, `$${` being a literal `${`. */
function resolveTemplate(text: string, stack: Synth, seen: string[] = []): string {
  let out = '';
  let i = 0;
  while (i < text.length) {
    if (text.startsWith('$${', i)) {
      out += '${';
      i += 3;
    } else if (text.startsWith('${', i)) {
      const end = closingBrace(text, i + 2);
      out += resolveExpression(text.slice(i + 2, end), stack, seen);
      i = end + 1;
    } else {
      out += text[i];
      i++;
    }
  }
  return out;
}

function closingBrace(text: string, from: number): number {
  let depth = 0;
  let quoted = false;
  for (let i = from; i < text.length; i++) {
    const c = text[i];
    if (quoted) {
      if (c === '\\') i++;
      else if (c === '"') quoted = false;
    } else if (c === '"') quoted = true;
    else if (c === '{') depth++;
    else if (c === '}') {
      if (depth === 0) return i;
      depth--;
    }
  }
  throw new Error(`unclosed interpolation in ${text}`);
}

/** A reference the synthesized JSON holds as a literal resolves to it; anything else to a stand-in. */
function resolveExpression(expression: string, stack: Synth, seen: string[]): string {
  for (const [pattern, value] of AFTER_APPLY) if (pattern.test(expression)) return value;
  const literal = literalOf(expression, stack);
  if (literal !== undefined && !seen.includes(expression)) {
    return resolveTemplate(literal, stack, [...seen, expression]);
  }
  const token = [...expression].reduce((hash, c) => (hash * 31 + c.charCodeAt(0)) >>> 0, 7).toString(16);
  if (/cert/i.test(expression))
    return `-----BEGIN CERTIFICATE-----\\nMIItf${token}\\n-----END CERTIFICATE-----`;
  if (/\.port$/.test(expression)) return '6379';
  if (/(address|host|hostname|endpoint|ip_address)$/.test(expression)) return `h${token}.tf.internal`;
  return `tf${token}`.padEnd(32, '0');
}

function literalOf(expression: string, stack: Synth): string | undefined {
  const [type, name, ...path] = expression.match(/[A-Za-z0-9_-]+|\[(?:\d+|\*)\]/g) ?? [];
  if (!type || !name || !/^[A-Za-z0-9_.[\]-]+$/.test(expression)) return undefined;
  let value: unknown = stack.json.resource?.[type]?.[name];
  for (const segment of path) {
    if (segment === '[*]' || value === undefined || value === null) return undefined;
    // A block is one object in the synthesized JSON and a list of one to Terraform.
    if (/^\[\d+\]$/.test(segment)) value = Array.isArray(value) ? value[Number(segment.slice(1, -1))] : value;
    else value = (value as Record<string, unknown>)[segment];
  }
  return typeof value === 'string' ? value : undefined;
}

/** The interpolations in a Terraform string. */
const interpolations = (text: string) => [...text.matchAll(/(?<!\$)\$\{([^}]*)\}/g)].map((m) => m[1] ?? '');

interface Checked {
  input: Input;
  plane: Plane;
  /** The helm_release's values, as Terraform would write them (its only values document). */
  values: Record<string, Record<string, unknown>>;
  rawValues: string;
  release: { name: string; namespace: string; chart: string };
  secret: { name: string; namespace: string; data: Record<string, string> };
  objects: K8sObject[];
}

let workspace: ChartWorkspace;
const checked = new Map<string, Checked>();

beforeAll(async () => {
  workspace = await ChartWorkspace.create();
  await Promise.all(
    STACKS.map(async ({ name, cloud, plane, input }, index) => {
      const stack = synth(cloud, plane, input);
      const helmRelease = single(stack, 'helm_release') as {
        name: string;
        namespace: string;
        chart: string;
        values: string[];
      };
      expect(helmRelease.values, name).toHaveLength(1);
      const rawValues = helmRelease.values[0]!;
      const values = JSON.parse(resolveTemplate(rawValues, stack));
      const kubernetesSecret = single(stack, 'kubernetes_secret_v1') as {
        metadata: { name: string; namespace: string };
        data: Record<string, string>;
      };
      const release = {
        name: resolveTemplate(helmRelease.name, stack),
        namespace: resolveTemplate(helmRelease.namespace, stack),
        chart: helmRelease.chart,
      };
      const file = await workspace.writeFile(`stack-${index}.json`, JSON.stringify(values));
      checked.set(name, {
        input,
        plane,
        values,
        rawValues,
        release,
        secret: {
          name: resolveTemplate(kubernetesSecret.metadata.name, stack),
          namespace: resolveTemplate(kubernetesSecret.metadata.namespace, stack),
          data: Object.fromEntries(
            Object.entries(kubernetesSecret.data).map(([key, value]) => [key, resolveTemplate(value, stack)]),
          ),
        },
        objects: await workspace.render('allot', [file], {
          release: release.name,
          namespace: release.namespace,
        }),
      });
      // The hub Service the control-plane stack puts in front of the chart's NATS.
      if (plane === 'control-plane') {
        const hubService = single(stack, 'kubernetes_service_v1') as {
          spec: { selector: Record<string, string> };
        };
        expect(hubService.spec.selector['app.kubernetes.io/instance'], name).toBe(release.name);
      }
    }),
  );
}, 120_000);

afterAll(async () => {
  await workspace?.dispose();
});

const deploymentsOf = (objects: K8sObject[]) => objects.filter((o) => o.kind === 'Deployment');
const envOf = (objects: K8sObject[], configMap: string) =>
  objects.find((o) => identity(o) === `ConfigMap/${configMap}`)?.data ?? {};
const egressPorts = (policy: K8sObject) =>
  spec<{ egress: Array<{ ports?: Array<{ port: number | string; endPort?: number }> }> }>(
    policy,
  ).egress.flatMap((rule) => rule.ports ?? []);

for (const { name } of STACKS) {
  describe(name, () => {
    const get = () => checked.get(name)!;
    const components = () =>
      get().plane === 'control-plane' ? ['controlPlane'] : (get().input.components as string[]);

    it('installs charts/allot from the repository, with no value left for Terraform to fill but addresses', () => {
      const { release, rawValues } = get();
      expect(release.chart).toBe(join(ROOT, 'charts/allot'));
      // A credential written into the values would land in the release's history, in clear.
      for (const expression of interpolations(rawValues)) {
        expect(expression).not.toMatch(/random_password|^var\.|auth|token|cert|password/);
      }
    });

    it('renders only known kinds, each valid against its Kubernetes schema', () => {
      const { objects } = get();
      expect(objects.length).toBeGreaterThan(0);
      for (const object of objects) expect(schemaError(object), identity(object)).toBe('');
      const names = objects.map(identity);
      expect(new Set(names).size, 'duplicate objects').toBe(names.length);
    });

    it('runs exactly the Deployments of the enabled components', () => {
      const { objects, release } = get();
      const expected = components().flatMap((component) =>
        (DEPLOYMENTS[component] ?? []).map((deployment) => `${release.name}-${deployment}`),
      );
      expect(
        deploymentsOf(objects)
          .map((d) => d.metadata.name)
          .sort(),
      ).toEqual(expected.sort());
    });

    it('reads every credential from the Secret the stack creates, which holds each key they need and no other', () => {
      const { objects, secret, values, release } = get();
      expect(values.global?.existingSecret).toBe(secret.name);
      expect(secret.namespace).toBe(release.namespace);
      const read = new Set<string>();
      for (const object of objects) {
        for (const container of containersOf(object)) {
          for (const ref of secretRefsOf(container)) {
            const where = `${identity(object)} ${container.name} ${ref.key}`;
            expect(ref.name, where).toBe(secret.name);
            if (!ref.optional) expect(Object.keys(secret.data), where).toContain(ref.key);
            read.add(ref.key);
          }
        }
      }
      // The hub's own password reaches the NATS servers through the NATS chart's container env.
      const natsEnv = (natsChartValues(objects)?.container as { env?: Record<string, unknown> } | undefined)
        ?.env;
      for (const value of Object.values(natsEnv ?? {})) {
        const ref = (value as { valueFrom?: { secretKeyRef?: { name: string; key: string } } }).valueFrom
          ?.secretKeyRef;
        if (!ref) continue;
        expect(ref.name).toBe(secret.name);
        expect(Object.keys(secret.data)).toContain(ref.key);
        read.add(ref.key);
      }
      expect(Object.keys(secret.data).filter((key) => !read.has(key))).toEqual([]);
    });

    it('fills the Secret with values of the shapes the charts and services take', () => {
      for (const [key, value] of Object.entries(get().secret.data)) {
        const rule = SECRET_KEYS[key] as { pattern?: string; minLength?: number } | undefined;
        expect(rule, `${key} is a key of the deploy contract`).toBeDefined();
        if (rule?.pattern) expect(value, key).toMatch(new RegExp(rule.pattern));
        if (rule?.minLength) expect(value.length, key).toBeGreaterThanOrEqual(rule.minLength);
      }
      const redis = get().secret.data.REDIS_URL;
      if (redis !== undefined) expect(redis, 'managed Redis is reached over TLS').toMatch(/^rediss:\/\//);
    });

    it('creates no database, cache, broker or Secret from values; NATS only as the official chart', () => {
      const { objects, input, plane } = get();
      expect(objects.filter((o) => ['Secret', 'StatefulSet'].includes(o.kind))).toEqual([]);
      for (const object of objects) {
        expect(['postgres', 'redis'], identity(object)).not.toContain(labelOf(object, NAME));
        for (const container of containersOf(object)) {
          expect(container.image, identity(object)).toMatch(/\/allot-dev\/allot-[a-z-]+:/);
        }
      }
      const inCluster = plane === 'control-plane' || input.nats?.mode !== 'external';
      expect(natsChartValues(objects) !== undefined, 'the NATS chart').toBe(inCluster);
    });

    it('tells the services the tenant, the Redis mode and the replicas of the streams', () => {
      const { objects, input, plane, release } = get();
      if (plane === 'control-plane') {
        expect(envOf(objects, `${release.name}-control-plane-env`)).toMatchObject({
          ALLOT_TENANT: 'operator',
          ALLOT_HUB_URL: `nats://${release.name}-nats.${release.namespace}.svc.cluster.local:4222`,
          ALLOT_HUB_USER: 'control-plane',
          ALLOT_HUB_PUBLIC_URL: expect.stringMatching(/^nats:\/\/[a-z0-9.]+:4222$/),
        });
        return;
      }
      const replicas = input.nats?.mode === 'external' ? String(input.nats.replicas ?? 1) : '3';
      for (const component of components()) {
        const env = envOf(objects, `${release.name}-${component}-env`);
        expect(env, component).toMatchObject({
          ALLOT_TENANT: input.tenant ?? 'default',
          NATS_REPLICAS: replicas,
        });
        if (USES_REDIS.includes(component)) {
          expect(env.REDIS_CLUSTER, component).toBe(String(input.redis?.mode === 'cluster'));
        }
      }
      if (input.uplink) {
        expect(envOf(objects, `${release.name}-uplink-env`)).toMatchObject({
          ALLOT_UPLINK_URL: input.uplink.url,
          ALLOT_UPLINK_USER: input.uplink.user,
        });
      }
    });

    it('gives the in-cluster NATS as many servers as every stream has replicas, on volumes', () => {
      const { objects, values } = get();
      const nats = natsChartValues(objects) as
        | {
            config: { cluster: { enabled: boolean; replicas: number }; jetstream: Record<string, unknown> };
            global: { image?: { registry?: string }; imageRegistry?: string };
          }
        | undefined;
      if (nats === undefined) return;
      expect(nats.config.cluster.enabled).toBe(true);
      const streams = (values.global?.nats as { replicas?: number } | undefined)?.replicas ?? 1;
      expect(nats.config.cluster.replicas).toBeGreaterThanOrEqual(streams);
      expect(nats.config.jetstream).toMatchObject({
        enabled: true,
        fileStore: { enabled: true, pvc: { enabled: true } },
      });
      // A registry mirror serves the NATS chart's images too.
      expect(nats.global.image?.registry ?? '').toBe(nats.global.imageRegistry ?? '');
    });

    it('reaches Redis on the port its URL names, and only the services in this release over HTTP', () => {
      const { objects, secret } = get();
      const redis = secret.data.REDIS_URL;
      const port = redis === undefined ? undefined : Number(new URL(redis).port || 6379);
      for (const deployment of deploymentsOf(objects)) {
        const chart = labelOf(deployment, NAME)!;
        const policy = objects.find((o) => identity(o) === `NetworkPolicy/${deployment.metadata.name}`);
        expect(policy, deployment.metadata.name).toBeDefined();
        if (port !== undefined && USES_REDIS.includes(chart)) {
          expect(
            egressPorts(policy!).some(
              (p) => p.port === port || (p.endPort && Number(p.port) <= port && port <= p.endPort),
            ),
            `${deployment.metadata.name} to Redis on ${port}`,
          ).toBe(true);
        }
      }
      const services = new Set(objects.filter((o) => o.kind === 'Service').map((o) => o.metadata.name));
      for (const configMap of objects.filter(
        (o) => o.kind === 'ConfigMap' && o.metadata.name.endsWith('-env'),
      )) {
        for (const [key, value] of Object.entries(configMap.data ?? {})) {
          if (!/^https?:\/\//.test(value)) continue;
          const host = new URL(value).hostname;
          expect(services, `${configMap.metadata.name} ${key}=${value}`).toContain(host);
        }
      }
    });

    it('runs each process with at least the replicas the config asks for', () => {
      const { objects, input, plane, release } = get();
      const asked: Array<[string, number]> =
        plane === 'control-plane'
          ? [['controlPlane', input.replicaCount as number]]
          : Object.entries(input.replicas ?? {});
      for (const [component, count] of asked) {
        for (const deployment of DEPLOYMENTS[component] ?? []) {
          const name = `${release.name}-${deployment}`;
          const hpa = objects.find((o) => identity(o) === `HorizontalPodAutoscaler/${name}`);
          const fewest = hpa
            ? spec<{ minReplicas: number }>(hpa).minReplicas
            : spec<{ replicas: number }>(objects.find((o) => identity(o) === `Deployment/${name}`)!).replicas;
          expect(fewest, name).toBe(count);
        }
      }
    });
  });
}

describe('one clustered topology in both places', () => {
  it('has the stacks run the in-cluster NATS as values-scale.yaml does, but for the volume size', async () => {
    const scale = parse(await readFile(join(ROOT, 'charts/allot/values-scale.yaml'), 'utf8')) as {
      nats: Record<string, unknown>;
      global: Record<string, unknown>;
    };
    for (const stack of ['aws every data-plane component on a Redis Cluster', 'gcp control plane']) {
      const { values } = checked.get(stack)!;
      const withoutSize = (nats: Record<string, unknown>) =>
        JSON.parse(JSON.stringify(nats, (key, value) => (key === 'size' ? undefined : value)));
      const { container: _hubPassword, ...nats } = values.nats as Record<string, unknown>;
      const { merge: _hubUsers, ...config } = nats.config as Record<string, unknown>;
      expect(withoutSize({ ...nats, config }), stack).toEqual(withoutSize(scale.nats));
    }
    const { values } = checked.get('gcp every data-plane component on a Redis Cluster')!;
    expect(values.global).toMatchObject(scale.global);
  });

  it('opens the ports Memorystore for Redis Cluster serves its nodes on, for every Redis user', () => {
    const { objects } = checked.get('gcp every data-plane component on a Redis Cluster')!;
    for (const deployment of deploymentsOf(objects).filter((d) => USES_REDIS.includes(labelOf(d, NAME)!))) {
      const policy = objects.find((o) => identity(o) === `NetworkPolicy/${deployment.metadata.name}`)!;
      expect(egressPorts(policy), deployment.metadata.name).toEqual(
        expect.arrayContaining([
          { port: 6379, protocol: 'TCP' },
          { port: 11000, endPort: 13047, protocol: 'TCP' },
        ]),
      );
    }
    // Every metering process is one of metering's: they need no Redis and get no Redis port.
    const metering = objects.filter((o) => o.kind === 'NetworkPolicy' && labelOf(o, NAME) === 'metering');
    expect(metering.map((o) => labelOf(o, COMPONENT)).sort()).toEqual(['server', 'worker']);
    for (const policy of metering) expect(egressPorts(policy).map((p) => p.port)).not.toContain(6379);
  });

  it('hands the Secret REDIS_TLS_CA to every process that reads REDIS_URL on GCP', () => {
    for (const stack of ['gcp gate only', 'gcp every data-plane component on a Redis Cluster']) {
      const { objects, secret } = checked.get(stack)!;
      expect(secret.data.REDIS_TLS_CA, stack).toMatch(/-----BEGIN CERTIFICATE-----/);
      for (const deployment of deploymentsOf(objects)) {
        const keys = secretRefsOf(podSpecOf(deployment)!.containers[0]!).map((ref) => ref.key);
        if (keys.includes('REDIS_URL')) expect(keys, deployment.metadata.name).toContain('REDIS_TLS_CA');
      }
    }
  });
});
