import { RedisInstance } from '@cdktf/provider-google/lib/redis-instance/index.js';
import { Construct } from 'constructs';
import type { RedisConfig } from '../config.ts';
import type { GcpNetwork } from './network.ts';

/** Memorystore serves TLS on 6378, not 6379: the chart's NetworkPolicies must allow it. */
export const MEMORYSTORE_TLS_PORT = 6378;

export interface GcpRedisProps {
  readonly name: string;
  readonly region: string;
  readonly redis: RedisConfig;
  readonly network: GcpNetwork;
}

/**
 * Memorystore for Redis over private service access: AUTH on, TLS (server authentication) on,
 * encrypted at rest by Google, no address outside the network.
 */
export class GcpRedis extends Construct {
  readonly instance: RedisInstance;
  /** `REDIS_URL` for the services. */
  readonly url: string;
  /** PEM of the instance's server CA: TLS clients must trust it, as Node's CAs do not include it. */
  readonly caCertificate: string;

  constructor(scope: Construct, id: string, props: GcpRedisProps) {
    super(scope, id);
    this.instance = new RedisInstance(this, 'instance', {
      name: `${props.name}-redis`,
      region: props.region,
      tier: props.redis.highAvailability ? 'STANDARD_HA' : 'BASIC',
      memorySizeGb: props.redis.memoryGb,
      redisVersion: 'REDIS_7_2',
      authorizedNetwork: props.network.networkId,
      connectMode: 'PRIVATE_SERVICE_ACCESS',
      authEnabled: true,
      transitEncryptionMode: 'SERVER_AUTHENTICATION',
      dependsOn: props.network.privateServiceAccess,
    });
    this.url = `rediss://:${this.instance.authString}@${this.instance.host}:${this.instance.port}`;
    this.caCertificate = this.instance.serverCaCerts.get(0).cert;
  }
}
