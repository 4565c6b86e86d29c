import { NetworkConnectivityServiceConnectionPolicy } from '@cdktf/provider-google/lib/network-connectivity-service-connection-policy/index.js';
import { RedisCluster } from '@cdktf/provider-google/lib/redis-cluster/index.js';
import { RedisInstance } from '@cdktf/provider-google/lib/redis-instance/index.js';
import { Fn, type ITerraformDependable, ref } from 'cdktf';
import { Construct } from 'constructs';
import type { RedisConfig } from '../config.ts';
import type { GcpNetwork } from './network.ts';

/** Memorystore serves TLS on 6378, not 6379: the chart's NetworkPolicies must allow it. */
export const MEMORYSTORE_TLS_PORT = 6378;

/**
 * Memorystore for Redis Cluster: the discovery endpoint on 6379 and the nodes' Private Service
 * Connect endpoints on 6379 and 11000-13047, which the chart's NetworkPolicies must allow.
 */
export const MEMORYSTORE_CLUSTER_PORTS = [6379, { port: 11000, endPort: 13047 }] as const;

const DEFAULT_CLUSTER_NODE_TYPE = 'REDIS_HIGHMEM_MEDIUM';

export interface GcpRedisProps {
  readonly name: string;
  readonly region: string;
  readonly redis: RedisConfig;
  readonly network: GcpNetwork;
  /** Memorystore for Redis Cluster refuses deletion while this is on. */
  readonly deletionProtection: boolean;
}

/** What the data plane needs of either kind of Memorystore. */
export interface GcpRedis {
  /** What must exist before the chart installs. */
  readonly resource: ITerraformDependable;
  /** `REDIS_URL` for the services. */
  readonly url: string;
  /** The host in `url`. */
  readonly host: string;
  /** PEM of the server CA: TLS clients must trust it, as Node's CAs do not include it (REDIS_TLS_CA). */
  readonly caCertificate: string;
  /** Ports the chart's NetworkPolicies must open to it. */
  readonly ports: ReadonlyArray<number | { readonly port: number; readonly endPort: number }>;
}

export function gcpRedis(scope: Construct, id: string, props: GcpRedisProps): GcpRedis {
  const { redis } = props;
  return redis.mode === 'cluster'
    ? new GcpRedisCluster(scope, id, { ...props, redis })
    : new GcpRedisInstance(scope, id, { ...props, redis });
}

/**
 * Memorystore for Redis over private service access: AUTH on, TLS (server authentication) on,
 * encrypted at rest by Google, no address outside the network.
 */
export class GcpRedisInstance extends Construct implements GcpRedis {
  readonly instance: RedisInstance;
  readonly url: string;
  readonly host: string;
  readonly caCertificate: string;
  readonly ports = [MEMORYSTORE_TLS_PORT];

  constructor(
    scope: Construct,
    id: string,
    props: GcpRedisProps & { redis: Extract<RedisConfig, { mode: 'single' }> },
  ) {
    super(scope, id);
    this.instance = new RedisInstance(this, 'instance', {
      name: `${props.name}-redis`,
      region: props.region,
      tier: props.redis.highAvailability ? 'STANDARD_HA' : 'BASIC',
      memorySizeGb: props.redis.memoryGb,
      redisVersion: 'REDIS_7_2',
      authorizedNetwork: props.network.networkId,
      connectMode: 'PRIVATE_SERVICE_ACCESS',
      authEnabled: true,
      transitEncryptionMode: 'SERVER_AUTHENTICATION',
      dependsOn: props.network.privateServiceAccess,
    });
    this.host = this.instance.host;
    this.url = `rediss://:${this.instance.authString}@${this.instance.host}:${this.instance.port}`;
    this.caCertificate = this.instance.serverCaCerts.get(0).cert;
  }

  get resource(): ITerraformDependable {
    return this.instance;
  }
}

/**
 * Memorystore for Redis Cluster: `shards` shards of a primary and `replicasPerShard` replicas
 * each, spread over the region's zones, reached through Private Service Connect endpoints in the
 * stack's subnetwork (the network's service connection policy for Memorystore allocates them),
 * TLS with server authentication, encrypted at rest by Google.
 *
 * No password: Memorystore for Redis Cluster authenticates either by IAM, with an access token
 * per connection that expires within the hour, which the services' Redis client does not fetch,
 * or not at all. The stack chooses the latter; only the network reaches the endpoints, and the
 * chart's NetworkPolicies limit which pods do (docs/install-gcp.md).
 */
export class GcpRedisCluster extends Construct implements GcpRedis {
  readonly cluster: RedisCluster;
  readonly policy: NetworkConnectivityServiceConnectionPolicy | undefined;
  readonly url: string;
  readonly host: string;
  readonly caCertificate: string;
  readonly ports = MEMORYSTORE_CLUSTER_PORTS;

  constructor(
    scope: Construct,
    id: string,
    props: GcpRedisProps & { redis: Extract<RedisConfig, { mode: 'cluster' }> },
  ) {
    super(scope, id);
    const { redis } = props;
    this.policy =
      redis.serviceConnectionPolicy === 'create'
        ? new NetworkConnectivityServiceConnectionPolicy(this, 'service-connection-policy', {
            name: `${props.name}-memorystore`,
            location: props.region,
            serviceClass: 'gcp-memorystore-redis',
            network: props.network.networkId,
            pscConfig: { subnetworks: [props.network.subnetworkId] },
          })
        : undefined;
    this.cluster = new RedisCluster(this, 'cluster', {
      name: `${props.name}-redis`,
      region: props.region,
      shardCount: redis.shards,
      replicaCount: redis.replicasPerShard,
      nodeType: redis.instanceType ?? DEFAULT_CLUSTER_NODE_TYPE,
      pscConfigs: [{ network: props.network.networkId }],
      zoneDistributionConfig: { mode: 'MULTI_ZONE' },
      transitEncryptionMode: 'TRANSIT_ENCRYPTION_MODE_SERVER_AUTHENTICATION',
      authorizationMode: 'AUTH_MODE_DISABLED',
      deletionProtectionEnabled: props.deletionProtection,
      ...(this.policy ? { dependsOn: [this.policy] } : {}),
    });
    const discovery = this.cluster.discoveryEndpoints.get(0);
    this.host = discovery.address;
    this.url = `rediss://${discovery.address}:${discovery.port}`;
    // Every certificate of every CA the cluster presents (two while Google rotates them).
    this.caCertificate = Fn.join(
      '\n',
      Fn.flatten(ref(`${this.cluster.fqn}.managed_server_ca[*].ca_certs[*].certificates`)),
    );
  }

  get resource(): ITerraformDependable {
    return this.cluster;
  }
}
