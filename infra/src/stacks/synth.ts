import { join } from 'node:path';
import { App, type TerraformStack } from 'cdktf';
import {
  type Cloud,
  type ControlPlaneConfig,
  controlPlaneConfig,
  type DataPlaneConfig,
  dataPlaneConfig,
  type GcpSettings,
  gcpSettings,
  type Plane,
} from '../config.ts';
import { AwsControlPlaneStack } from './aws-control-plane.ts';
import { AwsDataPlaneStack } from './aws-data-plane.ts';
import { GcpControlPlaneStack } from './gcp-control-plane.ts';
import { GcpDataPlaneStack } from './gcp-data-plane.ts';

export interface SynthRequest {
  readonly cloud: Cloud;
  readonly plane: Plane;
  /** The JSON config (a file's content with the CLI's flags applied); validated here. */
  readonly input: unknown;
  readonly outdir: string;
}

export interface SynthResult {
  readonly stackName: string;
  /** The folder holding `cdk.tf.json`, where `terraform init` runs. */
  readonly stackDir: string;
  readonly config: DataPlaneConfig | ControlPlaneConfig;
}

/**
 * Validates the config, builds the one stack it describes (named after `config.name`) and writes
 * its Terraform JSON to `<outdir>/stacks/<name>/cdk.tf.json`.
 */
export function synthesize(request: SynthRequest): SynthResult {
  const app = new App({ outdir: request.outdir });
  const { stack, config } = buildStack(app, request.cloud, request.plane, request.input);
  app.synth();
  return { stackName: stack.node.id, stackDir: join(request.outdir, 'stacks', stack.node.id), config };
}

export function buildStack(
  app: App,
  cloud: Cloud,
  plane: Plane,
  input: unknown,
): { stack: TerraformStack; config: DataPlaneConfig | ControlPlaneConfig } {
  if (plane === 'data-plane') {
    const config = dataPlaneConfig(input, cloud);
    const stack =
      cloud === 'aws'
        ? new AwsDataPlaneStack(app, config.name, config)
        : new GcpDataPlaneStack(app, config.name, withProject(config, input));
    return { stack, config };
  }
  const config = controlPlaneConfig(input, cloud);
  const stack =
    cloud === 'aws'
      ? new AwsControlPlaneStack(app, config.name, config)
      : new GcpControlPlaneStack(app, config.name, withProject(config, input));
  return { stack, config };
}

function withProject<T>(config: T, input: unknown): T & GcpSettings {
  return { ...config, ...gcpSettings(input) };
}
