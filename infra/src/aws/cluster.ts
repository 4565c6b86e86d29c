import { DataAwsEksCluster } from '@cdktf/provider-aws/lib/data-aws-eks-cluster/index.js';
import { EksAddon } from '@cdktf/provider-aws/lib/eks-addon/index.js';
import { EksCluster } from '@cdktf/provider-aws/lib/eks-cluster/index.js';
import { EksNodeGroup } from '@cdktf/provider-aws/lib/eks-node-group/index.js';
import { IamRole } from '@cdktf/provider-aws/lib/iam-role/index.js';
import { IamRolePolicy } from '@cdktf/provider-aws/lib/iam-role-policy/index.js';
import { IamRolePolicyAttachment } from '@cdktf/provider-aws/lib/iam-role-policy-attachment/index.js';
import { StorageClassV1 } from '@cdktf/provider-kubernetes/lib/storage-class-v1/index.js';
import { Fn, type ITerraformDependable } from 'cdktf';
import { Construct } from 'constructs';
import type { ClusterConfig } from '../config.ts';
import { type ClusterAccess, clusterProviders } from '../stacks/allot-release.ts';
import type { AwsNetwork } from './network.ts';

const DEFAULT_VERSION = '1.33';
const DEFAULT_NODE_TYPE = 'm6i.large';

export interface AwsClusterProps {
  readonly name: string;
  readonly region: string;
  readonly cluster: ClusterConfig;
  readonly network: AwsNetwork;
  /** Encrypts Kubernetes Secrets in etcd (envelope encryption) on a cluster this stack creates. */
  readonly kmsKeyArn: string;
  readonly deletionProtection: boolean;
}

/**
 * An EKS cluster with a managed node group in the private subnets, or one that exists. Either way
 * it exposes how Terraform reaches it and which security groups its nodes carry, for the
 * databases to admit.
 */
export class AwsCluster extends Construct {
  readonly name: string;
  readonly access: ClusterAccess;
  /** The security groups the databases accept connections from. */
  readonly nodeSecurityGroupIds: string[];
  /** What the chart needs in place on a created cluster: the node group and the storage add-on. */
  readonly ready: readonly ITerraformDependable[];
  readonly created: boolean;

  constructor(scope: Construct, id: string, props: AwsClusterProps) {
    super(scope, id);
    const { cluster, region } = props;
    if (cluster.mode === 'existing') {
      const existing = new DataAwsEksCluster(this, 'cluster', { name: cluster.name });
      this.name = cluster.name;
      this.access = access(
        existing.endpoint,
        existing.certificateAuthority.get(0).data,
        cluster.name,
        region,
      );
      this.nodeSecurityGroupIds = [
        existing.vpcConfig.get(0).clusterSecurityGroupId,
        ...cluster.nodeSecurityGroupIds,
      ];
      this.created = false;
      this.ready = [];
      return;
    }
    const clusterRole = serviceRole(this, 'cluster-role', `${props.name}-eks-cluster`, 'eks.amazonaws.com', [
      'AmazonEKSClusterPolicy',
    ]);
    // Envelope encryption of Secrets: the control plane uses the key through this role.
    const clusterKeyUse = new IamRolePolicy(this, 'cluster-role-kms', {
      role: clusterRole.role.name,
      name: 'secrets-encryption',
      policy: JSON.stringify({
        Version: '2012-10-17',
        Statement: [
          {
            Effect: 'Allow',
            Action: ['kms:Encrypt', 'kms:Decrypt', 'kms:ListGrants', 'kms:DescribeKey'],
            Resource: props.kmsKeyArn,
          },
        ],
      }),
    });
    const eks = new EksCluster(this, 'cluster', {
      name: props.name,
      version: cluster.version ?? DEFAULT_VERSION,
      roleArn: clusterRole.role.arn,
      vpcConfig: {
        subnetIds: props.network.privateSubnetIds,
        endpointPrivateAccess: true,
        // Terraform installs the chart from outside the VPC; the CIDRs limit who may try.
        endpointPublicAccess: true,
        publicAccessCidrs: [...cluster.apiAllowedCidrs],
      },
      accessConfig: { authenticationMode: 'API', bootstrapClusterCreatorAdminPermissions: true },
      encryptionConfig: { provider: { keyArn: props.kmsKeyArn }, resources: ['secrets'] },
      enabledClusterLogTypes: ['api', 'audit', 'authenticator'],
      deletionProtection: props.deletionProtection,
      dependsOn: [...clusterRole.attachments, clusterKeyUse],
    });
    const nodeRole = serviceRole(this, 'node-role', `${props.name}-eks-node`, 'ec2.amazonaws.com', [
      'AmazonEKSWorkerNodePolicy',
      'AmazonEKS_CNI_Policy',
      'AmazonEC2ContainerRegistryReadOnly',
    ]);
    // The chart ships a NetworkPolicy per process; the VPC CNI enforces them only when told to.
    const cni = new EksAddon(this, 'vpc-cni', {
      clusterName: eks.name,
      addonName: 'vpc-cni',
      configurationValues: JSON.stringify({ enableNetworkPolicy: 'true' }),
      resolveConflictsOnCreate: 'OVERWRITE',
    });
    const nodes = new EksNodeGroup(this, 'nodes', {
      clusterName: eks.name,
      nodeGroupName: `${props.name}-nodes`,
      nodeRoleArn: nodeRole.role.arn,
      subnetIds: props.network.privateSubnetIds,
      instanceTypes: [cluster.nodeType ?? DEFAULT_NODE_TYPE],
      amiType: 'AL2023_x86_64_STANDARD',
      scalingConfig: { minSize: cluster.minNodes, desiredSize: cluster.minNodes, maxSize: cluster.maxNodes },
      updateConfig: { maxUnavailable: 1 },
      dependsOn: [...nodeRole.attachments, cni],
    });
    // NATS JetStream keeps its streams on volumes: the EBS CSI driver provisions them, with
    // credentials through EKS Pod Identity rather than the node role.
    const podIdentity = new EksAddon(this, 'pod-identity-agent', {
      clusterName: eks.name,
      addonName: 'eks-pod-identity-agent',
      dependsOn: [nodes],
    });
    const ebsRole = serviceRole(this, 'ebs-csi-role', `${props.name}-ebs-csi`, 'pods.eks.amazonaws.com', [
      'service-role/AmazonEBSCSIDriverPolicy',
    ]);
    const ebs = new EksAddon(this, 'ebs-csi-driver', {
      clusterName: eks.name,
      addonName: 'aws-ebs-csi-driver',
      podIdentityAssociation: [{ roleArn: ebsRole.role.arn, serviceAccount: 'ebs-csi-controller-sa' }],
      dependsOn: [nodes, podIdentity, ...ebsRole.attachments],
    });
    this.name = eks.name;
    this.access = access(eks.endpoint, eks.certificateAuthority.get(0).data, eks.name, region);
    this.nodeSecurityGroupIds = [eks.vpcConfig.clusterSecurityGroupId];
    this.ready = [nodes, ebs];
    this.created = true;
  }

  /**
   * The Kubernetes and Helm providers for this cluster. A created cluster also gets an encrypted
   * gp3 default StorageClass: EKS has no default one since Kubernetes 1.30.
   */
  providers(scope: Construct): ReturnType<typeof clusterProviders> & { ready: ITerraformDependable[] } {
    const providers = clusterProviders(scope, this.access);
    if (!this.created) return { ...providers, ready: [] };
    const storage = new StorageClassV1(scope, 'gp3-storage-class', {
      provider: providers.kubernetes,
      metadata: { name: 'gp3', annotations: { 'storageclass.kubernetes.io/is-default-class': 'true' } },
      storageProvisioner: 'ebs.csi.aws.com',
      volumeBindingMode: 'WaitForFirstConsumer',
      allowVolumeExpansion: true,
      reclaimPolicy: 'Retain',
      parameters: { type: 'gp3', encrypted: 'true' },
      dependsOn: [...this.ready],
    });
    return { ...providers, ready: [...this.ready, storage] };
  }
}

/** Terraform authenticates with `aws eks get-token`: a token that never lands in the state. */
function access(endpoint: string, caData: string, name: string, region: string): ClusterAccess {
  return {
    host: endpoint,
    caCertificate: Fn.base64decode(caData),
    auth: {
      exec: { command: 'aws', args: ['eks', 'get-token', '--cluster-name', name, '--region', region] },
    },
  };
}

/** An IAM role that one AWS service principal may assume, with AWS-managed policies attached. */
export function serviceRole(
  scope: Construct,
  id: string,
  name: string,
  service: string,
  managedPolicies: readonly string[],
): { role: IamRole; attachments: IamRolePolicyAttachment[] } {
  // Pod Identity tags the session, so its trust needs sts:TagSession as well.
  const actions =
    service === 'pods.eks.amazonaws.com' ? ['sts:AssumeRole', 'sts:TagSession'] : 'sts:AssumeRole';
  const role = new IamRole(scope, id, {
    name,
    assumeRolePolicy: JSON.stringify({
      Version: '2012-10-17',
      Statement: [{ Effect: 'Allow', Principal: { Service: service }, Action: actions }],
    }),
  });
  const attachments = managedPolicies.map(
    (policy) =>
      new IamRolePolicyAttachment(scope, `${id}-${policy.replace(/^.*\//, '')}`, {
        role: role.name,
        policyArn: `arn:aws:iam::aws:policy/${policy}`,
      }),
  );
  return { role, attachments };
}
