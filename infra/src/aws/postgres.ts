import { DbInstance } from '@cdktf/provider-aws/lib/db-instance/index.js';
import { DbParameterGroup } from '@cdktf/provider-aws/lib/db-parameter-group/index.js';
import { DbSubnetGroup } from '@cdktf/provider-aws/lib/db-subnet-group/index.js';
import { Construct } from 'constructs';
import type { DatabaseConfig } from '../config.ts';
import { generatedSecret } from '../stacks/allot-release.ts';
import { DATABASE_NAME, DATABASE_USER, databaseUrl } from '../stacks/database-url.ts';
import type { AwsNetwork } from './network.ts';
import { privateSecurityGroup } from './security-group.ts';

const DEFAULT_INSTANCE_CLASS = 'db.m7g.large';

export interface AwsPostgresProps {
  readonly name: string;
  readonly database: DatabaseConfig;
  readonly network: AwsNetwork;
  /** Only these security groups (the cluster's nodes) may connect. */
  readonly clientSecurityGroupIds: readonly string[];
  readonly kmsKeyArn: string;
  readonly deletionProtection: boolean;
}

/**
 * RDS PostgreSQL 15 in the private subnets: storage encrypted with the stack's KMS key, no public
 * endpoint, TLS required, reachable only from the cluster, with backups and a final snapshot.
 */
export class AwsPostgres extends Construct {
  readonly instance: DbInstance;
  /** `DATABASE_URL` for the services. */
  readonly url: string;

  constructor(scope: Construct, id: string, props: AwsPostgresProps) {
    super(scope, id);
    const { database, name } = props;
    const subnets = new DbSubnetGroup(this, 'subnets', {
      name: `${name}-postgres`,
      subnetIds: props.network.privateSubnetIds,
    });
    const securityGroup = privateSecurityGroup(this, {
      name: `${name}-postgres`,
      vpcId: props.network.vpcId,
      port: 5432,
      from: props.clientSecurityGroupIds,
    });
    const parameters = new DbParameterGroup(this, 'parameters', {
      name: `${name}-postgres15`,
      family: 'postgres15',
      // PostgreSQL 15 on RDS still accepts plaintext connections unless told otherwise.
      parameter: [{ name: 'rds.force_ssl', value: '1' }],
    });
    const password = generatedSecret(this, 'password', 32);
    this.instance = new DbInstance(this, 'instance', {
      identifier: `${name}-postgres`,
      engine: 'postgres',
      engineVersion: '15',
      autoMinorVersionUpgrade: true,
      instanceClass: database.instanceType ?? DEFAULT_INSTANCE_CLASS,
      allocatedStorage: database.storageGb,
      maxAllocatedStorage: database.storageGb * 4,
      storageType: 'gp3',
      storageEncrypted: true,
      kmsKeyId: props.kmsKeyArn,
      dbName: DATABASE_NAME,
      username: DATABASE_USER,
      password: password.result,
      iamDatabaseAuthenticationEnabled: database.iamAuthentication,
      dbSubnetGroupName: subnets.name,
      vpcSecurityGroupIds: [securityGroup.id],
      parameterGroupName: parameters.name,
      publiclyAccessible: false,
      multiAz: database.highAvailability,
      backupRetentionPeriod: database.backupRetentionDays,
      copyTagsToSnapshot: true,
      deletionProtection: props.deletionProtection,
      skipFinalSnapshot: false,
      finalSnapshotIdentifier: `${name}-postgres-final`,
      enabledCloudwatchLogsExports: ['postgresql'],
      performanceInsightsEnabled: true,
      performanceInsightsKmsKeyId: props.kmsKeyArn,
    });
    // TLS is required by rds.force_ssl; the URL does not verify the RDS certificate.
    this.url = databaseUrl(password.result, this.instance.address, this.instance.port);
  }
}
