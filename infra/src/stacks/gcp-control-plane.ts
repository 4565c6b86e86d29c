import { ComputeAddress } from '@cdktf/provider-google/lib/compute-address/index.js';
import { GoogleProvider } from '@cdktf/provider-google/lib/provider/index.js';
import { RandomProvider } from '@cdktf/provider-random/lib/provider/index.js';
import { TerraformStack } from 'cdktf';
import type { Construct } from 'constructs';
import type { ControlPlaneConfig, GcpSettings } from '../config.ts';
import { GcpCluster } from '../gcp/cluster.ts';
import { GcpNetwork } from '../gcp/network.ts';
import { GcpPostgres } from '../gcp/postgres.ts';
import { connectionSecret } from '../gcp/secret.ts';
import { AllotRelease, allotNamespace, clusterProviders } from './allot-release.ts';
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
    stateBackend(this, 'gcp', config, id);
    const google = new GoogleProvider(this, 'google', { project: config.project, region: config.region });
    // cdktf snake-cases the keys of a provider's maps; an override keeps the label keys as written.
    google.addOverride('default_labels', {
      'allot-deployment': config.name,
      'allot-plane': 'control',
      ...config.tags,
    });
    new RandomProvider(this, 'random');

    const network = new GcpNetwork(this, 'network', {
      name: config.name,
      project: config.project,
      region: config.region,
      network: config.network,
    });
    const cluster = new GcpCluster(this, 'cluster', {
      name: config.name,
      project: config.project,
      region: config.region,
      cluster: config.cluster,
      network,
      deletionProtection: config.deletionProtection,
    });
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
    this.hubPublicUrl = `nats://${address.address}:${HUB_PORT}`;
    this.release = new AllotRelease(this, 'allot', {
      config,
      providers,
      namespace,
      secret,
      values: controlPlaneValues(config, hubAddresses(config, this.hubPublicUrl)),
      dependsOn: [...cluster.ready, postgres.instance],
    });
    this.clusterName = cluster.name;
    this.databaseHost = postgres.instance.privateIpAddress;
    controlPlaneOutputs(this, this, credentials);
  }
}
