import { SqlDatabase } from '@cdktf/provider-google/lib/sql-database/index.js';
import { SqlDatabaseInstance } from '@cdktf/provider-google/lib/sql-database-instance/index.js';
import { SqlUser } from '@cdktf/provider-google/lib/sql-user/index.js';
import { Construct } from 'constructs';
import type { DatabaseConfig } from '../config.ts';
import { generatedSecret } from '../stacks/allot-release.ts';
import { DATABASE_NAME, DATABASE_USER, databaseUrl } from '../stacks/database-url.ts';
import type { GcpNetwork } from './network.ts';

const DEFAULT_TIER = 'db-custom-2-8192';

export interface GcpPostgresProps {
  readonly name: string;
  readonly region: string;
  readonly database: DatabaseConfig;
  readonly network: GcpNetwork;
  readonly deletionProtection: boolean;
}

/**
 * Cloud SQL PostgreSQL 15 on a private IP only (no public IPv4), reached over private service
 * access, TLS required, with backups and point-in-time recovery. Storage is encrypted at rest by
 * Google; deletion is refused both by Terraform and by the Cloud SQL API while protection is on.
 */
export class GcpPostgres extends Construct {
  readonly instance: SqlDatabaseInstance;
  /** `DATABASE_URL` for the services. */
  readonly url: string;

  constructor(scope: Construct, id: string, props: GcpPostgresProps) {
    super(scope, id);
    const { database, name } = props;
    this.instance = new SqlDatabaseInstance(this, 'instance', {
      name: `${name}-postgres`,
      region: props.region,
      databaseVersion: 'POSTGRES_15',
      deletionProtection: props.deletionProtection,
      settings: {
        edition: 'ENTERPRISE',
        tier: database.instanceType ?? DEFAULT_TIER,
        availabilityType: database.highAvailability ? 'REGIONAL' : 'ZONAL',
        diskType: 'PD_SSD',
        diskSize: database.storageGb,
        diskAutoresize: true,
        deletionProtectionEnabled: props.deletionProtection,
        ipConfiguration: {
          ipv4Enabled: false,
          privateNetwork: props.network.networkId,
          sslMode: 'ENCRYPTED_ONLY',
        },
        backupConfiguration: {
          enabled: true,
          pointInTimeRecoveryEnabled: true,
          backupRetentionSettings: { retainedBackups: database.backupRetentionDays },
        },
        databaseFlags: database.iamAuthentication
          ? [{ name: 'cloudsql.iam_authentication', value: 'on' }]
          : [],
      },
      dependsOn: props.network.privateServiceAccess,
    });
    new SqlDatabase(this, 'database', { name: DATABASE_NAME, instance: this.instance.name });
    const password = generatedSecret(this, 'password', 32);
    new SqlUser(this, 'user', {
      name: DATABASE_USER,
      instance: this.instance.name,
      password: password.result,
    });
    // TLS is required by sslMode ENCRYPTED_ONLY; the URL does not verify the per-instance CA's certificate.
    this.url = databaseUrl(password.result, this.instance.privateIpAddress, 5432);
  }
}
