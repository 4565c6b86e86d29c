import { SecretManagerSecret } from '@cdktf/provider-google/lib/secret-manager-secret/index.js';
import { SecretManagerSecretVersion } from '@cdktf/provider-google/lib/secret-manager-secret-version/index.js';
import { Fn } from 'cdktf';
import type { Construct } from 'constructs';

/**
 * The Secret Manager secret holding the same keys as the Kubernetes Secret (the deploy
 * contract's names), as JSON: the record operators read and rotate from.
 */
export function connectionSecret(
  scope: Construct,
  props: { secretId: string; values: Readonly<Record<string, string>> },
): SecretManagerSecret {
  const secret = new SecretManagerSecret(scope, 'secret', {
    secretId: props.secretId,
    replication: { auto: {} },
  });
  new SecretManagerSecretVersion(scope, 'secret-version', {
    secret: secret.id,
    secretData: Fn.jsonencode(props.values),
  });
  return secret;
}
