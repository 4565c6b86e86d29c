import { dirname, isAbsolute, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * What a deployment is made of, whatever the cloud. The stacks take these typed objects; the CLI
 * builds them from a JSON file and flags with `dataPlaneConfig` / `controlPlaneConfig`, which fill
 * the defaults and fail with a message that names the field.
 */

/** The data-plane components, each one a flag (`<component>.enabled` in the umbrella chart). */
export const COMPONENTS = ['gate', 'credits', 'metering', 'governance', 'mcp', 'uplink'] as const;
export type Component = (typeof COMPONENTS)[number];
export type Components = Readonly<Record<Component, boolean>>;

/** Components whose replica count is configurable; the uplink always runs exactly one. */
export type ScaledComponent = Exclude<Component, 'uplink'>;

/**
 * Every data-plane process needs Postgres and NATS; these need Redis too. The deploy contract's
 * table leaves the uplink out, but its process requires REDIS_URL (it applies grants through the
 * credits engine, services/allot/src/uplink-main.ts), so a data plane with the uplink gets Redis.
 */
const USES_REDIS: Readonly<Record<Component, boolean>> = {
  gate: true,
  credits: true,
  metering: false,
  governance: true,
  mcp: true,
  uplink: true,
};

export function enabledComponents(components: Components): Component[] {
  return COMPONENTS.filter((component) => components[component]);
}

export function needsPostgres(components: Components): boolean {
  return enabledComponents(components).length > 0;
}

export function needsRedis(components: Components): boolean {
  return enabledComponents(components).some(usesRedis);
}

export function usesRedis(component: Component): boolean {
  return USES_REDIS[component];
}

export type NetworkConfig =
  | {
      readonly mode: 'create';
      /** IPv4 range for the new network, /16 to /20. AWS splits it into private and public subnets; GCP into nodes, pods and services. */
      readonly cidr: string;
    }
  | {
      readonly mode: 'existing';
      /** AWS: the VPC id. GCP: the VPC network's name or self link. */
      readonly networkId: string;
      /** AWS: private subnet ids (two or more, in different zones, with NAT egress). GCP: one subnetwork name or self link. */
      readonly subnetIds: readonly string[];
      /** GCP: the subnetwork's secondary ranges for pods and services (used when the stack creates the GKE cluster). */
      readonly podsRangeName: string;
      readonly servicesRangeName: string;
      /** GCP: whether the network already has its private service access connection (Cloud SQL, Memorystore). */
      readonly privateServiceAccess: 'create' | 'existing';
    };

export type ClusterConfig =
  | {
      readonly mode: 'create';
      /** Kubernetes minor version, e.g. `1.33`; omitted on GCP means the release channel's default. */
      readonly version: string | undefined;
      /** AWS instance type or GCP machine type; the cloud's default when omitted. */
      readonly nodeType: string | undefined;
      /** AWS: nodes across the zones. GCP: nodes per zone (the cluster is regional). */
      readonly minNodes: number;
      readonly maxNodes: number;
      /** Who may reach the Kubernetes API from outside the network (Terraform needs to, to install the chart). */
      readonly apiAllowedCidrs: readonly string[];
      /** GCP: the /28 for the private control plane. */
      readonly masterCidr: string;
    }
  | {
      readonly mode: 'existing';
      readonly name: string;
      /** GCP: the cluster's location (region or zone); the deployment's region when omitted. */
      readonly location: string | undefined;
      /** AWS: security groups of the nodes that may reach the databases, besides the cluster security group. */
      readonly nodeSecurityGroupIds: readonly string[];
    };

export interface DatabaseConfig {
  /** AWS instance class or Cloud SQL tier; the cloud's default when omitted. */
  readonly instanceType: string | undefined;
  readonly storageGb: number;
  /** AWS Multi-AZ, GCP regional availability. */
  readonly highAvailability: boolean;
  readonly backupRetentionDays: number;
  /** IAM database authentication, on top of the password the services use. */
  readonly iamAuthentication: boolean;
}

export type RedisConfig =
  /** One primary (and a replica with failover): ElastiCache cluster mode disabled, Memorystore for Redis. */
  | {
      readonly mode: 'single';
      /** AWS: the ElastiCache node type; the default when omitted. Unused on GCP. */
      readonly instanceType: string | undefined;
      /** GCP: Memorystore capacity. Unused on AWS (the node type decides). */
      readonly memoryGb: number;
      /** AWS: a replica with automatic failover across zones. GCP: the STANDARD_HA tier. */
      readonly highAvailability: boolean;
    }
  /**
   * A Redis Cluster, the key space sharded (the services then run with REDIS_CLUSTER=true):
   * ElastiCache with cluster mode enabled, or Memorystore for Redis Cluster.
   */
  | {
      readonly mode: 'cluster';
      /** AWS: the ElastiCache node type. GCP: the Memorystore for Redis Cluster node type. The default when omitted. */
      readonly instanceType: string | undefined;
      /** Shards (AWS node groups), each a primary and its replicas. */
      readonly shards: number;
      /** Replicas of each shard's primary (AWS: 0-5, GCP: 0-2); with one or more, a shard survives its primary's zone. */
      readonly replicasPerShard: number;
      /**
       * GCP: Memorystore for Redis Cluster is reached through Private Service Connect, which needs
       * the network's service connection policy for Memorystore in the region: `create` it, or it
       * is `existing` (a network has one per region and service). Unused on AWS.
       */
      readonly serviceConnectionPolicy: 'create' | 'existing';
    };

export type NatsConfig =
  /** NATS JetStream, three servers clustered (R3) on persistent volumes, from the umbrella chart (`nats.enabled`). */
  | { readonly mode: 'in-cluster'; readonly storageGb: number }
  /**
   * A NATS the tenant already runs, and the replicas of every stream and bucket on it
   * (NATS_REPLICAS): 1 for a single server, 3 on a JetStream cluster.
   */
  | { readonly mode: 'external'; readonly url: string; readonly replicas: number };

/** Servers of the in-cluster NATS, and so the replicas of every stream and bucket on it (R3). */
export const IN_CLUSTER_NATS_SERVERS = 3;

/** NATS_REPLICAS for the services. */
export function natsReplicas(nats: NatsConfig): number {
  return nats.mode === 'in-cluster' ? IN_CLUSTER_NATS_SERVERS : nats.replicas;
}

export interface ImageConfig {
  /** Registry host for every image (`global.imageRegistry`), e.g. a mirror in your account; ghcr.io when omitted. */
  readonly registry: string | undefined;
  /** The chart's appVersion when omitted. */
  readonly tag: string | undefined;
}

/** Where Terraform keeps its state. The state holds every generated password: keep it in an encrypted bucket. */
export interface StateConfig {
  /** An S3 bucket (AWS) or a GCS bucket (GCP) that exists already. */
  readonly bucket: string;
}

/** What both planes share: where they run and how the chart is installed. */
export interface DeploymentConfig {
  /** The stack's name and the prefix of every resource name: lowercase letters, digits and hyphens, at most 20 characters. */
  readonly name: string;
  readonly region: string;
  readonly network: NetworkConfig;
  readonly cluster: ClusterConfig;
  readonly database: DatabaseConfig;
  /** RDS / Cloud SQL and EKS / GKE refuse deletion while this is on. */
  readonly deletionProtection: boolean;
  readonly image: ImageConfig;
  /** Absolute path of the umbrella chart (`charts/allot` in the repository by default). */
  readonly chartPath: string;
  readonly namespace: string;
  readonly releaseName: string;
  /** The Kubernetes Secret the chart reads (`global.existingSecret`). */
  readonly secretName: string;
  /** Tags (AWS) or labels (GCP) on every resource that takes them. */
  readonly tags: Readonly<Record<string, string>>;
  readonly state: StateConfig | undefined;
}

export interface DataPlaneConfig extends DeploymentConfig {
  /** This data plane's tenant id (`global.tenant`, ALLOT_TENANT): the id the control plane knows it by. */
  readonly tenant: string;
  readonly components: Components;
  readonly redis: RedisConfig;
  readonly nats: NatsConfig;
  /**
   * The control plane's hub and this tenant's user on it (the `credentials` the control plane
   * returned for the tenant); required when the uplink is enabled. The password is the
   * `uplink_password` Terraform variable, never a file.
   */
  readonly uplink: { readonly url: string; readonly user: string } | undefined;
  /** Replicas per component; for credits and metering, of the server and of the worker each. */
  readonly replicas: Readonly<Partial<Record<ScaledComponent, number>>>;
}

export interface ControlPlaneConfig extends DeploymentConfig {
  readonly replicaCount: number;
  readonly hub: {
    /** Source ranges allowed to reach the hub's NATS port (the tenants' egress addresses). */
    readonly allowedCidrs: readonly string[];
    /** JetStream volume of each of the three hub servers. */
    readonly storageGb: number;
  };
}

/** GCP needs a project besides the region. */
export interface GcpSettings {
  readonly project: string;
}

export class ConfigError extends Error {
  override readonly name = 'ConfigError';
}

/** GCP labels: lowercase keys starting with a letter, values possibly empty, 63 characters at most. */
const GCP_LABEL_KEY = /^[a-z][a-z0-9_-]{0,62}$/;
const GCP_LABEL_VALUE = /^[a-z0-9_-]{0,63}$/;

/** Tenant ids are NATS subject tokens (the control plane's rule). */
const TENANT_ID = /^[a-z0-9_-]{1,64}$/;

/** The repository root: `infra/src/config.ts` is two folders down. */
export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

export type Cloud = 'aws' | 'gcp';
export const CLOUDS: readonly Cloud[] = ['aws', 'gcp'];

/** The two stacks: a tenant's data plane, the vendor's control plane. */
export const PLANES = ['data-plane', 'control-plane'] as const;
export type Plane = (typeof PLANES)[number];

const DEFAULT_REGION: Record<Cloud, string> = { aws: 'us-east-1', gcp: 'us-central1' };

/** Builds a data-plane config from JSON input (a config file, CLI flags) and the defaults. */
export function dataPlaneConfig(input: unknown, cloud: Cloud): DataPlaneConfig {
  const root = new Reader(input ?? {}, 'config');
  const base = deployment(root, cloud, 'allot');
  const components = readComponents(root);
  const uplink = root.optionalObject('uplink');
  const nats = root.optionalObject('nats');
  const redis = root.object('redis');
  const replicas = root.object('replicas');
  const tenant = root.string('tenant', 'default');
  if (!TENANT_ID.test(tenant)) {
    throw new ConfigError(
      `config.tenant: ${JSON.stringify(tenant)} must be 1-64 of a-z 0-9 _ - (a NATS subject token)`,
    );
  }
  const config: DataPlaneConfig = {
    ...base,
    tenant,
    components,
    redis: readRedis(redis, cloud),
    nats: readNats(nats),
    uplink:
      uplink === undefined
        ? undefined
        : { url: uplink.url('url', ['nats:', 'tls:']), user: uplink.string('user', undefined) },
    replicas: Object.fromEntries(
      COMPONENTS.filter((c): c is ScaledComponent => c !== 'uplink')
        .map((c) => [c, replicas.optionalInteger(c, { min: 1 })] as const)
        .filter(([, count]) => count !== undefined),
    ),
  };
  replicas.rejectUnknown(COMPONENTS.filter((c) => c !== 'uplink'));
  uplink?.rejectUnknown(['url', 'user']);
  root.rejectUnknown([...DEPLOYMENT_KEYS, 'tenant', 'components', 'redis', 'nats', 'uplink', 'replicas']);
  if (config.components.uplink && config.uplink === undefined) {
    throw new ConfigError(
      'config.uplink: the uplink component needs the hub: { "url": "nats://…", "user": "<tenant>" }',
    );
  }
  // The chart points mcp's tools at the gate of the same release (ALLOT_GATE_URL).
  if (config.components.mcp && !config.components.gate) {
    throw new ConfigError('config.components: mcp calls the gate of its release; add gate');
  }
  return config;
}

function readRedis(redis: Reader, cloud: Cloud): RedisConfig {
  const mode = redis.oneOf('mode', ['single', 'cluster'], 'single');
  const instanceType = redis.optionalString('instanceType');
  if (mode === 'single') {
    redis.rejectUnknown(['mode', 'instanceType', 'memoryGb', 'highAvailability']);
    return {
      mode,
      instanceType,
      memoryGb: redis.integer('memoryGb', 5, { min: 1 }),
      highAvailability: redis.boolean('highAvailability', true),
    };
  }
  redis.rejectUnknown([
    'mode',
    'instanceType',
    'shards',
    'replicasPerShard',
    ...(cloud === 'gcp' ? ['serviceConnectionPolicy'] : []),
  ]);
  return {
    mode,
    instanceType,
    shards: redis.integer('shards', 3, { min: 1, max: cloud === 'aws' ? 500 : 250 }),
    replicasPerShard: redis.integer('replicasPerShard', 1, { min: 0, max: cloud === 'aws' ? 5 : 2 }),
    serviceConnectionPolicy: redis.oneOf('serviceConnectionPolicy', ['create', 'existing'], 'create'),
  };
}

/** Builds a control-plane config from JSON input and the defaults. */
export function controlPlaneConfig(input: unknown, cloud: Cloud): ControlPlaneConfig {
  const root = new Reader(input ?? {}, 'config');
  const hub = root.object('hub');
  const config: ControlPlaneConfig = {
    ...deployment(root, cloud, 'allot-control'),
    replicaCount: root.integer('replicaCount', 2, { min: 1 }),
    hub: {
      allowedCidrs: hub.cidrs('allowedCidrs', ['0.0.0.0/0']),
      storageGb: hub.integer('storageGb', 10, { min: 1 }),
    },
  };
  hub.rejectUnknown(['allowedCidrs', 'storageGb']);
  root.rejectUnknown([...DEPLOYMENT_KEYS, 'replicaCount', 'hub']);
  return config;
}

/** Reads `project` for GCP; the CLI's `--project` lands in the same field. */
export function gcpSettings(input: unknown): GcpSettings {
  const root = new Reader(input ?? {}, 'config');
  return { project: root.string('project', undefined) };
}

const DEPLOYMENT_KEYS = [
  'name',
  'region',
  'project',
  'network',
  'cluster',
  'database',
  'deletionProtection',
  'image',
  'chartPath',
  'namespace',
  'releaseName',
  'secretName',
  'tags',
  'state',
] as const;

function deployment(root: Reader, cloud: Cloud, defaultName: string): DeploymentConfig {
  const name = root.string('name', defaultName);
  if (!/^[a-z][a-z0-9-]{0,19}$/.test(name) || name.endsWith('-')) {
    throw new ConfigError(
      `config.name: ${JSON.stringify(name)} must be 1-20 lowercase letters, digits or hyphens, starting with a letter`,
    );
  }
  const network = root.object('network');
  const cluster = root.object('cluster');
  const database = root.object('database');
  const image = root.object('image');
  const state = root.optionalObject('state');
  const chartPath = root.string('chartPath', 'charts/allot');
  const tags = root.object('tags');
  const config: DeploymentConfig = {
    name,
    region: root.string('region', DEFAULT_REGION[cloud]),
    network: readNetwork(network),
    cluster: readCluster(cluster),
    database: {
      instanceType: database.optionalString('instanceType'),
      storageGb: database.integer('storageGb', 50, { min: 20 }),
      highAvailability: database.boolean('highAvailability', true),
      backupRetentionDays: database.integer('backupRetentionDays', 7, { min: 1, max: 35 }),
      iamAuthentication: database.boolean('iamAuthentication', false),
    },
    deletionProtection: root.boolean('deletionProtection', true),
    image: { registry: image.optionalString('registry'), tag: image.optionalString('tag') },
    chartPath: isAbsolute(chartPath) ? chartPath : resolve(REPO_ROOT, chartPath),
    namespace: root.string('namespace', 'allot'),
    releaseName: root.string('releaseName', 'allot'),
    secretName: root.string('secretName', 'allot-secrets'),
    tags: tags.stringRecord(),
    state: state === undefined ? undefined : { bucket: state.string('bucket', undefined) },
  };
  if (cloud === 'gcp') {
    const bad = Object.entries(config.tags).find(
      ([key, value]) => !GCP_LABEL_KEY.test(key) || !GCP_LABEL_VALUE.test(value),
    );
    if (bad) {
      throw new ConfigError(
        `config.tags: ${JSON.stringify(bad[0])} is not a GCP label (lowercase letters, digits, _ and -; the key starts with a letter)`,
      );
    }
  }
  if (config.network.mode === 'create' && config.cluster.mode === 'existing') {
    throw new ConfigError(
      'config.network: an existing cluster lives in an existing network; give network.mode "existing" with its ids',
    );
  }
  database.rejectUnknown([
    'instanceType',
    'storageGb',
    'highAvailability',
    'backupRetentionDays',
    'iamAuthentication',
  ]);
  image.rejectUnknown(['registry', 'tag']);
  state?.rejectUnknown(['bucket']);
  return config;
}

function readComponents(root: Reader): Components {
  const list = root.stringArray('components', undefined);
  return componentFlags(list, 'config.components');
}

/** `['gate', 'metering']` → every flag, or a ConfigError naming the unknown components. */
export function componentFlags(list: readonly string[], where: string): Components {
  const unknown = list.filter((item) => !(COMPONENTS as readonly string[]).includes(item));
  if (unknown.length > 0) {
    throw new ConfigError(
      `${where}: unknown component${unknown.length > 1 ? 's' : ''} ${unknown.join(', ')} (known: ${COMPONENTS.join(', ')})`,
    );
  }
  if (list.length === 0) throw new ConfigError(`${where}: name at least one of ${COMPONENTS.join(', ')}`);
  return Object.fromEntries(COMPONENTS.map((component) => [component, list.includes(component)])) as Record<
    Component,
    boolean
  >;
}

function readNetwork(network: Reader): NetworkConfig {
  const mode = network.oneOf('mode', ['create', 'existing'], 'create');
  if (mode === 'create') {
    const cidr = network.cidr('cidr', '10.40.0.0/16');
    const prefix = Number(cidr.split('/')[1]);
    if (prefix < 16 || prefix > 20)
      throw new ConfigError(`config.network.cidr: ${cidr} must be a /16 to a /20`);
    network.rejectUnknown(['mode', 'cidr']);
    return { mode, cidr };
  }
  const existing: NetworkConfig = {
    mode,
    networkId: network.string('networkId', undefined),
    subnetIds: network.stringArray('subnetIds', undefined),
    podsRangeName: network.string('podsRangeName', 'pods'),
    servicesRangeName: network.string('servicesRangeName', 'services'),
    privateServiceAccess: network.oneOf('privateServiceAccess', ['create', 'existing'], 'create'),
  };
  if (existing.subnetIds.length === 0)
    throw new ConfigError('config.network.subnetIds: give at least one subnet');
  network.rejectUnknown([
    'mode',
    'networkId',
    'subnetIds',
    'podsRangeName',
    'servicesRangeName',
    'privateServiceAccess',
  ]);
  return existing;
}

function readCluster(cluster: Reader): ClusterConfig {
  const mode = cluster.oneOf('mode', ['create', 'existing'], 'create');
  if (mode === 'existing') {
    const existing: ClusterConfig = {
      mode,
      name: cluster.string('name', undefined),
      location: cluster.optionalString('location'),
      nodeSecurityGroupIds: cluster.stringArray('nodeSecurityGroupIds', []),
    };
    cluster.rejectUnknown(['mode', 'name', 'location', 'nodeSecurityGroupIds']);
    return existing;
  }
  const created: ClusterConfig = {
    mode,
    version: cluster.optionalString('version'),
    nodeType: cluster.optionalString('nodeType'),
    minNodes: cluster.integer('minNodes', 3, { min: 1 }),
    maxNodes: cluster.integer('maxNodes', 6, { min: 1 }),
    apiAllowedCidrs: cluster.cidrs('apiAllowedCidrs', ['0.0.0.0/0']),
    masterCidr: cluster.cidr('masterCidr', '172.16.0.0/28'),
  };
  if (created.maxNodes < created.minNodes) {
    throw new ConfigError('config.cluster.maxNodes: must be at least cluster.minNodes');
  }
  cluster.rejectUnknown([
    'mode',
    'version',
    'nodeType',
    'minNodes',
    'maxNodes',
    'apiAllowedCidrs',
    'masterCidr',
  ]);
  return created;
}

function readNats(nats: Reader | undefined): NatsConfig {
  const mode = nats?.oneOf('mode', ['in-cluster', 'external'], 'in-cluster') ?? 'in-cluster';
  nats?.rejectUnknown(mode === 'external' ? ['mode', 'url', 'replicas'] : ['mode', 'storageGb']);
  if (mode === 'external') {
    const external = nats as Reader;
    return {
      mode,
      url: external.url('url', ['nats:', 'tls:']),
      replicas: external.integer('replicas', 1, { min: 1, max: 5 }),
    };
  }
  return { mode, storageGb: nats?.integer('storageGb', 10, { min: 1 }) ?? 10 };
}

/** Reads one JSON object field by field; every failure names the field's path. */
class Reader {
  readonly #value: Record<string, unknown>;
  readonly #path: string;

  constructor(value: unknown, path: string) {
    if (typeof value !== 'object' || value === null || Array.isArray(value)) {
      throw new ConfigError(`${path}: expected an object`);
    }
    this.#value = value as Record<string, unknown>;
    this.#path = path;
  }

  object(key: string): Reader {
    return this.optionalObject(key) ?? new Reader({}, `${this.#path}.${key}`);
  }

  optionalObject(key: string): Reader | undefined {
    const value = this.#value[key];
    return value === undefined ? undefined : new Reader(value, `${this.#path}.${key}`);
  }

  string(key: string, fallback: string | undefined): string {
    const value = this.optionalString(key) ?? fallback;
    if (value === undefined) throw new ConfigError(`${this.#path}.${key}: is required`);
    return value;
  }

  optionalString(key: string): string | undefined {
    const value = this.#value[key];
    if (value === undefined) return undefined;
    if (typeof value !== 'string' || value === '') throw this.#wrong(key, 'a non-empty string');
    return value;
  }

  oneOf<const T extends string>(key: string, choices: readonly T[], fallback: T): T {
    const value = this.optionalString(key) ?? fallback;
    if (!(choices as readonly string[]).includes(value)) {
      throw this.#wrong(key, choices.map((choice) => JSON.stringify(choice)).join(' or '));
    }
    return value as T;
  }

  url(key: string, protocols: readonly string[]): string {
    const value = this.string(key, undefined);
    if (!URL.canParse(value) || !protocols.includes(new URL(value).protocol)) {
      throw this.#wrong(key, `a ${protocols.map((p) => `${p}//`).join(' or ')} URL`);
    }
    return value;
  }

  boolean(key: string, fallback: boolean): boolean {
    const value = this.#value[key] ?? fallback;
    if (typeof value !== 'boolean') throw this.#wrong(key, 'true or false');
    return value;
  }

  integer(key: string, fallback: number, bounds: { min?: number; max?: number }): number {
    return this.optionalInteger(key, bounds) ?? fallback;
  }

  optionalInteger(key: string, { min = -Infinity, max = Infinity }: { min?: number; max?: number }) {
    const value = this.#value[key];
    if (value === undefined) return undefined;
    if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
      const range = max === Infinity ? `>= ${min}` : `from ${min} to ${max}`;
      throw this.#wrong(key, `an integer ${range}`);
    }
    return value;
  }

  stringArray(key: string, fallback: readonly string[] | undefined): readonly string[] {
    const value = this.#value[key] ?? fallback;
    if (value === undefined) throw new ConfigError(`${this.#path}.${key}: is required`);
    if (!Array.isArray(value) || !value.every((item) => typeof item === 'string' && item !== '')) {
      throw this.#wrong(key, 'an array of non-empty strings');
    }
    return value;
  }

  cidr(key: string, fallback: string): string {
    const value = this.string(key, fallback);
    if (!isIpv4Cidr(value)) throw this.#wrong(key, 'an IPv4 CIDR such as 10.0.0.0/16');
    return value;
  }

  cidrs(key: string, fallback: readonly string[]): readonly string[] {
    const value = this.stringArray(key, fallback);
    const bad = value.find((item) => !isIpv4Cidr(item));
    if (bad !== undefined) throw this.#wrong(key, `IPv4 CIDRs (${JSON.stringify(bad)} is not one)`);
    return value;
  }

  stringRecord(): Record<string, string> {
    for (const [key, value] of Object.entries(this.#value)) {
      if (typeof value !== 'string') throw this.#wrong(key, 'a string');
    }
    return { ...(this.#value as Record<string, string>) };
  }

  /** Catches typos: a key nobody reads is an error, not a silently ignored setting. */
  rejectUnknown(known: readonly string[]): void {
    const unknown = Object.keys(this.#value).filter((key) => !known.includes(key));
    if (unknown.length > 0) {
      throw new ConfigError(
        `${this.#path}: unknown field${unknown.length > 1 ? 's' : ''} ${unknown.join(', ')} (known: ${known.join(', ')})`,
      );
    }
  }

  #wrong(key: string, expected: string): ConfigError {
    return new ConfigError(`${this.#path}.${key}: expected ${expected}`);
  }
}

/** `a.b.c.d/n` with each octet 0-255, n 0-32 and no host bits set. */
export function isIpv4Cidr(text: string): boolean {
  const match = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})\/(\d{1,2})$/.exec(text);
  if (match === null) return false;
  const octets = match.slice(1, 5).map(Number);
  const prefix = Number(match[5]);
  if (octets.some((octet) => octet > 255) || prefix > 32) return false;
  return (ipv4ToNumber(octets) & ~prefixMask(prefix)) >>> 0 === 0;
}

/**
 * The `index`-th subnet of `cidr` with `newBits` more prefix bits, like Terraform's `cidrsubnet`,
 * computed here so the synthesized JSON (and the tests) show the literal ranges.
 */
export function cidrSubnet(cidr: string, newBits: number, index: number): string {
  const [address = '', prefixText = ''] = cidr.split('/');
  const prefix = Number(prefixText) + newBits;
  if (prefix > 32 || index < 0 || index >= 2 ** newBits) {
    throw new RangeError(`cidrSubnet(${cidr}, ${newBits}, ${index}): out of range`);
  }
  const base = ipv4ToNumber(address.split('.').map(Number));
  const subnet = (base + index * 2 ** (32 - prefix)) >>> 0;
  return `${[24, 16, 8, 0].map((shift) => (subnet >>> shift) & 255).join('.')}/${prefix}`;
}

function ipv4ToNumber(octets: readonly number[]): number {
  return octets.reduce((acc, octet) => acc * 256 + octet, 0);
}

function prefixMask(prefix: number): number {
  return prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
}
