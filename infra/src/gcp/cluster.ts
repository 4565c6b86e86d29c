import { ContainerCluster } from '@cdktf/provider-google/lib/container-cluster/index.js';
import { ContainerNodePool } from '@cdktf/provider-google/lib/container-node-pool/index.js';
import { DataGoogleClientConfig } from '@cdktf/provider-google/lib/data-google-client-config/index.js';
import { DataGoogleContainerCluster } from '@cdktf/provider-google/lib/data-google-container-cluster/index.js';
import { ProjectIamMember } from '@cdktf/provider-google/lib/project-iam-member/index.js';
import { ServiceAccount } from '@cdktf/provider-google/lib/service-account/index.js';
import { Fn, type ITerraformDependable } from 'cdktf';
import { Construct } from 'constructs';
import type { ClusterConfig } from '../config.ts';
import type { ClusterAccess } from '../stacks/allot-release.ts';
import type { GcpNetwork } from './network.ts';

const DEFAULT_MACHINE_TYPE = 'e2-standard-4';

/** What a node needs and nothing more: write logs and metrics (GKE's minimal node service account). */
const NODE_ROLES = [
  'roles/logging.logWriter',
  'roles/monitoring.metricWriter',
  'roles/monitoring.viewer',
  'roles/stackdriver.resourceMetadata.writer',
] as const;

export interface GcpClusterProps {
  readonly name: string;
  readonly project: string;
  readonly region: string;
  readonly cluster: ClusterConfig;
  readonly network: GcpNetwork;
  readonly deletionProtection: boolean;
}

/**
 * A regional GKE cluster with private nodes (no external IPs; egress through Cloud NAT), Workload
 * Identity, shielded nodes and a node pool on a least-privilege service account; or one that exists.
 */
export class GcpCluster extends Construct {
  readonly name: string;
  readonly access: ClusterAccess;
  /** What the chart needs in place: the node pool, on a created cluster. */
  readonly ready: readonly ITerraformDependable[];

  constructor(scope: Construct, id: string, props: GcpClusterProps) {
    super(scope, id);
    const { cluster, network, project } = props;
    // Terraform's own access token (from the gcloud credentials it runs with).
    const client = new DataGoogleClientConfig(this, 'client');
    if (cluster.mode === 'existing') {
      const existing = new DataGoogleContainerCluster(this, 'cluster', {
        name: cluster.name,
        location: cluster.location ?? props.region,
      });
      this.name = cluster.name;
      this.access = access(
        existing.endpoint,
        existing.masterAuth.get(0).clusterCaCertificate,
        client.accessToken,
      );
      this.ready = [];
      return;
    }
    const nodeAccount = new ServiceAccount(this, 'node-account', {
      accountId: `${props.name}-nodes`,
      displayName: `${props.name} GKE nodes`,
    });
    const grants = NODE_ROLES.map(
      (role) =>
        new ProjectIamMember(this, `node-account-${role.replace(/^roles\//, '').replace(/\./g, '-')}`, {
          project,
          role,
          member: nodeAccount.member,
        }),
    );
    const gke = new ContainerCluster(this, 'cluster', {
      name: props.name,
      location: props.region,
      network: network.network,
      subnetwork: network.subnetwork,
      networkingMode: 'VPC_NATIVE',
      // Dataplane V2 enforces the NetworkPolicy the chart ships for every process.
      datapathProvider: 'ADVANCED_DATAPATH',
      ipAllocationPolicy: {
        clusterSecondaryRangeName: network.podsRangeName,
        servicesSecondaryRangeName: network.servicesRangeName,
      },
      // The node pool below replaces the default one, which GKE insists on creating first.
      removeDefaultNodePool: true,
      initialNodeCount: 1,
      ...(cluster.version === undefined ? {} : { minMasterVersion: cluster.version }),
      releaseChannel: { channel: 'REGULAR' },
      privateClusterConfig: {
        enablePrivateNodes: true,
        // Terraform installs the chart from outside the network; authorized networks limit who may try.
        enablePrivateEndpoint: false,
        masterIpv4CidrBlock: cluster.masterCidr,
      },
      masterAuthorizedNetworksConfig: {
        cidrBlocks: cluster.apiAllowedCidrs.map((cidrBlock) => ({ cidrBlock, displayName: cidrBlock })),
      },
      workloadIdentityConfig: { workloadPool: `${project}.svc.id.goog` },
      enableShieldedNodes: true,
      deletionProtection: props.deletionProtection,
      nodeConfig: { serviceAccount: nodeAccount.email },
    });
    const nodes = new ContainerNodePool(this, 'nodes', {
      name: `${props.name}-nodes`,
      cluster: gke.id,
      location: props.region,
      autoscaling: { minNodeCount: cluster.minNodes, maxNodeCount: cluster.maxNodes },
      initialNodeCount: cluster.minNodes,
      management: { autoRepair: true, autoUpgrade: true },
      nodeConfig: {
        machineType: cluster.nodeType ?? DEFAULT_MACHINE_TYPE,
        serviceAccount: nodeAccount.email,
        oauthScopes: ['https://www.googleapis.com/auth/cloud-platform'],
        workloadMetadataConfig: { mode: 'GKE_METADATA' },
        shieldedInstanceConfig: { enableSecureBoot: true, enableIntegrityMonitoring: true },
      },
      dependsOn: grants,
    });
    this.name = gke.name;
    this.access = access(gke.endpoint, gke.masterAuth.clusterCaCertificate, client.accessToken);
    this.ready = [nodes];
  }
}

function access(endpoint: string, caCertificate: string, token: string): ClusterAccess {
  return { host: `https://${endpoint}`, caCertificate: Fn.base64decode(caCertificate), auth: { token } };
}
