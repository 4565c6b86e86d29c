/**
 * Writes charts/<chart>/values.schema.json for every Allot chart from one description, so the
 * charts' shared values (image, resources, autoscaling, network policy, ...) are validated the
 * same way everywhere. Helm checks values against them on lint, template, install and upgrade.
 *
 *   npx tsx scripts/chart-schemas.ts
 *
 * test/deploy/charts.test.ts fails when a committed schema differs from what this produces.
 */
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

type Schema = { [keyword: string]: unknown };
type Backend = 'postgres' | 'redis' | 'nats' | 'hub' | 'api';

const repoRoot = join(dirname(fileURLToPath(import.meta.url)), '..');

/** Every key a credentials Secret may hold, with the contract's constraints. */
export const SECRET_KEYS: Record<string, Schema> = {
  DATABASE_URL: { type: 'string', pattern: '^(postgres|postgresql)://', description: 'postgres://...' },
  REDIS_URL: { type: 'string', pattern: '^rediss?://', description: 'redis:// or rediss://' },
  REDIS_TLS_CA: {
    type: 'string',
    pattern: '-----BEGIN CERTIFICATE-----',
    description: 'PEM of the CA behind a rediss:// server that Node does not know (Memorystore)',
  },
  NATS_URL: { type: 'string', pattern: '^(nats|tls)://', description: 'nats:// or tls://' },
  ALLOT_API_KEY: { type: 'string', minLength: 16, description: 'the admin API key, >= 16 characters' },
  ALLOT_HUB_PASSWORD: { type: 'string', minLength: 16, description: 'the control plane hub user password' },
  ALLOT_UPLINK_PASSWORD: { type: 'string', minLength: 1, description: "the tenant's hub password" },
};

const string: Schema = { type: 'string' };
/** Helm adds a key for every dependency, the allot-common library's too; there is nothing to set in it. */
const libraryValues: Schema = {
  type: 'object',
  description: 'added by Helm for the library chart; not a setting',
};
const boolean: Schema = { type: 'boolean' };
const stringMap: Schema = { type: 'object', additionalProperties: { type: ['string', 'number', 'boolean'] } };
const freeObject: Schema = { type: 'object' };
const freeArray: Schema = { type: 'array' };
const dnsName: Schema = { type: 'string', pattern: '^$|^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$', maxLength: 253 };
const hubUrl: Schema = {
  type: 'string',
  pattern: '^$|^(nats|tls)://',
  description: 'nats:// or tls://; rendered with tpl',
};

function object(properties: Record<string, Schema>, required: string[] = [], description?: string): Schema {
  return {
    type: 'object',
    ...(description === undefined ? {} : { description }),
    additionalProperties: false,
    ...(required.length === 0 ? {} : { required }),
    properties,
  };
}

const quantity: Schema = { type: ['string', 'number'] };
const resources: Schema = object(
  {
    requests: { type: 'object', additionalProperties: quantity },
    limits: { type: 'object', additionalProperties: quantity },
    claims: freeArray,
  },
  ['requests', 'limits'],
  'container resources; requests and limits are both required',
);

const global: Schema = {
  type: 'object',
  description: "values shared by every chart of a release (other charts' globals may sit beside them)",
  properties: {
    imageRegistry: string,
    imagePullSecrets: { type: 'array', items: string },
    existingSecret: dnsName,
    allowDevSecret: boolean,
    devSecret: {
      type: ['object', 'null'],
      description: 'DEVELOPMENT ONLY: values of the Secret a chart creates when no existingSecret is set',
      additionalProperties: false,
      properties: SECRET_KEYS,
    },
    tenant: { type: 'string', pattern: '^$|^[A-Za-z0-9._:-]{1,128}$' },
    redis: object({
      cluster: {
        type: 'boolean',
        description: 'REDIS_CLUSTER: REDIS_URL is a seed node or configuration endpoint of a Redis Cluster',
      },
    }),
    nats: object({
      replicas: {
        type: 'integer',
        minimum: 1,
        maximum: 5,
        description: 'NATS_REPLICAS: replicas of every JetStream stream and KV bucket (3 on a cluster)',
      },
    }),
  },
};

const image = (repository: string): Schema =>
  object(
    {
      registry: { type: 'string', minLength: 1 },
      repository: { type: 'string', minLength: 1, default: repository },
      tag: string,
      digest: { type: 'string', pattern: '^$|^sha256:[a-f0-9]{64}$' },
      pullPolicy: { enum: ['Always', 'IfNotPresent', 'Never'] },
    },
    ['registry', 'repository', 'pullPolicy'],
  );

const replicaCount: Schema = { type: 'integer', minimum: 0 };
const percentage: Schema = { type: ['integer', 'null'], minimum: 1, maximum: 100 };
const autoscaling: Schema = object(
  {
    enabled: boolean,
    minReplicas: { type: 'integer', minimum: 1 },
    maxReplicas: { type: 'integer', minimum: 1, description: 'raised to minReplicas when below it' },
    targetCPUUtilizationPercentage: percentage,
    targetMemoryUtilizationPercentage: percentage,
    behavior: freeObject,
  },
  ['enabled', 'minReplicas', 'maxReplicas'],
);
const intOrPercent: Schema = { type: ['integer', 'string', 'null'], pattern: '^[0-9]+%$' };
const pdb: Schema = object(
  { enabled: boolean, minAvailable: intOrPercent, maxUnavailable: intOrPercent },
  ['enabled'],
  'rendered only while the process runs more than one replica',
);

/** Values of one process: at the chart's top level, or under server/worker. */
function processValues(options: {
  autoscaled: boolean;
  extra?: Record<string, Schema>;
}): Record<string, Schema> {
  return {
    replicaCount,
    resources,
    ...(options.autoscaled ? { autoscaling, pdb } : {}),
    ...options.extra,
  };
}

const port: Schema = { type: 'integer', minimum: 1, maximum: 65535 };
const backendRule = (ports: number[]): Schema =>
  object(
    {
      ports: {
        type: 'array',
        minItems: 1,
        description:
          'ports, or ranges {port, endPort} (a Redis Cluster on Memorystore: 6379 and 11000-13047)',
        items: { anyOf: [port, object({ port, endPort: port }, ['port', 'endPort'])] },
        default: ports,
      },
      to: { type: 'array', description: 'NetworkPolicyPeers; empty means any destination' },
    },
    ['ports'],
  );
const BACKEND_PORTS: Record<Backend, number[]> = {
  postgres: [5432],
  redis: [6379],
  nats: [4222],
  hub: [4222, 7422, 443],
  api: [8080],
};

function networkPolicy(backends: Backend[]): Schema {
  return object(
    {
      enabled: boolean,
      allowSameNamespace: boolean,
      ingressFrom: { type: 'array', description: 'NetworkPolicyPeers allowed to reach port http' },
      dns: object({ to: freeArray }),
      backends: object(
        Object.fromEntries(backends.map((backend) => [backend, backendRule(BACKEND_PORTS[backend])])),
        backends,
      ),
      extraEgress: freeArray,
    },
    ['enabled', 'allowSameNamespace', 'backends'],
  );
}

const service: Schema = object(
  {
    type: { enum: ['ClusterIP', 'NodePort', 'LoadBalancer'] },
    port: { type: 'integer', minimum: 1, maximum: 65535 },
    annotations: stringMap,
  },
  ['type', 'port'],
);
const serviceAccount: Schema = object({ create: boolean, name: dnsName, annotations: stringMap }, ['create']);
const metrics: Schema = object(
  {
    serviceMonitor: object(
      {
        enabled: { type: 'boolean', description: 'needs the Prometheus Operator CRDs' },
        interval: { type: 'string', pattern: '^[0-9]+(ms|s|m|h)$' },
        scrapeTimeout: { type: 'string', pattern: '^[0-9]+(ms|s|m|h)$' },
        labels: stringMap,
      },
      ['enabled', 'interval', 'scrapeTimeout'],
    ),
  },
  ['serviceMonitor'],
);
const migrations: Schema = object(
  {
    enabled: boolean,
    hookWeight: { type: 'integer' },
    backoffLimit: { type: 'integer', minimum: 0 },
    activeDeadlineSeconds: { type: 'integer', minimum: 1 },
    resources,
  },
  ['enabled', 'hookWeight', 'backoffLimit', 'activeDeadlineSeconds', 'resources'],
);
const id: Schema = { type: ['integer', 'null'], minimum: 1 };
const securityContext: Schema = object(
  { runAsUser: id, runAsGroup: id, fsGroup: id },
  [],
  'ids only: non-root, read-only root filesystem, no privilege escalation, no capabilities and RuntimeDefault seccomp are fixed',
);

interface ChartShape {
  name: string;
  title: string;
  image: string;
  secretKeys: string[];
  /** keys passed on only when the Secret has them */
  optionalSecretKeys?: string[];
  backends: Backend[];
  /** top-level values of the one process, or the server/worker pair */
  processes: 'one' | 'server-worker' | 'one-agent';
  /** whether the image has migrate.mjs (default true) */
  migrations?: boolean;
  /** chart-specific values */
  extra?: Record<string, Schema>;
  /** values of the worker process only */
  workerExtra?: Record<string, Schema>;
  required?: string[];
}

const PARTITION_LIST = '^\\d{1,3}(,\\d{1,3})*$';
const logLevel: Schema = { enum: ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] };

function serviceChartSchema(shape: ChartShape): Schema {
  const processes: Record<string, Schema> =
    shape.processes === 'one'
      ? processValues({ autoscaled: true })
      : shape.processes === 'one-agent'
        ? {
            replicaCount: {
              type: 'integer',
              minimum: 0,
              maximum: 1,
              description: 'exactly one agent; 0 pauses it',
            },
            resources,
          }
        : {
            server: object({ enabled: boolean, ...processValues({ autoscaled: true }) }, [
              'enabled',
              'replicaCount',
              'resources',
            ]),
            worker: object(
              { enabled: boolean, ...processValues({ autoscaled: true, extra: shape.workerExtra ?? {} }) },
              ['enabled', 'replicaCount', 'resources'],
            ),
          };
  const processRequired =
    shape.processes === 'server-worker' ? ['server', 'worker'] : ['replicaCount', 'resources'];
  const secretProperties = Object.fromEntries(
    Object.entries(SECRET_KEYS).filter(
      ([key]) => shape.secretKeys.includes(key) || shape.optionalSecretKeys?.includes(key),
    ),
  );
  return {
    $schema: 'http://json-schema.org/draft-07/schema#',
    title: shape.title,
    type: 'object',
    additionalProperties: false,
    required: [
      'image',
      'logLevel',
      ...processRequired,
      'service',
      'serviceAccount',
      'networkPolicy',
      'metrics',
      ...(shape.migrations === false ? [] : ['migrations']),
      'securityContext',
      'terminationGracePeriodSeconds',
      ...(shape.required ?? []),
    ],
    properties: {
      global,
      'allot-common': libraryValues,
      enabled: { type: 'boolean', description: 'set by the umbrella chart' },
      image: image(shape.image),
      imagePullSecrets: { type: 'array', items: string },
      nameOverride: string,
      fullnameOverride: dnsName,
      existingSecret: { ...dnsName, description: `Secret with ${shape.secretKeys.join(', ')}` },
      secret: {
        type: 'object',
        description: 'DEVELOPMENT ONLY: values of the Secret the chart creates when no existingSecret is set',
        additionalProperties: false,
        properties: secretProperties,
      },
      tenant: { type: 'string', pattern: '^$|^[A-Za-z0-9._:-]{1,128}$', description: 'ALLOT_TENANT' },
      logLevel,
      extraEnv: stringMap,
      ...shape.extra,
      ...processes,
      service,
      serviceAccount,
      networkPolicy: networkPolicy(shape.backends),
      metrics,
      ...(shape.migrations === false ? {} : { migrations }),
      securityContext,
      tmpSizeLimit: { type: 'string', pattern: '^[0-9]+(Ki|Mi|Gi)$' },
      terminationGracePeriodSeconds: {
        type: 'integer',
        minimum: 11,
        description: 'longer than the processes’ SHUTDOWN_GRACE_MS (10 s)',
      },
      podAnnotations: stringMap,
      podLabels: stringMap,
      priorityClassName: string,
      nodeSelector: stringMap,
      tolerations: freeArray,
      affinity: freeObject,
      topologySpreadConstraints: freeArray,
    },
  };
}

const DATA_PLANE_KEYS = ['DATABASE_URL', 'REDIS_URL', 'NATS_URL', 'ALLOT_API_KEY'];
/** Passed on when the Secret has them, by every chart that reads REDIS_URL. */
const REDIS_OPTIONAL_KEYS = ['REDIS_TLS_CA'];

export const SERVICE_CHARTS: ChartShape[] = [
  {
    name: 'gate',
    title: 'Allot gate',
    image: 'allot-gate',
    secretKeys: DATA_PLANE_KEYS,
    optionalSecretKeys: REDIS_OPTIONAL_KEYS,
    backends: ['postgres', 'redis', 'nats'],
    processes: 'one',
    extra: {
      failOpen: { type: 'boolean', description: 'ALLOT_FAIL_OPEN' },
      tests: object({ enabled: boolean, resources }, ['enabled', 'resources'], 'the helm test pod'),
    },
    required: ['tests'],
  },
  {
    name: 'credits',
    title: 'Allot credits',
    image: 'allot-credits',
    secretKeys: DATA_PLANE_KEYS,
    optionalSecretKeys: REDIS_OPTIONAL_KEYS,
    backends: ['postgres', 'redis', 'nats'],
    processes: 'server-worker',
  },
  {
    name: 'metering',
    title: 'Allot metering',
    image: 'allot-metering',
    secretKeys: ['DATABASE_URL', 'NATS_URL', 'ALLOT_API_KEY'],
    backends: ['postgres', 'nats'],
    processes: 'server-worker',
    extra: { partitions: { type: 'integer', minimum: 1, maximum: 256, description: 'METERING_PARTITIONS' } },
    workerExtra: {
      take: {
        type: ['string', 'null'],
        pattern: PARTITION_LIST,
        description: 'METERING_TAKE: the partitions this worker applies, e.g. "0,1"; null means all',
      },
      partitionSets: {
        type: 'array',
        items: { type: 'string', pattern: PARTITION_LIST },
        description:
          'one worker Deployment per set (METERING_TAKE), e.g. ["0,1", "2,3"]; together they take every partition once',
      },
    },
    required: ['partitions'],
  },
  {
    name: 'governance',
    title: 'Allot governance',
    image: 'allot-governance',
    secretKeys: DATA_PLANE_KEYS,
    optionalSecretKeys: REDIS_OPTIONAL_KEYS,
    backends: ['postgres', 'redis', 'nats'],
    processes: 'one',
  },
  {
    name: 'control-plane',
    title: 'Allot control plane',
    image: 'allot-control-plane',
    secretKeys: ['DATABASE_URL', 'ALLOT_HUB_PASSWORD', 'ALLOT_API_KEY'],
    backends: ['postgres', 'hub'],
    processes: 'one',
    extra: {
      hub: object(
        {
          url: { ...hubUrl, description: 'ALLOT_HUB_URL (required); nats:// or tls://, rendered with tpl' },
          user: { type: 'string', minLength: 1, description: 'ALLOT_HUB_USER' },
          publicUrl: { type: 'string', description: 'ALLOT_HUB_PUBLIC_URL; rendered with tpl' },
        },
        ['url', 'user'],
      ),
    },
    required: ['hub'],
  },
  {
    name: 'mcp',
    title: 'Allot MCP',
    image: 'allot-mcp',
    secretKeys: DATA_PLANE_KEYS,
    optionalSecretKeys: REDIS_OPTIONAL_KEYS,
    backends: ['postgres', 'redis', 'nats', 'api'],
    processes: 'one',
    migrations: false,
    extra: {
      gateUrl: { type: 'string', pattern: '^$|^https?://', description: 'ALLOT_GATE_URL (required); tpl' },
      creditsUrl: { type: 'string', pattern: '^$|^https?://', description: 'ALLOT_CREDITS_URL; tpl' },
      meteringUrl: { type: 'string', pattern: '^$|^https?://', description: 'ALLOT_METERING_URL; tpl' },
    },
    required: ['gateUrl'],
  },
  {
    name: 'uplink',
    title: 'Allot uplink',
    image: 'allot-uplink',
    secretKeys: ['DATABASE_URL', 'NATS_URL', 'ALLOT_UPLINK_PASSWORD'],
    // See charts/uplink/templates/_helpers.tpl.
    optionalSecretKeys: ['REDIS_URL', ...REDIS_OPTIONAL_KEYS],
    backends: ['postgres', 'redis', 'nats', 'hub'],
    processes: 'one-agent',
    extra: {
      url: { ...hubUrl, description: 'ALLOT_UPLINK_URL (required): the hub, nats:// or tls://' },
      user: { type: 'string', description: 'ALLOT_UPLINK_USER; empty means the tenant id' },
    },
    required: ['url'],
  },
];

/** The umbrella checks its own keys; each enabled component is checked by its chart's schema. */
function umbrellaSchema(): Schema {
  const component = (description: string, extra: Record<string, Schema> = {}): Schema => ({
    type: 'object',
    description: `${description}; the other keys are the chart's values`,
    required: ['enabled'],
    properties: { enabled: boolean, ...extra },
  });
  const devImage = (pattern: string): Schema => ({ type: 'string', pattern });
  return {
    $schema: 'http://json-schema.org/draft-07/schema#',
    title: 'Allot (umbrella chart)',
    type: 'object',
    additionalProperties: false,
    required: [
      'global',
      'gate',
      'credits',
      'metering',
      'governance',
      'controlPlane',
      'mcp',
      'uplink',
      'nats',
    ],
    properties: {
      global,
      'allot-common': libraryValues,
      gate: component('charts/gate'),
      credits: component('charts/credits'),
      metering: component('charts/metering'),
      governance: component('charts/governance'),
      controlPlane: component('charts/control-plane'),
      mcp: component('charts/mcp'),
      uplink: component('charts/uplink'),
      nats: component(
        'the official NATS chart: one dev server by default, a 3-node JetStream cluster with values-scale.yaml',
      ),
      devBackends: object(
        {
          postgres: object(
            {
              enabled: boolean,
              image: devImage('^(.+/)?postgres:'),
              persistence: object({ enabled: boolean, size: string, storageClass: string }, [
                'enabled',
                'size',
              ]),
              resources,
            },
            ['enabled'],
          ),
          redis: object({ enabled: boolean, image: devImage('^(.+/)?redis:'), resources }, ['enabled']),
        },
        ['postgres', 'redis'],
        'DEVELOPMENT ONLY: single-pod PostgreSQL and Redis in the release',
      ),
    },
  };
}

/** Every chart's schema by its path from the repository root. */
export function chartSchemas(): Record<string, Schema> {
  const schemas: Record<string, Schema> = { 'charts/allot/values.schema.json': umbrellaSchema() };
  for (const shape of SERVICE_CHARTS)
    schemas[`charts/${shape.name}/values.schema.json`] = serviceChartSchema(shape);
  return schemas;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const files = Object.entries(chartSchemas()).map(([path, schema]) => {
    const file = join(repoRoot, path);
    writeFileSync(file, `${JSON.stringify(schema, null, 2)}\n`);
    return file;
  });
  // The repository's formatter has the last word on layout, so that `biome check` stays clean.
  execFileSync(join(repoRoot, 'node_modules/.bin/biome'), ['format', '--write', ...files], {
    stdio: 'inherit',
  });
}
