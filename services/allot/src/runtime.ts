import { join } from 'node:path';
import type { ReadinessCheck } from '@allot/kit';
import { type Bus, openBus } from '@allot/kit/bus';
import { type HotState, openHotState } from '@allot/kit/hot';
import { openSqlStore, type SqlStore } from '@allot/kit/sql';
import type { AllotEnv } from './config.ts';

/**
 * The three backends behind every service: real servers where a URL is set, embedded otherwise.
 * Redis may be down at boot: the process starts, /readyz says so, and the gate's fail policy
 * decides. PostgreSQL connects lazily. NATS must answer at boot (the process stops with one
 * line otherwise and the orchestrator restarts it); after that it reconnects on its own.
 */
export interface Runtime {
  sql: SqlStore;
  hot: HotState;
  bus: Bus;
  readiness: ReadinessCheck[];
  close(): Promise<void>;
}

export async function openRuntime(env: AllotEnv): Promise<Runtime> {
  const sql = await openSqlStore(
    env.DATABASE_URL ? { url: env.DATABASE_URL } : { dataDir: join(env.ALLOT_DATA_DIR, 'pg') },
  );
  const hot = await openHotState(env.REDIS_URL ? { url: env.REDIS_URL, requireConnection: false } : {});
  const bus = await openBus(env.NATS_URL ? { url: env.NATS_URL, name: 'allot' } : { name: 'allot' });
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
