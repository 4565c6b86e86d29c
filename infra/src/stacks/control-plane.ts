import type { NamespaceV1 } from '@cdktf/provider-kubernetes/lib/namespace-v1/index.js';
import type { KubernetesProvider } from '@cdktf/provider-kubernetes/lib/provider/index.js';
import { ServiceV1 } from '@cdktf/provider-kubernetes/lib/service-v1/index.js';
import { type ITerraformDependable, TerraformOutput } from 'cdktf';
import type { Construct } from 'constructs';
import type { ControlPlaneConfig } from '../config.ts';
import { AllotRelease, type AllotReleaseProps, generatedSecret } from './allot-release.ts';
import { controlPlaneValues, inClusterNatsUrl } from './chart-values.ts';

/** What a control-plane stack exposes, whatever the cloud. */
export interface ControlPlane {
  readonly config: ControlPlaneConfig;
  readonly clusterName: string;
  readonly databaseHost: string;
  /** Where tenants' uplinks dial (`uplink.url` of a data plane): `nats://<load balancer>:4222`. */
  readonly hubPublicUrl: string;
  readonly release: AllotRelease;
}

export const HUB_PORT = 4222;
/** The control plane's own NATS user on the hub (ALLOT_HUB_USER). */
export const HUB_USER = 'control-plane';

/**
 * The hub is the chart's NATS. Tenants reach it through this load balancer, which admits only
 * `hubAllowedCidrs`; each tenant's credentials are limited to its own subjects by the hub itself.
 */
export function hubService(
  scope: Construct,
  props: {
    config: ControlPlaneConfig;
    kubernetes: KubernetesProvider;
    namespace: NamespaceV1;
    annotations: Record<string, string>;
    loadBalancerIp?: string;
    /** The nodes: a load balancer needs targets. */
    dependsOn: readonly ITerraformDependable[];
  },
): ServiceV1 {
  const { config } = props;
  return new ServiceV1(scope, 'hub', {
    provider: props.kubernetes,
    metadata: {
      name: `${config.releaseName}-hub`,
      namespace: props.namespace.metadata.name,
      annotations: props.annotations,
    },
    spec: {
      type: 'LoadBalancer',
      // The NATS subchart's server pods (not its nats-box).
      selector: {
        'app.kubernetes.io/name': 'nats',
        'app.kubernetes.io/instance': config.releaseName,
        'app.kubernetes.io/component': 'nats',
      },
      port: [{ name: 'nats', port: HUB_PORT, targetPort: 'nats', protocol: 'TCP' }],
      loadBalancerSourceRanges: [...config.hub.allowedCidrs],
      externalTrafficPolicy: 'Local',
      ...(props.loadBalancerIp === undefined ? {} : { loadBalancerIp: props.loadBalancerIp }),
    },
    dependsOn: [...props.dependsOn],
  });
}

export interface ControlPlaneCredentials {
  readonly apiKey: string;
  readonly hubPassword: string;
}

export function controlPlaneCredentials(scope: Construct): ControlPlaneCredentials {
  return {
    apiKey: generatedSecret(scope, 'api-key', 40).result,
    hubPassword: generatedSecret(scope, 'hub-password', 32).result,
  };
}

/** The control plane's Secret keys, as the deploy contract names them. */
export function controlPlaneSecret(
  credentials: ControlPlaneCredentials,
  databaseUrl: string,
): Record<string, string> {
  return {
    DATABASE_URL: databaseUrl,
    ALLOT_HUB_PASSWORD: credentials.hubPassword,
    ALLOT_API_KEY: credentials.apiKey,
  };
}

/**
 * The chart with the control plane alone and its NATS as the hub, told the hub's addresses:
 * in-cluster for the control plane, `nats://<hubHost>:4222` (the load balancer's) for the tenants.
 */
export function controlPlaneRelease(
  scope: Construct,
  props: Omit<AllotReleaseProps, 'config' | 'values'> & { config: ControlPlaneConfig; hubHost: string },
): { hubPublicUrl: string; release: AllotRelease } {
  const { config, hubHost, ...rest } = props;
  const hubPublicUrl = `nats://${hubHost}:${HUB_PORT}`;
  const hub = { url: inClusterNatsUrl(config), user: HUB_USER, publicUrl: hubPublicUrl };
  const release = new AllotRelease(scope, 'allot', {
    ...rest,
    config,
    values: controlPlaneValues(config, hub),
  });
  return { hubPublicUrl, release };
}

export function controlPlaneOutputs(
  scope: Construct,
  plane: ControlPlane,
  credentials: ControlPlaneCredentials,
) {
  new TerraformOutput(scope, 'cluster_name', { value: plane.clusterName });
  new TerraformOutput(scope, 'namespace', { value: plane.config.namespace });
  new TerraformOutput(scope, 'database_host', { value: plane.databaseHost });
  new TerraformOutput(scope, 'hub_public_url', {
    value: plane.hubPublicUrl,
    description: "The data planes' uplink.url",
  });
  new TerraformOutput(scope, 'api_key', {
    value: credentials.apiKey,
    sensitive: true,
    description: 'The admin API key (ALLOT_API_KEY): terraform output -raw api_key',
  });
}
