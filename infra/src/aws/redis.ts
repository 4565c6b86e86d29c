import { ElasticacheReplicationGroup } from '@cdktf/provider-aws/lib/elasticache-replication-group/index.js';
import { ElasticacheSubnetGroup } from '@cdktf/provider-aws/lib/elasticache-subnet-group/index.js';
import { Construct } from 'constructs';
import type { RedisConfig } from '../config.ts';
import { generatedSecret } from '../stacks/allot-release.ts';
import type { AwsNetwork } from './network.ts';
import { privateSecurityGroup } from './security-group.ts';

const DEFAULT_NODE_TYPE = 'cache.m7g.large';
/** Every node listens here, in either mode: the chart's NetworkPolicy default. */
const PORT = 6379;
/** The engine below is Redis 7: its cluster-mode parameter group. */
const CLUSTER_PARAMETER_GROUP = 'default.redis7.cluster.on';

export interface AwsRedisProps {
  readonly name: string;
  readonly redis: RedisConfig;
  readonly network: AwsNetwork;
  readonly clientSecurityGroupIds: readonly string[];
  readonly kmsKeyArn: string;
}

/**
 * ElastiCache Redis (a replication group) in the private subnets: encrypted at rest with the
 * stack's KMS key and in transit (TLS required), an AUTH token, reachable only from the cluster.
 * In cluster mode the key space is sharded over `shards` node groups of a primary and
 * `replicasPerShard` replicas each, with automatic failover; the services reach it through its
 * configuration endpoint. The gate's hot state can be rebuilt from Postgres, so daily snapshots
 * are enough.
 */
export class AwsRedis extends Construct {
  readonly group: ElasticacheReplicationGroup;
  /** `REDIS_URL` for the services: the primary endpoint, or in cluster mode the configuration endpoint. */
  readonly url: string;
  /** The host in `url`. */
  readonly host: string;

  constructor(scope: Construct, id: string, props: AwsRedisProps) {
    super(scope, id);
    const { redis, name } = props;
    const subnets = new ElasticacheSubnetGroup(this, 'subnets', {
      name: `${name}-redis`,
      subnetIds: props.network.privateSubnetIds,
    });
    const securityGroup = privateSecurityGroup(this, {
      name: `${name}-redis`,
      vpcId: props.network.vpcId,
      port: PORT,
      from: props.clientSecurityGroupIds,
    });
    const token = generatedSecret(this, 'auth-token', 64);
    this.group = new ElasticacheReplicationGroup(this, 'group', {
      replicationGroupId: `${name}-redis`,
      description: `${name}: Allot hot state`,
      engine: 'redis',
      engineVersion: '7.1',
      nodeType: redis.instanceType ?? DEFAULT_NODE_TYPE,
      port: PORT,
      ...(redis.mode === 'cluster'
        ? {
            clusterMode: 'enabled',
            parameterGroupName: CLUSTER_PARAMETER_GROUP,
            numNodeGroups: redis.shards,
            replicasPerNodeGroup: redis.replicasPerShard,
            // Required with cluster mode enabled; a shard's replica takes over from its primary.
            automaticFailoverEnabled: true,
            multiAzEnabled: redis.replicasPerShard > 0,
          }
        : {
            numCacheClusters: redis.highAvailability ? 2 : 1,
            automaticFailoverEnabled: redis.highAvailability,
            multiAzEnabled: redis.highAvailability,
          }),
      subnetGroupName: subnets.name,
      securityGroupIds: [securityGroup.id],
      atRestEncryptionEnabled: 'true',
      kmsKeyId: props.kmsKeyArn,
      transitEncryptionEnabled: true,
      transitEncryptionMode: 'required',
      authToken: token.result,
      snapshotRetentionLimit: 1,
      autoMinorVersionUpgrade: 'true',
    });
    this.host =
      redis.mode === 'cluster' ? this.group.configurationEndpointAddress : this.group.primaryEndpointAddress;
    // ElastiCache's certificates chain to a public CA, so rediss:// verifies them as is.
    this.url = `rediss://:${token.result}@${this.host}:${PORT}`;
  }
}
