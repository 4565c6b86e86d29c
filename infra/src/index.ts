/**
 * Allot's infrastructure as CDKTF stacks: a data plane and a control plane on AWS or GCP, behind
 * one typed config. `npm run infra -- synth …` (cli.ts) writes their Terraform JSON.
 */
export { AwsCluster } from './aws/cluster.ts';
export { AwsNetwork } from './aws/network.ts';
export { AwsPostgres } from './aws/postgres.ts';
export { AwsRedis } from './aws/redis.ts';
export {
  CLOUDS,
  type Cloud,
  type ClusterConfig,
  COMPONENTS,
  type Component,
  type Components,
  ConfigError,
  type ControlPlaneConfig,
  componentFlags,
  controlPlaneConfig,
  type DatabaseConfig,
  type DataPlaneConfig,
  type DeploymentConfig,
  dataPlaneConfig,
  enabledComponents,
  type GcpSettings,
  gcpSettings,
  type NatsConfig,
  type NetworkConfig,
  needsPostgres,
  needsRedis,
  PLANES,
  type Plane,
  type RedisConfig,
} from './config.ts';
export { GcpCluster } from './gcp/cluster.ts';
export { GcpNetwork } from './gcp/network.ts';
export { GcpPostgres } from './gcp/postgres.ts';
export { type GcpRedis, GcpRedisCluster, GcpRedisInstance, gcpRedis } from './gcp/redis.ts';
export { AllotRelease } from './stacks/allot-release.ts';
export { AwsControlPlaneStack } from './stacks/aws-control-plane.ts';
export { AwsDataPlaneStack } from './stacks/aws-data-plane.ts';
export { controlPlaneValues, dataPlaneValues } from './stacks/chart-values.ts';
export type { ControlPlane } from './stacks/control-plane.ts';
export type { DataPlane } from './stacks/data-plane.ts';
export { GcpControlPlaneStack } from './stacks/gcp-control-plane.ts';
export { GcpDataPlaneStack } from './stacks/gcp-data-plane.ts';
export { buildStack, synthesize } from './stacks/synth.ts';
