import { SecurityGroup } from '@cdktf/provider-aws/lib/security-group/index.js';
import { VpcSecurityGroupIngressRule } from '@cdktf/provider-aws/lib/vpc-security-group-ingress-rule/index.js';
import type { Construct } from 'constructs';

/** A security group that admits one TCP port from the given security groups and nothing else. */
export function privateSecurityGroup(
  scope: Construct,
  props: { name: string; vpcId: string; port: number; from: readonly string[] },
): SecurityGroup {
  const group = new SecurityGroup(scope, 'security-group', {
    name: props.name,
    description: `${props.name}: port ${props.port} from the cluster only`,
    vpcId: props.vpcId,
    tags: { Name: props.name },
  });
  props.from.forEach((source, index) => {
    new VpcSecurityGroupIngressRule(scope, `ingress-${index}`, {
      securityGroupId: group.id,
      referencedSecurityGroupId: source,
      ipProtocol: 'tcp',
      fromPort: props.port,
      toPort: props.port,
    });
  });
  return group;
}
