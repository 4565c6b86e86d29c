import { DataAwsAvailabilityZones } from '@cdktf/provider-aws/lib/data-aws-availability-zones/index.js';
import { DefaultSecurityGroup } from '@cdktf/provider-aws/lib/default-security-group/index.js';
import { Eip } from '@cdktf/provider-aws/lib/eip/index.js';
import { InternetGateway } from '@cdktf/provider-aws/lib/internet-gateway/index.js';
import { NatGateway } from '@cdktf/provider-aws/lib/nat-gateway/index.js';
import { RouteTable } from '@cdktf/provider-aws/lib/route-table/index.js';
import { RouteTableAssociation } from '@cdktf/provider-aws/lib/route-table-association/index.js';
import { Subnet } from '@cdktf/provider-aws/lib/subnet/index.js';
import { Vpc } from '@cdktf/provider-aws/lib/vpc/index.js';
import { Fn } from 'cdktf';
import { Construct } from 'constructs';
import { cidrSubnet, type NetworkConfig } from '../config.ts';

/** Zones the new VPC spans: one private and one public subnet, and one NAT gateway, in each. */
export const AWS_ZONES = 3;

/**
 * A VPC whose workloads live in private subnets and reach out through a NAT gateway per zone
 * (the uplink dials the hub; nothing dials in), or the ids of one that exists.
 */
export class AwsNetwork extends Construct {
  readonly vpcId: string;
  readonly privateSubnetIds: string[];

  constructor(scope: Construct, id: string, props: { name: string; network: NetworkConfig }) {
    super(scope, id);
    const { network, name } = props;
    if (network.mode === 'existing') {
      this.vpcId = network.networkId;
      this.privateSubnetIds = [...network.subnetIds];
      return;
    }
    const zones = new DataAwsAvailabilityZones(this, 'zones', {
      state: 'available',
      filter: [{ name: 'opt-in-status', values: ['opt-in-not-required'] }],
    });
    const vpc = new Vpc(this, 'vpc', {
      cidrBlock: network.cidr,
      enableDnsSupport: true,
      enableDnsHostnames: true,
      tags: { Name: name },
    });
    // The default security group allows all traffic between its members; nothing should use it.
    new DefaultSecurityGroup(this, 'default-security-group', {
      vpcId: vpc.id,
      tags: { Name: `${name}-default` },
    });
    const gateway = new InternetGateway(this, 'internet-gateway', { vpcId: vpc.id, tags: { Name: name } });
    const publicRoutes = new RouteTable(this, 'public-routes', {
      vpcId: vpc.id,
      route: [{ cidrBlock: '0.0.0.0/0', gatewayId: gateway.id }],
      tags: { Name: `${name}-public` },
    });
    // Private subnets take the first three eighths (a /19 each in a /16: room for VPC CNI pod IPs);
    // public ones (NAT gateways, load balancers) share the last eighth.
    const lastEighth = cidrSubnet(network.cidr, 3, 7);
    this.privateSubnetIds = [];
    for (let zone = 0; zone < AWS_ZONES; zone++) {
      const availabilityZone = Fn.element(zones.names, zone);
      const publicSubnet = new Subnet(this, `public-${zone}`, {
        vpcId: vpc.id,
        availabilityZone,
        cidrBlock: cidrSubnet(lastEighth, 5, zone),
        mapPublicIpOnLaunch: false,
        tags: { Name: `${name}-public-${zone}`, 'kubernetes.io/role/elb': '1' },
      });
      new RouteTableAssociation(this, `public-${zone}-routes`, {
        subnetId: publicSubnet.id,
        routeTableId: publicRoutes.id,
      });
      const address = new Eip(this, `nat-${zone}-address`, {
        domain: 'vpc',
        tags: { Name: `${name}-nat-${zone}` },
      });
      const nat = new NatGateway(this, `nat-${zone}`, {
        allocationId: address.allocationId,
        subnetId: publicSubnet.id,
        tags: { Name: `${name}-${zone}` },
        dependsOn: [gateway],
      });
      const privateSubnet = new Subnet(this, `private-${zone}`, {
        vpcId: vpc.id,
        availabilityZone,
        cidrBlock: cidrSubnet(network.cidr, 3, zone),
        mapPublicIpOnLaunch: false,
        tags: { Name: `${name}-private-${zone}`, 'kubernetes.io/role/internal-elb': '1' },
      });
      const privateRoutes = new RouteTable(this, `private-${zone}-routes`, {
        vpcId: vpc.id,
        route: [{ cidrBlock: '0.0.0.0/0', natGatewayId: nat.id }],
        tags: { Name: `${name}-private-${zone}` },
      });
      new RouteTableAssociation(this, `private-${zone}-association`, {
        subnetId: privateSubnet.id,
        routeTableId: privateRoutes.id,
      });
      this.privateSubnetIds.push(privateSubnet.id);
    }
    this.vpcId = vpc.id;
  }
}
