import { TerraformOutput, TerraformStack } from 'cdktf';
import type { Construct } from 'constructs';
import { awsFoundation } from '../aws/foundation.ts';
import { AwsPostgres } from '../aws/postgres.ts';
import { AwsRedis } from '../aws/redis.ts';
import { connectionSecret } from '../aws/secret.ts';
import { type DataPlaneConfig, needsPostgres, needsRedis } from '../config.ts';
import { AllotRelease, allotNamespace } from './allot-release.ts';
import { dataPlaneValues } from './chart-values.ts';
import { type DataPlane, dataPlaneCredentials, dataPlaneOutputs, dataPlaneSecret } from './data-plane.ts';

/**
 * A tenant's data plane on AWS: VPC (or an existing one), EKS (or an existing cluster), RDS
 * PostgreSQL and ElastiCache Redis when the enabled components need them, the connection secret
 * in Secrets Manager and in Kubernetes, and the umbrella chart with exactly those components.
 */
export class AwsDataPlaneStack extends TerraformStack implements DataPlane {
  readonly config: DataPlaneConfig;
  readonly clusterName: string;
  readonly databaseHost: string | undefined;
  readonly redisHost: string | undefined;
  readonly secretArn: string;
  readonly release: AllotRelease;

  constructor(scope: Construct, id: string, config: DataPlaneConfig) {
    super(scope, id);
    this.config = config;
    const { key, network, cluster } = awsFoundation(this, config, 'data');
    const postgres = needsPostgres(config.components)
      ? new AwsPostgres(this, 'postgres', {
          name: config.name,
          database: config.database,
          network,
          clientSecurityGroupIds: cluster.nodeSecurityGroupIds,
          kmsKeyArn: key.arn,
          deletionProtection: config.deletionProtection,
        })
      : undefined;
    const redis = needsRedis(config.components)
      ? new AwsRedis(this, 'redis', {
          name: config.name,
          redis: config.redis,
          network,
          clientSecurityGroupIds: cluster.nodeSecurityGroupIds,
          kmsKeyArn: key.arn,
        })
      : undefined;

    const credentials = dataPlaneCredentials(this, config);
    const secret = dataPlaneSecret(credentials, { databaseUrl: postgres?.url, redisUrl: redis?.url });
    this.secretArn = connectionSecret(this, {
      name: `${config.name}/data-plane`,
      kmsKeyArn: key.arn,
      values: secret,
    }).arn;

    const providers = cluster.providers(this);
    this.release = new AllotRelease(this, 'allot', {
      config,
      providers,
      namespace: allotNamespace(this, config, providers.kubernetes),
      secret,
      values: dataPlaneValues(config),
      dependsOn: [
        ...providers.ready,
        ...(postgres ? [postgres.instance] : []),
        ...(redis ? [redis.group] : []),
      ],
    });
    this.clusterName = cluster.name;
    this.databaseHost = postgres?.instance.address;
    this.redisHost = redis?.host;
    dataPlaneOutputs(this, this, credentials);
    new TerraformOutput(this, 'secret_arn', { value: this.secretArn });
  }
}
