/**
 * The gate wired as in production, on either backend set: PostgreSQL, Redis and NATS (each
 * test on a fresh database, key prefix and bus namespace), or PGlite, the embedded hot state
 * and the in-process bus. Configuration is written through the configuration store, as the
 * routes do, and the replica is waited for before a test goes on.
 */
import { randomUUID } from 'node:crypto';
import { type CreditsService, hotGrantMeta, startCredits } from '@allot/credits';
import { governanceRecordApplier } from '@allot/governance';
import type { Bus } from '@allot/kit/bus';
import { EmbeddedHotState, type HotState } from '@allot/kit/hot';
import type { SqlStore } from '@allot/kit/sql';
import {
  freshEmbeddedBus,
  freshNatsBus,
  freshPgDatabase,
  freshPgliteStore,
  freshRedisHotState,
} from '@allot/kit/testing';
import { insertGrant } from '../../../credits/src/store/ledger.ts';
import { type GateService, startGate } from '../../src/service.ts';

export type Backend = 'real' | 'embedded';

export interface GateRig {
  tenant: string;
  sql: SqlStore;
  hot: HotState;
  bus: Bus;
  credits: CreditsService;
  gate: GateService;
  /** Writes a configuration document and waits until the gate sees it. */
  put(kind: string, id: string, body: unknown): Promise<void>;
  remove(kind: string, id: string): Promise<void>;
  grant(
    customerId: string,
    amount: bigint,
    options?: { creditType?: string; resourceId?: string },
  ): Promise<void>;
  /**
   * Another gate process on the same stores: its own configuration replica and engine, and
   * with `hot` its own hot-state client and credits engine too.
   */
  another(options?: { failOpen?: boolean; hot?: HotState }): Promise<GateService>;
  close(): Promise<void>;
}

export interface GateRigOptions {
  failOpen?: boolean;
  /** The embedded hot state's clock and the gate's (periods), for tests that move time. */
  clock?: () => number;
  /** Real backends: this hot state instead of a fresh prefix on the shared Redis. */
  hot?: HotState;
  /** Real backends: this NATS (a JetStream cluster's servers) instead of the shared one. */
  natsUrl?: string;
  /** Replicas of streams and buckets (3 on a JetStream cluster). */
  natsReplicas?: number;
}

export async function openGateRig(backend: Backend, options: GateRigOptions = {}): Promise<GateRig> {
  const cleanups: (() => Promise<void>)[] = [];
  let sql: SqlStore;
  let hot: HotState;
  let bus: Bus;
  if (backend === 'real') {
    const db = await freshPgDatabase();
    const nats = await freshNatsBus(
      options.natsUrl,
      options.natsReplicas ? { replicas: options.natsReplicas } : {},
    );
    sql = db.store;
    bus = nats.bus;
    cleanups.push(
      () => nats.cleanup(),
      () => db.drop(),
    );
    if (options.hot) {
      hot = options.hot;
    } else {
      const redis = await freshRedisHotState();
      hot = redis;
      cleanups.unshift(() => redis.cleanup());
    }
  } else {
    const pglite = await freshPgliteStore();
    const embedded = await freshEmbeddedBus();
    hot = await EmbeddedHotState.open(options.clock ? { clock: options.clock } : {});
    sql = pglite;
    bus = embedded.bus;
    cleanups.push(
      () => embedded.cleanup(),
      () => hot.close(),
      () => pglite.close(),
    );
  }
  // A Redis that has been up a while: a first load need not wait out the publish bound.
  await hot.call('SET', 'allot:credits:epoch', '0');
  const { migrateGovernance } = await import('@allot/governance');
  await migrateGovernance(sql);
  const credits = await startCredits({ sql, hot, bus, alerts: false, records: governanceRecordApplier() });
  const gate = await startGate({
    sql,
    hot,
    bus,
    credits,
    configPollMs: 200,
    ...(options.failOpen ? { failOpen: true } : {}),
    ...(options.clock ? { clock: options.clock } : {}),
  });
  const tenant = `t${randomUUID().slice(0, 8)}`;
  return {
    tenant,
    sql,
    hot,
    bus,
    credits,
    gate,
    async put(kind, id, body) {
      const { document } = await gate.config.put(tenant, kind, id, body, 'test');
      await gate.replica.waitFor(tenant, document.version);
    },
    async remove(kind, id) {
      await gate.config.delete(tenant, kind, id, 'test');
      await gate.replica.waitFor(tenant, await currentVersion(gate, tenant));
    },
    async grant(customerId, amount, grantOptions = {}) {
      const { grant } = await insertGrant(sql, {
        tenant,
        id: `gr_${randomUUID()}`,
        customerId,
        creditType: grantOptions.creditType ?? 'credits',
        resourceId: grantOptions.resourceId ?? '',
        amount,
        category: 'paid',
        // In effect since ever: tests that move the clock may start before the wall clock.
        effectiveAt: new Date(0),
        expiresAt: null,
        costBasis: null,
        metadata: {},
        idempotencyKey: randomUUID(),
      });
      await credits.engine.addGrant({
        tenant,
        customerId,
        creditType: grant.creditType,
        resourceId: grant.resourceId,
        grantId: grant.id,
        amount: grant.amount,
        meta: hotGrantMeta(grant),
      });
    },
    async another({ hot: ownHot, ...more } = {}) {
      const ownCredits = ownHot
        ? await startCredits({ sql, hot: ownHot, bus, alerts: false, background: false })
        : credits;
      const other = await startGate({
        sql,
        hot: ownHot ?? hot,
        bus,
        credits: ownCredits,
        configPollMs: 1000,
        ...more,
      });
      cleanups.unshift(async () => {
        await other.close();
        if (ownCredits !== credits) await ownCredits.close();
      });
      return other;
    },
    async close() {
      await gate.close();
      await credits.close();
      for (const cleanup of cleanups) await cleanup().catch(() => {});
    },
  };
}

async function currentVersion(gate: GateService, tenant: string): Promise<number> {
  return (await gate.config.versions()).get(tenant) ?? 0;
}
