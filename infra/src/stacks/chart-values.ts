import {
  COMPONENTS,
  type Component,
  type ControlPlaneConfig,
  type DataPlaneConfig,
  type DeploymentConfig,
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

export interface CloudChartSettings {
  /** The port of the managed Redis when it is not 6379 (Memorystore serves TLS on 6378); the NetworkPolicies must allow it. */
  readonly redisPort?: number;
}

/** Every component appears with `enabled` set, so the chart's defaults never switch one on unasked. */
export function dataPlaneValues(config: DataPlaneConfig, cloud: CloudChartSettings = {}): ChartValues {
  const values: ChartValues = {
    global: { ...globalValues(config), tenant: config.tenant },
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
    Object.assign(
      values,
      SERVER_AND_WORKER.includes(component)
        ? { server: { replicaCount: replicas }, worker: { replicaCount: replicas } }
        : { replicaCount: replicas },
    );
  }
  if (usesRedis(component) && cloud.redisPort !== undefined) {
    values.networkPolicy = { backends: { redis: { ports: [cloud.redisPort] } } };
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

/** The official NATS chart: three servers in a cluster, JetStream on a volume each (streams can be R3). */
function clusteredNats(storageGb: number): ChartValues {
  return {
    enabled: true,
    config: {
      cluster: { enabled: true, replicas: 3 },
      jetstream: {
        enabled: true,
        fileStore: { enabled: true, pvc: { enabled: true, size: `${storageGb}Gi` } },
      },
    },
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
  return {
    existingSecret: config.secretName,
    allowDevSecret: false,
    devSecret: null,
    ...(config.image.registry === undefined ? {} : { imageRegistry: config.image.registry }),
  };
}

/** The tag goes to each chart (there is no global one); the chart's appVersion when omitted. */
function imageTag(config: DeploymentConfig): ChartValues {
  return config.image.tag === undefined ? {} : { image: { tag: config.image.tag } };
}
