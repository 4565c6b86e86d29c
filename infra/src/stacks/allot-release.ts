import { HelmProvider } from '@cdktf/provider-helm/lib/provider/index.js';
import { Release } from '@cdktf/provider-helm/lib/release/index.js';
import { NamespaceV1 } from '@cdktf/provider-kubernetes/lib/namespace-v1/index.js';
import { KubernetesProvider } from '@cdktf/provider-kubernetes/lib/provider/index.js';
import { SecretV1 } from '@cdktf/provider-kubernetes/lib/secret-v1/index.js';
import { Password } from '@cdktf/provider-random/lib/password/index.js';
import type { ITerraformDependable } from 'cdktf';
import { Construct } from 'constructs';
import type { DeploymentConfig } from '../config.ts';
import type { ChartValues } from './chart-values.ts';

/** How Terraform reaches a cluster's API: its endpoint, its CA, and a token or an exec plugin. */
export interface ClusterAccess {
  readonly host: string;
  /** PEM, already decoded. */
  readonly caCertificate: string;
  readonly auth:
    | { readonly token: string }
    | { readonly exec: { readonly command: string; readonly args: readonly string[] } };
}

/** The Kubernetes and Helm providers for one cluster, both with the same credentials. */
export function clusterProviders(
  scope: Construct,
  access: ClusterAccess,
): { kubernetes: KubernetesProvider; helm: HelmProvider } {
  const apiVersion = 'client.authentication.k8s.io/v1beta1';
  const auth =
    'token' in access.auth
      ? { token: access.auth.token }
      : { exec: { apiVersion, command: access.auth.exec.command, args: [...access.auth.exec.args] } };
  const kubernetes = new KubernetesProvider(scope, 'kubernetes', {
    host: access.host,
    clusterCaCertificate: access.caCertificate,
    ...('token' in auth ? { token: auth.token } : { exec: [auth.exec] }),
  });
  const helm = new HelmProvider(scope, 'helm', {
    kubernetes: { host: access.host, clusterCaCertificate: access.caCertificate, ...auth },
  });
  return { kubernetes, helm };
}

/** A random secret for the Secret: letters and digits only, so it needs no escaping inside a URL. */
export function generatedSecret(scope: Construct, id: string, length: number): Password {
  return new Password(scope, id, { length, special: false });
}

/**
 * The namespace the chart installs into. The images run as non-root on a read-only filesystem;
 * Pod Security "baseline" is enforced and "restricted" reported.
 */
export function allotNamespace(
  scope: Construct,
  config: DeploymentConfig,
  kubernetes: KubernetesProvider,
): NamespaceV1 {
  return new NamespaceV1(scope, 'allot-namespace', {
    provider: kubernetes,
    metadata: {
      name: config.namespace,
      labels: {
        'pod-security.kubernetes.io/enforce': 'baseline',
        'pod-security.kubernetes.io/warn': 'restricted',
        'pod-security.kubernetes.io/audit': 'restricted',
      },
    },
  });
}

export interface AllotReleaseProps {
  readonly config: DeploymentConfig;
  readonly providers: { kubernetes: KubernetesProvider; helm: HelmProvider };
  readonly namespace: NamespaceV1;
  /** The Secret's keys (the deploy contract's names) and values. */
  readonly secret: Readonly<Record<string, string>>;
  readonly values: ChartValues;
  /** What must exist before the chart installs (node pools, storage classes, databases). */
  readonly dependsOn: readonly ITerraformDependable[];
}

/** The Secret the chart reads (`global.existingSecret`) and the release of the umbrella chart. */
export class AllotRelease extends Construct {
  readonly secret: SecretV1;
  readonly release: Release;

  constructor(scope: Construct, id: string, props: AllotReleaseProps) {
    super(scope, id);
    const { config, providers, namespace } = props;
    this.secret = new SecretV1(this, 'secret', {
      provider: providers.kubernetes,
      metadata: { name: config.secretName, namespace: namespace.metadata.name },
      type: 'Opaque',
      data: { ...props.secret },
    });
    this.release = new Release(this, 'release', {
      provider: providers.helm,
      name: config.releaseName,
      namespace: namespace.metadata.name,
      chart: config.chartPath,
      // The subcharts are built beforehand (`helm dependency build`, docs/install-*.md), so an
      // apply never fetches from a chart repository.
      dependencyUpdate: false,
      values: [JSON.stringify(props.values, null, 2)],
      atomic: true,
      cleanupOnFail: true,
      wait: true,
      waitForJobs: true,
      timeout: 900,
      dependsOn: [this.secret, ...props.dependsOn],
    });
  }
}
