import { TerraformOutput, TerraformStack } from 'cdktf';
import type { Construct } from 'constructs';
import { type DataPlaneConfig, type GcpSettings, needsPostgres, needsRedis } from '../config.ts';
import { gcpFoundation } from '../gcp/foundation.ts';
import { GcpPostgres } from '../gcp/postgres.ts';
import { gcpRedis } from '../gcp/redis.ts';
import { connectionSecret } from '../gcp/secret.ts';
import { AllotRelease, allotNamespace, clusterProviders } from './allot-release.ts';
import { dataPlaneValues } from './chart-values.ts';
import { type DataPlane, dataPlaneCredentials, dataPlaneOutputs, dataPlaneSecret } from './data-plane.ts';

/**
 * A tenant's data plane on GCP: VPC network with Cloud NAT (or an existing one), private GKE (or
 * an existing cluster), Cloud SQL PostgreSQL and Memorystore Redis (an instance, or Memorystore
 * for Redis Cluster) when the enabled components need them, the connection secret in Secret
 * Manager and in Kubernetes, and the umbrella chart.
 */
export class GcpDataPlaneStack extends TerraformStack implements DataPlane {
  readonly config: DataPlaneConfig;
  readonly clusterName: string;
  readonly databaseHost: string | undefined;
  readonly redisHost: string | undefined;
  readonly secretId: string;
  readonly release: AllotRelease;

  constructor(scope: Construct, id: string, config: DataPlaneConfig & GcpSettings) {
    super(scope, id);
    this.config = config;
    const { network, cluster } = gcpFoundation(this, config, 'data');
    const postgres = needsPostgres(config.components)
      ? new GcpPostgres(this, 'postgres', {
          name: config.name,
          region: config.region,
          database: config.database,
          network,
          deletionProtection: config.deletionProtection,
        })
      : undefined;
    const redis = needsRedis(config.components)
      ? gcpRedis(this, 'redis', {
          name: config.name,
          region: config.region,
          redis: config.redis,
          network,
          deletionProtection: config.deletionProtection,
        })
      : undefined;

    const credentials = dataPlaneCredentials(this, config);
    const secret = dataPlaneSecret(credentials, {
      databaseUrl: postgres?.url,
      redisUrl: redis?.url,
      // Memorystore's TLS certificate chains to a per-instance CA; the services verify with it.
      ...(redis ? { extra: { REDIS_TLS_CA: redis.caCertificate } } : {}),
    });
    this.secretId = connectionSecret(this, {
      secretId: `${config.name}-data-plane`,
      values: secret,
    }).secretId;

    const providers = clusterProviders(this, cluster.access);
    this.release = new AllotRelease(this, 'allot', {
      config,
      providers,
      namespace: allotNamespace(this, config, providers.kubernetes),
      secret,
      values: dataPlaneValues(config, redis ? { redisPorts: redis.ports } : {}),
      dependsOn: [
        ...cluster.ready,
        ...(postgres ? [postgres.instance] : []),
        ...(redis ? [redis.resource] : []),
      ],
    });
    this.clusterName = cluster.name;
    this.databaseHost = postgres?.instance.privateIpAddress;
    this.redisHost = redis?.host;
    dataPlaneOutputs(this, this, credentials);
    new TerraformOutput(this, 'secret_id', { value: this.secretId });
  }
}
