import { ComputeGlobalAddress } from '@cdktf/provider-google/lib/compute-global-address/index.js';
import { ComputeNetwork } from '@cdktf/provider-google/lib/compute-network/index.js';
import { ComputeRouter } from '@cdktf/provider-google/lib/compute-router/index.js';
import { ComputeRouterNat } from '@cdktf/provider-google/lib/compute-router-nat/index.js';
import { ComputeSubnetwork } from '@cdktf/provider-google/lib/compute-subnetwork/index.js';
import { ServiceNetworkingConnection } from '@cdktf/provider-google/lib/service-networking-connection/index.js';
import type { ITerraformDependable } from 'cdktf';
import { Construct } from 'constructs';
import { cidrSubnet, type NetworkConfig } from '../config.ts';

export interface GcpNetworkProps {
  readonly name: string;
  readonly project: string;
  readonly region: string;
  readonly network: NetworkConfig;
}

/**
 * A VPC network with one subnetwork (secondary ranges for GKE pods and services), Cloud NAT for
 * egress from private nodes, and private service access for Cloud SQL and Memorystore; or the
 * names of an existing one.
 */
export class GcpNetwork extends Construct {
  /** Self link or name of the network. */
  readonly network: string;
  /** The network's `projects/…/global/networks/…` id, as Cloud SQL and Memorystore want it. */
  readonly networkId: string;
  readonly subnetwork: string;
  /** The subnetwork's `projects/…/regions/…/subnetworks/…` id, as a service connection policy wants it. */
  readonly subnetworkId: string;
  readonly podsRangeName: string;
  readonly servicesRangeName: string;
  /** Cloud SQL and Memorystore wait for the peering to exist. */
  readonly privateServiceAccess: ITerraformDependable[] = [];

  constructor(scope: Construct, id: string, props: GcpNetworkProps) {
    super(scope, id);
    const { network, name } = props;
    if (network.mode === 'existing') {
      this.network = network.networkId;
      this.networkId = network.networkId;
      this.subnetwork = network.subnetIds[0] ?? '';
      this.subnetworkId = subnetworkId(this.subnetwork, props.project, props.region);
      this.podsRangeName = network.podsRangeName;
      this.servicesRangeName = network.servicesRangeName;
      if (network.privateServiceAccess === 'create')
        this.privateServiceAccess.push(this.#peering(name, network.networkId));
      return;
    }
    const vpc = new ComputeNetwork(this, 'network', {
      name,
      autoCreateSubnetworks: false,
      routingMode: 'REGIONAL',
    });
    // Nodes take the first sixteenth, services the second, pods the upper half.
    const subnetwork = new ComputeSubnetwork(this, 'subnetwork', {
      name: `${name}-nodes`,
      region: props.region,
      network: vpc.id,
      ipCidrRange: cidrSubnet(network.cidr, 4, 0),
      privateIpGoogleAccess: true,
      secondaryIpRange: [
        { rangeName: 'pods', ipCidrRange: cidrSubnet(network.cidr, 1, 1) },
        { rangeName: 'services', ipCidrRange: cidrSubnet(network.cidr, 4, 1) },
      ],
      logConfig: {
        aggregationInterval: 'INTERVAL_5_MIN',
        flowSampling: 0.5,
        metadata: 'INCLUDE_ALL_METADATA',
      },
    });
    const router = new ComputeRouter(this, 'router', { name, region: props.region, network: vpc.id });
    new ComputeRouterNat(this, 'nat', {
      name,
      router: router.name,
      region: props.region,
      natIpAllocateOption: 'AUTO_ONLY',
      sourceSubnetworkIpRangesToNat: 'ALL_SUBNETWORKS_ALL_IP_RANGES',
      logConfig: { enable: true, filter: 'ERRORS_ONLY' },
    });
    this.network = vpc.name;
    this.networkId = vpc.id;
    this.subnetwork = subnetwork.name;
    this.subnetworkId = subnetwork.id;
    this.podsRangeName = 'pods';
    this.servicesRangeName = 'services';
    this.privateServiceAccess.push(this.#peering(name, vpc.id));
  }

  /** A range reserved for Google's managed services and the peering that uses it. */
  #peering(name: string, networkId: string): ServiceNetworkingConnection {
    const range = new ComputeGlobalAddress(this, 'private-service-range', {
      name: `${name}-private-services`,
      purpose: 'VPC_PEERING',
      addressType: 'INTERNAL',
      prefixLength: 16,
      network: networkId,
    });
    return new ServiceNetworkingConnection(this, 'private-service-access', {
      network: networkId,
      service: 'servicenetworking.googleapis.com',
      reservedPeeringRanges: [range.name],
    });
  }
}

/** A subnetwork given by name, id or self link, as its `projects/…/regions/…/subnetworks/…` id. */
function subnetworkId(subnetwork: string, project: string, region: string): string {
  const id = subnetwork.replace(/^https:\/\/www\.googleapis\.com\/compute\/v1\//, '');
  return id.includes('/') ? id : `projects/${project}/regions/${region}/subnetworks/${id}`;
}
