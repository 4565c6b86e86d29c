import { Fn, Op, TerraformOutput, TerraformVariable } from 'cdktf';
import type { Construct } from 'constructs';
import type { DataPlaneConfig } from '../config.ts';
import { type AllotRelease, generatedSecret } from './allot-release.ts';
import { inClusterNatsUrl } from './chart-values.ts';

/** What a data-plane stack exposes, whatever the cloud: other stacks read these public fields. */
export interface DataPlane {
  readonly config: DataPlaneConfig;
  readonly clusterName: string;
  /** Private address of the managed PostgreSQL; undefined when no enabled component needs it. */
  readonly databaseHost: string | undefined;
  /** Private address of the managed Redis; undefined when no enabled component needs it. */
  readonly redisHost: string | undefined;
  readonly release: AllotRelease;
}

/** The keys every data plane generates or takes as input, before the cloud's backends add theirs. */
export interface DataPlaneCredentials {
  readonly apiKey: string;
  readonly natsUrl: string;
  /** The tenant's hub password, from the vendor: a sensitive Terraform variable, never in a file. */
  readonly uplinkPassword: string | undefined;
}

export function dataPlaneCredentials(scope: Construct, config: DataPlaneConfig): DataPlaneCredentials {
  const apiKey = generatedSecret(scope, 'api-key', 40);
  const uplinkPassword = config.components.uplink ? uplinkPasswordVariable(scope) : undefined;
  return {
    apiKey: apiKey.result,
    natsUrl: config.nats.mode === 'external' ? config.nats.url : inClusterNatsUrl(config),
    uplinkPassword: uplinkPassword?.stringValue,
  };
}

function uplinkPasswordVariable(scope: Construct): TerraformVariable {
  const variable = new TerraformVariable(scope, 'uplink_password', {
    type: 'string',
    sensitive: true,
    description: "The tenant's password on the control plane's hub (ALLOT_UPLINK_PASSWORD)",
  });
  variable.addValidation({
    condition: Op.gte(Fn.lengthOf(variable.value), 16),
    errorMessage: 'uplink_password must be at least 16 characters.',
  });
  return variable;
}

/**
 * The Secret's keys, named as the deploy contract names them: DATABASE_URL and REDIS_URL only
 * when the stack made that backend (it does when an enabled component needs it).
 */
export function dataPlaneSecret(
  credentials: DataPlaneCredentials,
  backends: { databaseUrl: string | undefined; redisUrl: string | undefined; extra?: Record<string, string> },
): Record<string, string> {
  const secret: Record<string, string> = {
    NATS_URL: credentials.natsUrl,
    ALLOT_API_KEY: credentials.apiKey,
  };
  if (backends.databaseUrl !== undefined) secret.DATABASE_URL = backends.databaseUrl;
  if (backends.redisUrl !== undefined) secret.REDIS_URL = backends.redisUrl;
  if (credentials.uplinkPassword !== undefined) secret.ALLOT_UPLINK_PASSWORD = credentials.uplinkPassword;
  return { ...secret, ...backends.extra };
}

/** Outputs an operator needs after `terraform apply`. */
export function dataPlaneOutputs(
  scope: Construct,
  plane: DataPlane,
  credentials: DataPlaneCredentials,
): void {
  new TerraformOutput(scope, 'cluster_name', { value: plane.clusterName });
  new TerraformOutput(scope, 'namespace', { value: plane.config.namespace });
  if (plane.databaseHost !== undefined)
    new TerraformOutput(scope, 'database_host', { value: plane.databaseHost });
  if (plane.redisHost !== undefined) new TerraformOutput(scope, 'redis_host', { value: plane.redisHost });
  new TerraformOutput(scope, 'api_key', {
    value: credentials.apiKey,
    sensitive: true,
    description: 'The admin API key (ALLOT_API_KEY): terraform output -raw api_key',
  });
}
