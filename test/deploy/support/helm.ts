/**
 * The real Helm (v4, fetched by scripts/helm.sh) on a copy of charts/, for the chart tests
 * (test/deploy/charts.test.ts) and the infra cross-check (test/deploy/infra-charts.test.ts).
 *
 * `ChartWorkspace.create()` copies the charts to a temp dir and lays their dependencies out
 * there: each service chart gets allot-common with `helm dependency build` (file://, offline),
 * and the umbrella gets the service charts plus a PLACEHOLDER for the official NATS chart, which
 * cannot be downloaded in this sandbox. The placeholder is a Chart.yaml named nats with a 1.x
 * version (so Helm's dependency check passes) and one marker ConfigMap of ours holding the
 * values the umbrella hands the NATS chart (`values.json`), so that the tests can see
 * `nats.enabled` switch the dependency on and off and what the NATS chart would be told. None
 * of the upstream chart is copied.
 */
import { execFile } from 'node:child_process';
import { cp, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { ServiceMonitor } from '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/ServiceMonitor';
import { Deployment } from 'kubernetes-models/apps/v1/Deployment';
import { StatefulSet } from 'kubernetes-models/apps/v1/StatefulSet';
import { HorizontalPodAutoscaler } from 'kubernetes-models/autoscaling/v2/HorizontalPodAutoscaler';
import { Job } from 'kubernetes-models/batch/v1/Job';
import { NetworkPolicy } from 'kubernetes-models/networking.k8s.io/v1/NetworkPolicy';
import { PodDisruptionBudget } from 'kubernetes-models/policy/v1/PodDisruptionBudget';
import { ConfigMap } from 'kubernetes-models/v1/ConfigMap';
import { Pod } from 'kubernetes-models/v1/Pod';
import { Secret } from 'kubernetes-models/v1/Secret';
import { Service } from 'kubernetes-models/v1/Service';
import { ServiceAccount } from 'kubernetes-models/v1/ServiceAccount';
import { parseAllDocuments } from 'yaml';

export const execFileAsync = promisify(execFile);
export const ROOT = join(import.meta.dirname, '../../..');
const HELM_SH = join(ROOT, 'scripts/helm.sh');

export const NAME = 'app.kubernetes.io/name';
export const COMPONENT = 'app.kubernetes.io/component';

/** Chart directory → the umbrella's key for it. */
export const SERVICE_CHARTS = {
  gate: 'gate',
  credits: 'credits',
  metering: 'metering',
  governance: 'governance',
  'control-plane': 'controlPlane',
  mcp: 'mcp',
  uplink: 'uplink',
} as const;

export interface SecretKeyRef {
  name: string;
  key: string;
  optional?: boolean;
}
export interface EnvVar {
  name: string;
  value?: string;
  valueFrom?: { secretKeyRef?: SecretKeyRef };
}
export interface Container {
  name: string;
  image: string;
  args?: string[];
  command?: string[];
  env?: EnvVar[];
  envFrom?: Array<{ configMapRef?: { name: string }; secretRef?: { name: string } }>;
  ports?: Array<{ name?: string; containerPort: number }>;
  resources?: { requests?: Record<string, unknown>; limits?: Record<string, unknown> };
  securityContext?: {
    runAsNonRoot?: boolean;
    runAsUser?: number;
    readOnlyRootFilesystem?: boolean;
    allowPrivilegeEscalation?: boolean;
    capabilities?: { drop?: string[] };
    seccompProfile?: { type: string };
  };
  startupProbe?: { httpGet?: { path: string; port: string } };
  livenessProbe?: { httpGet?: { path: string; port: string } };
  readinessProbe?: { httpGet?: { path: string; port: string } };
  volumeMounts?: Array<{ name: string; mountPath: string }>;
}
export interface PodSpec {
  containers: Container[];
  initContainers?: Container[];
  automountServiceAccountToken?: boolean;
  terminationGracePeriodSeconds?: number;
  securityContext?: { runAsNonRoot?: boolean; seccompProfile?: { type: string } };
  topologySpreadConstraints?: Array<Record<string, unknown>>;
  volumes?: Array<{ name: string; emptyDir?: unknown }>;
}
export interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  // Only read through the typed helpers below.
  spec?: Record<string, unknown>;
  data?: Record<string, string>;
}

/** Every kind the charts may render, with its schema; anything else fails the tests. */
type Model = new (data: never) => { validate(): void };
export const MODELS: Record<string, Model> = {
  'v1/ConfigMap': ConfigMap,
  'v1/Secret': Secret,
  'v1/Service': Service,
  'v1/ServiceAccount': ServiceAccount,
  'v1/Pod': Pod,
  'apps/v1/Deployment': Deployment,
  'apps/v1/StatefulSet': StatefulSet,
  'batch/v1/Job': Job,
  'autoscaling/v2/HorizontalPodAutoscaler': HorizontalPodAutoscaler,
  'policy/v1/PodDisruptionBudget': PodDisruptionBudget,
  'networking.k8s.io/v1/NetworkPolicy': NetworkPolicy,
  'monitoring.coreos.com/v1/ServiceMonitor': ServiceMonitor,
};

/** Why an object is not one the charts may render ("" when it is valid against its schema). */
export function schemaError(object: K8sObject): string {
  const model = MODELS[`${object.apiVersion}/${object.kind}`];
  if (!model) return `unexpected ${object.apiVersion} ${object.kind}`;
  try {
    new model(object as never).validate();
    return '';
  } catch (error) {
    return String(error);
  }
}

export function parseObjects(manifest: string): K8sObject[] {
  return parseAllDocuments(manifest)
    .map((document) => document.toJS() as K8sObject | null)
    .filter((object): object is K8sObject => object !== null && typeof object === 'object');
}

export const identity = (object: K8sObject) => `${object.kind}/${object.metadata.name}`;
export const labelOf = (object: K8sObject, label: string) => object.metadata.labels?.[label];
export const annotation = (object: K8sObject, key: string) => object.metadata.annotations?.[key];
export const spec = <T>(object: K8sObject) => object.spec as T;

export function podSpecOf(object: K8sObject): PodSpec | undefined {
  if (object.kind === 'Pod') return spec<PodSpec>(object);
  if (['Deployment', 'StatefulSet', 'Job'].includes(object.kind)) {
    return spec<{ template: { spec: PodSpec } }>(object).template.spec;
  }
  return undefined;
}

export function containersOf(object: K8sObject): Container[] {
  const pod = podSpecOf(object);
  return pod ? [...(pod.initContainers ?? []), ...pod.containers] : [];
}

/** The Secret keys a container reads, with the Secret's name, in order. */
export const secretRefsOf = (container: Container): SecretKeyRef[] =>
  (container.env ?? []).flatMap((env) => (env.valueFrom?.secretKeyRef ? [env.valueFrom.secretKeyRef] : []));

/** Secret keys a container reads, in order. */
export const secretKeysOf = (container: Container) => secretRefsOf(container).map((ref) => ref.key);

/** The values the umbrella handed the NATS chart, from the placeholder's marker ConfigMap. */
export function natsChartValues(objects: K8sObject[]): Record<string, unknown> | undefined {
  const marker = objects.find((o) => o.kind === 'ConfigMap' && labelOf(o, NAME) === 'nats');
  const json = marker?.data?.['values.json'];
  return json === undefined ? undefined : (JSON.parse(json) as Record<string, unknown>);
}

export interface HelmResult {
  ok: boolean;
  stdout: string;
  stderr: string;
}

/** At most one Helm per CPU at a time (per test file): enough to overlap, not enough to thrash. */
const slots = Math.max(2, availableParallelism());
let running = 0;
const waiting: Array<() => void> = [];

export interface RenderOptions {
  sets?: string[];
  release?: string;
  namespace?: string;
}

/** A temp copy of charts/ with every dependency in place, and the Helm that runs on it. */
export class ChartWorkspace {
  readonly dir: string;
  readonly #env: NodeJS.ProcessEnv;

  private constructor(dir: string) {
    this.dir = dir;
    // Helm's own cache and config in the temp dir: the tests read no repositories of the user's.
    this.#env = {
      ...process.env,
      HELM_CACHE_HOME: join(dir, 'helm/cache'),
      HELM_CONFIG_HOME: join(dir, 'helm/config'),
      HELM_DATA_HOME: join(dir, 'helm/data'),
    };
  }

  static async create(): Promise<ChartWorkspace> {
    const workspace = new ChartWorkspace(await mkdtemp(join(tmpdir(), 'allot-charts-')));
    const version = await workspace.helm(['version', '--short']); // downloads Helm on first use
    if (!version.ok) throw new Error(`scripts/helm.sh failed: ${version.stderr}`);
    if (!version.stdout.startsWith('v4.')) throw new Error(`expected Helm v4, got ${version.stdout}`);

    await cp(join(ROOT, 'charts'), join(workspace.dir, 'charts'), { recursive: true });
    const built = await Promise.all(
      Object.keys(SERVICE_CHARTS).map((chart) =>
        workspace.helm(['dependency', 'build', workspace.chartDir(chart)]),
      ),
    );
    for (const result of built) if (!result.ok) throw new Error(result.stderr);

    const vendored = join(workspace.umbrellaDir, 'charts');
    await mkdir(vendored, { recursive: true });
    for (const chart of ['common', ...Object.keys(SERVICE_CHARTS)]) {
      await cp(workspace.chartDir(chart), join(vendored, chart), { recursive: true });
    }
    // PLACEHOLDER for the official NATS chart (see the header comment): not its code.
    await mkdir(join(vendored, 'nats/templates'), { recursive: true });
    await writeFile(
      join(vendored, 'nats/Chart.yaml'),
      'apiVersion: v2\nname: nats\nversion: 1.0.0\ndescription: test placeholder for the official NATS chart\n',
    );
    await writeFile(
      join(vendored, 'nats/templates/placeholder.yaml'),
      [
        'apiVersion: v1',
        'kind: ConfigMap',
        'metadata:',
        '  name: {{ .Release.Name }}-nats-placeholder',
        '  labels:',
        '    app.kubernetes.io/name: nats',
        '    app.kubernetes.io/instance: {{ .Release.Name }}',
        'data:',
        '  values.json: {{ toJson .Values | quote }}',
        '',
      ].join('\n'),
    );
    return workspace;
  }

  chartDir(chart: string): string {
    return join(this.dir, 'charts', chart);
  }

  get umbrellaDir(): string {
    return this.chartDir('allot');
  }

  async helm(args: string[]): Promise<HelmResult> {
    if (running >= slots) await new Promise<void>((resolve) => waiting.push(resolve));
    running++;
    try {
      const { stdout, stderr } = await execFileAsync('bash', [HELM_SH, ...args], {
        env: this.#env,
        maxBuffer: 64 * 1024 * 1024,
      });
      return { ok: true, stdout, stderr };
    } catch (error) {
      const failed = error as { stdout?: string; stderr?: string };
      return { ok: false, stdout: failed.stdout ?? '', stderr: failed.stderr ?? String(error) };
    } finally {
      running--;
      waiting.shift()?.();
    }
  }

  /** `helm template` of a chart of the workspace; throws with Helm's error when it fails. */
  async render(chart: string, valueFiles: string[], options: RenderOptions = {}): Promise<K8sObject[]> {
    const release = options.release ?? 'allot';
    const args = ['template', release, this.chartDir(chart), '--namespace', options.namespace ?? 'allot'];
    for (const file of valueFiles) args.push('-f', file);
    for (const set of options.sets ?? []) args.push('--set', set);
    const result = await this.helm(args);
    if (!result.ok) throw new Error(`helm ${args.join(' ')}\n${result.stderr}`);
    return parseObjects(result.stdout);
  }

  /** A file in the workspace, e.g. values the test wrote. */
  async writeFile(name: string, content: string): Promise<string> {
    const file = join(this.dir, name);
    await writeFile(file, content);
    return file;
  }

  async dispose(): Promise<void> {
    await rm(this.dir, { recursive: true, force: true });
  }
}
