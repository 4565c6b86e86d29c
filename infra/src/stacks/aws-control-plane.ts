import { TerraformStack } from 'cdktf';
import type { Construct } from 'constructs';
import { awsFoundation } from '../aws/foundation.ts';
import { AwsPostgres } from '../aws/postgres.ts';
import { connectionSecret } from '../aws/secret.ts';
import type { ControlPlaneConfig } from '../config.ts';
import { type AllotRelease, allotNamespace } from './allot-release.ts';
import {
  type ControlPlane,
  controlPlaneCredentials,
  controlPlaneOutputs,
  controlPlaneRelease,
  controlPlaneSecret,
  hubService,
} from './control-plane.ts';

/**
 * The vendor's control plane on AWS: its own VPC and EKS (or existing ones), its own RDS
 * PostgreSQL, the chart with only the control plane and its NATS (the hub), and a network load
 * balancer that exposes the hub to tenants' uplinks.
 */
export class AwsControlPlaneStack extends TerraformStack implements ControlPlane {
  readonly config: ControlPlaneConfig;
  readonly clusterName: string;
  readonly databaseHost: string;
  readonly hubPublicUrl: string;
  readonly secretArn: string;
  readonly release: AllotRelease;

  constructor(scope: Construct, id: string, config: ControlPlaneConfig) {
    super(scope, id);
    this.config = config;
    const { key, network, cluster } = awsFoundation(this, config, 'control');
    const postgres = new AwsPostgres(this, 'postgres', {
      name: config.name,
      database: config.database,
      network,
      clientSecurityGroupIds: cluster.nodeSecurityGroupIds,
      kmsKeyArn: key.arn,
      deletionProtection: config.deletionProtection,
    });
    const credentials = controlPlaneCredentials(this);
    const secret = controlPlaneSecret(credentials, postgres.url);
    this.secretArn = connectionSecret(this, {
      name: `${config.name}/control-plane`,
      kmsKeyArn: key.arn,
      values: secret,
    }).arn;

    const providers = cluster.providers(this);
    const namespace = allotNamespace(this, config, providers.kubernetes);
    const hub = hubService(this, {
      config,
      kubernetes: providers.kubernetes,
      namespace,
      // An internet-facing network load balancer, so the hub sees the tenants' own addresses.
      annotations: { 'service.beta.kubernetes.io/aws-load-balancer-type': 'nlb' },
      dependsOn: providers.ready,
    });
    const chart = controlPlaneRelease(this, {
      config,
      providers,
      namespace,
      secret,
      hubHost: hub.status.get(0).loadBalancer.get(0).ingress.get(0).hostname,
      dependsOn: [...providers.ready, postgres.instance],
    });
    this.hubPublicUrl = chart.hubPublicUrl;
    this.release = chart.release;
    this.clusterName = cluster.name;
    this.databaseHost = postgres.instance.address;
    controlPlaneOutputs(this, this, credentials);
  }
}
