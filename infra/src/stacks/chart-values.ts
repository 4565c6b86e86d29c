import {
  COMPONENTS,
  type Component,
  type ControlPlaneConfig,
  type DataPlaneConfig,
  type DeploymentConfig,
  IN_CLUSTER_NATS_SERVERS,
  natsReplicas,
  type ScaledComponent,
  usesRedis,
} from '../config.ts';

/**
 * Values for the umbrella chart (`charts/allot`). Production brings its own backends, so the
 * chart's dev Postgres and Redis are always off and credentials come only from the Secret named
 * by `global.existingSecret` (`allowDevSecret: false`: the chart refuses to make one from values).
 */
export type ChartValues = Record<string, unknown>;

/** The charts whose processes are a server and a worker, each with its own `replicaCount`. */
const SERVER_AND_WORKER: readonly Component[] = ['credits', 'metering'];

/** A NetworkPolicy port: one port, or a range (`endPort` inclusive). */
export type PolicyPort = number | { readonly port: number; readonly endPort: number };

export interface CloudChartSettings {
  /**
   * The ports of the managed Redis when they are not 6379 (Memorystore serves TLS on 6378, and
   * Memorystore for Redis Cluster also 11000-13047); the NetworkPolicies must allow them.
   */
  readonly redisPorts?: readonly PolicyPort[];
}

/** Every component appears with `enabled` set, so the chart's defaults never switch one on unasked. */
export function dataPlaneValues(config: DataPlaneConfig, cloud: CloudChartSettings = {}): ChartValues {
  const values: ChartValues = {
    global: {
      ...globalValues(config),
      tenant: config.tenant,
      // REDIS_CLUSTER and NATS_REPLICAS of every chart that uses Redis or NATS.
      redis: { cluster: config.redis.mode === 'cluster' },
      nats: { replicas: natsReplicas(config.nats) },
    },
    devBackends: { postgres: { enabled: false }, redis: { enabled: false } },
    nats: config.nats.mode === 'in-cluster' ? clusteredNats(config.nats.storageGb) : { enabled: false },
    controlPlane: { enabled: false },
  };
  for (const component of COMPONENTS) {
    values[component] = config.components[component]
      ? { enabled: true, ...componentValues(config, component, cloud) }
      : { enabled: false };
  }
  return values;
}

function componentValues(
  config: DataPlaneConfig,
  component: Component,
  cloud: CloudChartSettings,
): ChartValues {
  const values: ChartValues = imageTag(config);
  const replicas = config.replicas[component as ScaledComponent];
  if (component === 'uplink') {
    // The password is ALLOT_UPLINK_PASSWORD in the Secret; the uplink always runs one replica.
    if (config.uplink) Object.assign(values, { url: config.uplink.url, user: config.uplink.user });
  } else if (replicas !== undefined) {
    // Under an HPA (the gate's and the metering server's by default) its minimum is what holds.
    const process = { replicaCount: replicas, autoscaling: { minReplicas: replicas } };
    Object.assign(
      values,
      SERVER_AND_WORKER.includes(component) ? { server: process, worker: process } : process,
    );
  }
  if (component === 'mcp') {
    // The chart points the tools at this release's Services; empty falls back to the gate
    // (ALLOT_GATE_URL) instead of a Service this data plane does not have.
    if (!config.components.credits) values.creditsUrl = '';
    if (!config.components.metering) values.meteringUrl = '';
  }
  if (usesRedis(component) && cloud.redisPorts !== undefined) {
    values.networkPolicy = { backends: { redis: { ports: [...cloud.redisPorts] } } };
  }
  return values;
}

/**
 * The control plane alone, with the chart's NATS as the hub the tenants' uplinks dial.
 * `controlPlane.hub` carries ALLOT_HUB_URL, ALLOT_HUB_USER and ALLOT_HUB_PUBLIC_URL; the
 * password is ALLOT_HUB_PASSWORD in the Secret.
 */
export function controlPlaneValues(
  config: ControlPlaneConfig,
  hub: { url: string; user: string; publicUrl: string },
): ChartValues {
  const values: ChartValues = {
    global: globalValues(config),
    devBackends: { postgres: { enabled: false }, redis: { enabled: false } },
    nats: hubNats(config, hub.user),
    controlPlane: { enabled: true, replicaCount: config.replicaCount, hub, ...imageTag(config) },
  };
  for (const component of COMPONENTS) values[component] = { enabled: false };
  return values;
}

/** The in-cluster NATS service of the chart's NATS subchart (named like the release, plus `-nats` unless it has it). */
export function inClusterNatsUrl(config: DeploymentConfig): string {
  const service = config.releaseName.includes('nats') ? config.releaseName : `${config.releaseName}-nats`;
  return `nats://${service}.${config.namespace}.svc.cluster.local:4222`;
}

/**
 * The official NATS chart as a JetStream cluster: three servers, one per zone, JetStream on a
 * volume each, so streams and buckets can be R3 (the services' NATS_REPLICAS). Each write is
 * fsynced before it is acknowledged (`sync_interval: always`, nats-server 2.10 or later, as the
 * chart runs): the Jepsen analysis of NATS 2.12 lost acknowledged writes under the default
 * two-minute interval when the nodes lost power together.
 */
function clusteredNats(storageGb: number): ChartValues {
  return {
    enabled: true,
    config: {
      cluster: { enabled: true, replicas: IN_CLUSTER_NATS_SERVERS },
      jetstream: {
        enabled: true,
        fileStore: { enabled: true, pvc: { enabled: true, size: `${storageGb}Gi` } },
        merge: { sync_interval: 'always' },
      },
    },
    podTemplate: {
      topologySpreadConstraints: {
        'topology.kubernetes.io/zone': { maxSkew: 1, whenUnsatisfiable: 'DoNotSchedule' },
      },
    },
    podDisruptionBudget: { enabled: true },
  };
}

/**
 * The hub faces the internet, so it never runs open: it requires the control plane's user from
 * the start (its password read from the Secret into the server's environment). Tenant users come
 * from the control plane's generated configuration (docs/install-*.md, "Tenants on the hub").
 */
function hubNats(config: ControlPlaneConfig, user: string): ChartValues {
  const clustered = clusteredNats(config.hub.storageGb);
  return {
    ...clustered,
    config: {
      ...(clustered.config as ChartValues),
      merge: { authorization: { users: [{ user, password: '<< $ALLOT_HUB_PASSWORD >>' }] } },
    },
    container: {
      env: {
        ALLOT_HUB_PASSWORD: {
          valueFrom: { secretKeyRef: { name: config.secretName, key: 'ALLOT_HUB_PASSWORD' } },
        },
      },
    },
  };
}

function globalValues(config: DeploymentConfig): ChartValues {
  const registry = config.image.registry;
  return {
    existingSecret: config.secretName,
    allowDevSecret: false,
    devSecret: null,
    // The Allot charts read global.imageRegistry, the NATS chart global.image.registry.
    ...(registry === undefined ? {} : { imageRegistry: registry, image: { registry } }),
  };
}

/** The tag goes to each chart (there is no global one); the chart's appVersion when omitted. */
function imageTag(config: DeploymentConfig): ChartValues {
  return config.image.tag === undefined ? {} : { image: { tag: config.image.tag } };
}
