import type { KmsKey } from '@cdktf/provider-aws/lib/kms-key/index.js';
import { AwsProvider } from '@cdktf/provider-aws/lib/provider/index.js';
import { RandomProvider } from '@cdktf/provider-random/lib/provider/index.js';
import type { TerraformStack } from 'cdktf';
import type { DeploymentConfig } from '../config.ts';
import { stateBackend } from '../stacks/state.ts';
import { AwsCluster } from './cluster.ts';
import { AwsNetwork } from './network.ts';
import { stackKey } from './secret.ts';

export interface AwsFoundation {
  /** The stack's KMS key: RDS, ElastiCache, EKS Secrets and Secrets Manager use it. */
  readonly key: KmsKey;
  readonly network: AwsNetwork;
  readonly cluster: AwsCluster;
}

/**
 * What every AWS stack stands on: its state backend, the AWS provider tagging every resource with
 * the deployment and the plane (`allot:plane`), the random provider, the stack's KMS key, and the
 * VPC and EKS cluster (created, or the existing ones).
 */
export function awsFoundation(
  stack: TerraformStack,
  config: DeploymentConfig,
  plane: 'control' | 'data',
): AwsFoundation {
  stateBackend(stack, 'aws', config, stack.node.id);
  const aws = new AwsProvider(stack, 'aws', { region: config.region });
  // cdktf snake-cases the keys of a provider's maps; an override keeps the tag keys as written.
  aws.addOverride('default_tags', [
    { tags: { 'allot:deployment': config.name, 'allot:plane': plane, ...config.tags } },
  ]);
  new RandomProvider(stack, 'random');

  const key = stackKey(stack, config.name);
  const network = new AwsNetwork(stack, 'network', { name: config.name, network: config.network });
  const cluster = new AwsCluster(stack, 'cluster', {
    name: config.name,
    region: config.region,
    cluster: config.cluster,
    network,
    kmsKeyArn: key.arn,
    deletionProtection: config.deletionProtection,
  });
  return { key, network, cluster };
}
