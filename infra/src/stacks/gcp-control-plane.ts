import { ComputeAddress } from '@cdktf/provider-google/lib/compute-address/index.js';
import { TerraformStack } from 'cdktf';
import type { Construct } from 'constructs';
import type { ControlPlaneConfig, GcpSettings } from '../config.ts';
import { gcpFoundation } from '../gcp/foundation.ts';
import { GcpPostgres } from '../gcp/postgres.ts';
import { connectionSecret } from '../gcp/secret.ts';
import { type AllotRelease, allotNamespace, clusterProviders } from './allot-release.ts';
import {
  type ControlPlane,
  controlPlaneCredentials,
  controlPlaneOutputs,
  controlPlaneRelease,
  controlPlaneSecret,
  hubService,
} from './control-plane.ts';

/**
 * The vendor's control plane on GCP: its own network and private GKE (or existing ones), its own
 * Cloud SQL PostgreSQL, the chart with only the control plane and its NATS (the hub), and a
 * load balancer on a reserved static address that exposes the hub to tenants' uplinks.
 */
export class GcpControlPlaneStack extends TerraformStack implements ControlPlane {
  readonly config: ControlPlaneConfig;
  readonly clusterName: string;
  readonly databaseHost: string;
  readonly hubPublicUrl: string;
  readonly secretId: string;
  readonly release: AllotRelease;

  constructor(scope: Construct, id: string, config: ControlPlaneConfig & GcpSettings) {
    super(scope, id);
    this.config = config;
    const { network, cluster } = gcpFoundation(this, config, 'control');
    const postgres = new GcpPostgres(this, 'postgres', {
      name: config.name,
      region: config.region,
      database: config.database,
      network,
      deletionProtection: config.deletionProtection,
    });
    const credentials = controlPlaneCredentials(this);
    const secret = controlPlaneSecret(credentials, postgres.url);
    this.secretId = connectionSecret(this, {
      secretId: `${config.name}-control-plane`,
      values: secret,
    }).secretId;

    // A reserved address: the hub URL the tenants were given survives a re-created Service.
    const address = new ComputeAddress(this, 'hub-address', {
      name: `${config.name}-hub`,
      region: config.region,
      addressType: 'EXTERNAL',
    });
    const providers = clusterProviders(this, cluster.access);
    const namespace = allotNamespace(this, config, providers.kubernetes);
    hubService(this, {
      config,
      kubernetes: providers.kubernetes,
      namespace,
      annotations: {},
      loadBalancerIp: address.address,
      dependsOn: cluster.ready,
    });
    const chart = controlPlaneRelease(this, {
      config,
      providers,
      namespace,
      secret,
      hubHost: address.address,
      dependsOn: [...cluster.ready, postgres.instance],
    });
    this.hubPublicUrl = chart.hubPublicUrl;
    this.release = chart.release;
    this.clusterName = cluster.name;
    this.databaseHost = postgres.instance.privateIpAddress;
    controlPlaneOutputs(this, this, credentials);
  }
}
