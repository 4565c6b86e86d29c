import { join } from 'node:path';
import { type Bus, openBus } from './bus/index.ts';
import type { ReadinessCheck } from './health.ts';
import { type HotState, openHotState } from './hot/index.ts';
import { openSqlStore, type SqlStore } from './sql/index.ts';

/**
 * The three backends behind every service: real servers where a URL is set, embedded otherwise.
 * Redis may be down at boot: the process starts, /readyz says so, and the gate's fail policy
 * decides. PostgreSQL connects lazily. NATS must answer at boot (the process stops with one
 * line otherwise and the orchestrator restarts it); after that it reconnects on its own.
 */
export interface Stores {
  sql: SqlStore;
  hot: HotState;
  bus: Bus;
  /** One readiness check per store, for `createApp`. */
  readiness: ReadinessCheck[];
  close(): Promise<void>;
}

export interface StoresEnv {
  DATABASE_URL?: string | undefined;
  REDIS_URL?: string | undefined;
  REDIS_CLUSTER?: boolean | undefined;
  REDIS_TLS_CA?: string | undefined;
  NATS_URL?: string | undefined;
  NATS_REPLICAS?: number | undefined;
}

/** `dataDir` holds the embedded PostgreSQL; `name` names the NATS connection. */
export async function openStores(
  env: StoresEnv,
  options: { dataDir: string; name: string },
): Promise<Stores> {
  const sql = await openSqlStore(
    env.DATABASE_URL ? { url: env.DATABASE_URL } : { dataDir: join(options.dataDir, 'pg') },
  );
  const hot = await openHotState(
    env.REDIS_URL
      ? {
          url: env.REDIS_URL,
          requireConnection: false,
          ...(env.REDIS_CLUSTER ? { cluster: true } : {}),
          ...(env.REDIS_TLS_CA ? { tlsCa: env.REDIS_TLS_CA } : {}),
        }
      : {},
  );
  const bus = await openBus(
    env.NATS_URL
      ? {
          url: env.NATS_URL,
          name: options.name,
          ...(env.NATS_REPLICAS ? { replicas: env.NATS_REPLICAS } : {}),
        }
      : { name: options.name },
  );
  return {
    sql,
    hot,
    bus,
    readiness: [
      { name: `postgres (${sql.kind})`, check: () => sql.ping(), timeoutMs: 2000 },
      { name: `redis (${hot.kind})`, check: () => hot.ping(), timeoutMs: 1000 },
      { name: `nats (${bus.kind})`, check: () => bus.ping(), timeoutMs: 1000 },
    ],
    async close() {
      await Promise.allSettled([bus.close(), hot.close(), sql.close()]);
    },
  };
}
