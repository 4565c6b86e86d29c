import { KmsAlias } from '@cdktf/provider-aws/lib/kms-alias/index.js';
import { KmsKey } from '@cdktf/provider-aws/lib/kms-key/index.js';
import { SecretsmanagerSecret } from '@cdktf/provider-aws/lib/secretsmanager-secret/index.js';
import { SecretsmanagerSecretVersion } from '@cdktf/provider-aws/lib/secretsmanager-secret-version/index.js';
import { Fn } from 'cdktf';
import type { Construct } from 'constructs';

/** One customer-managed key per stack, rotated yearly: RDS, ElastiCache, EKS Secrets and Secrets Manager use it. */
export function stackKey(scope: Construct, name: string): KmsKey {
  const key = new KmsKey(scope, 'kms-key', {
    description: `${name}: Allot data at rest`,
    enableKeyRotation: true,
    deletionWindowInDays: 30,
  });
  new KmsAlias(scope, 'kms-alias', { name: `alias/${name}`, targetKeyId: key.keyId });
  return key;
}

/**
 * The Secrets Manager secret holding the same keys as the Kubernetes Secret (the deploy
 * contract's names), as JSON: the record operators read and rotate from.
 */
export function connectionSecret(
  scope: Construct,
  props: { name: string; kmsKeyArn: string; values: Readonly<Record<string, string>> },
): SecretsmanagerSecret {
  const secret = new SecretsmanagerSecret(scope, 'secret', {
    name: props.name,
    description: 'Allot connection URLs and keys (the Kubernetes Secret is written from these values)',
    kmsKeyId: props.kmsKeyArn,
    recoveryWindowInDays: 7,
  });
  new SecretsmanagerSecretVersion(scope, 'secret-version', {
    secretId: secret.id,
    secretString: Fn.jsonencode(props.values),
  });
  return secret;
}
