import { AwsProvider } from '@cdktf/provider-aws/lib/provider/index.js';
import { RandomProvider } from '@cdktf/provider-random/lib/provider/index.js';
import { TerraformStack } from 'cdktf';
import type { Construct } from 'constructs';
import { AwsCluster } from '../aws/cluster.ts';
import { AwsNetwork } from '../aws/network.ts';
import { AwsPostgres } from '../aws/postgres.ts';
import { connectionSecret, stackKey } from '../aws/secret.ts';
import type { ControlPlaneConfig } from '../config.ts';
import { AllotRelease, allotNamespace } from './allot-release.ts';
import { controlPlaneValues } from './chart-values.ts';
import {
  type ControlPlane,
  controlPlaneCredentials,
  controlPlaneOutputs,
  controlPlaneSecret,
  HUB_PORT,
  hubAddresses,
  hubService,
} from './control-plane.ts';
import { stateBackend } from './state.ts';

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
    stateBackend(this, 'aws', config, id);
    const aws = new AwsProvider(this, 'aws', { region: config.region });
    // cdktf snake-cases the keys of a provider's maps; an override keeps the tag keys as written.
    aws.addOverride('default_tags', [
      { tags: { 'allot:deployment': config.name, 'allot:plane': 'control', ...config.tags } },
    ]);
    new RandomProvider(this, 'random');

    const key = stackKey(this, config.name);
    const network = new AwsNetwork(this, 'network', { name: config.name, network: config.network });
    const cluster = new AwsCluster(this, 'cluster', {
      name: config.name,
      region: config.region,
      cluster: config.cluster,
      network,
      kmsKeyArn: key.arn,
      deletionProtection: config.deletionProtection,
    });
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
    const hostname = hub.status.get(0).loadBalancer.get(0).ingress.get(0).hostname;
    this.hubPublicUrl = `nats://${hostname}:${HUB_PORT}`;
    this.release = new AllotRelease(this, 'allot', {
      config,
      providers,
      namespace,
      secret,
      values: controlPlaneValues(config, hubAddresses(config, this.hubPublicUrl)),
      dependsOn: [...providers.ready, postgres.instance],
    });
    this.clusterName = cluster.name;
    this.databaseHost = postgres.instance.address;
    controlPlaneOutputs(this, this, credentials);
  }
}
