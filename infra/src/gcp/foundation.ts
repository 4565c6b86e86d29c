import { GoogleProvider } from '@cdktf/provider-google/lib/provider/index.js';
import { RandomProvider } from '@cdktf/provider-random/lib/provider/index.js';
import type { TerraformStack } from 'cdktf';
import type { DeploymentConfig, GcpSettings } from '../config.ts';
import { stateBackend } from '../stacks/state.ts';
import { GcpCluster } from './cluster.ts';
import { GcpNetwork } from './network.ts';

export interface GcpFoundation {
  readonly network: GcpNetwork;
  readonly cluster: GcpCluster;
}

/**
 * What every GCP stack stands on: its state backend, the Google provider labelling every resource
 * with the deployment and the plane (`allot-plane`), the random provider, and the network and
 * private GKE cluster (created, or the existing ones).
 */
export function gcpFoundation(
  stack: TerraformStack,
  config: DeploymentConfig & GcpSettings,
  plane: 'control' | 'data',
): GcpFoundation {
  stateBackend(stack, 'gcp', config, stack.node.id);
  const google = new GoogleProvider(stack, 'google', { project: config.project, region: config.region });
  // cdktf snake-cases the keys of a provider's maps; an override keeps the label keys as written.
  google.addOverride('default_labels', {
    'allot-deployment': config.name,
    'allot-plane': plane,
    ...config.tags,
  });
  new RandomProvider(stack, 'random');

  const network = new GcpNetwork(stack, 'network', {
    name: config.name,
    project: config.project,
    region: config.region,
    network: config.network,
  });
  const cluster = new GcpCluster(stack, 'cluster', {
    name: config.name,
    project: config.project,
    region: config.region,
    cluster: config.cluster,
    network,
    deletionProtection: config.deletionProtection,
  });
  return { network, cluster };
}
