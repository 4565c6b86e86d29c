import { GcsBackend, LocalBackend, S3Backend, type TerraformStack } from 'cdktf';
import type { Cloud, DeploymentConfig } from '../config.ts';

/**
 * The state holds every generated password, so a shared deployment keeps it in an encrypted
 * bucket (`state.bucket`); without one it stays in `terraform.tfstate` beside the stack's JSON.
 */
export function stateBackend(
  stack: TerraformStack,
  cloud: Cloud,
  config: DeploymentConfig,
  name: string,
): void {
  if (config.state === undefined) {
    // Relative, so it lands where terraform runs (cdktf's default is an absolute path under the cwd of synth).
    new LocalBackend(stack, { path: 'terraform.tfstate' });
    return;
  }
  if (cloud === 'gcp') {
    new GcsBackend(stack, { bucket: config.state.bucket, prefix: name });
    return;
  }
  const backend = new S3Backend(stack, {
    bucket: config.state.bucket,
    key: `${name}/terraform.tfstate`,
    region: config.region,
    encrypt: true,
  });
  // S3-native locking (Terraform 1.10+): no DynamoDB table to create first.
  backend.addOverride('use_lockfile', true);
}
