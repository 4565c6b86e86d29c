import { type CreditsService, StreamLedgerView } from '@allot/credits';
import { GovernanceHotState, migrateGovernance, WindowClock } from '@allot/governance';
import type { Bus } from '@allot/kit/bus';
import { ConfigReplica, ConfigStore, migrateConfig } from '@allot/kit/config-store';
import { HotLoadFence, type HotState } from '@allot/kit/hot';
import type { SqlStore } from '@allot/kit/sql';
import { Catalog } from './catalog.ts';
import { GateEngine } from './engine.ts';

export interface GateServiceOptions {
  sql: SqlStore;
  hot: HotState;
  bus: Bus;
  /** The credits service whose engine rebuilds credit pools and whose publisher the gate shares. */
  credits: Pick<CreditsService, 'engine' | 'publisher'>;
  /** Allow without a reservation when the hot state is unreachable (default: 503). */
  failOpen?: boolean;
  /** How often the configuration replica polls for changes it was not told about. Default 1 s. */
  configPollMs?: number;
  log?: { warn(obj: object, msg: string): void };
  /** Tests only: the time periods are computed at. */
  clock?: () => number;
}

export interface GateService {
  engine: GateEngine;
  catalog: Catalog;
  config: ConfigStore;
  replica: ConfigReplica;
  windows: WindowClock;
  close(): Promise<void>;
}

/**
 * The gate assembled: the configuration store and its in-memory replica (kept current by push),
 * the catalog built from it, and the decision engine over the hot state. The hot-path stream's
 * worker (run by the credits service) must apply the governance records: give `startCredits`
 * `governanceRecordApplier()`.
 */
export async function startGate(options: GateServiceOptions): Promise<GateService> {
  await migrateConfig(options.sql);
  await migrateGovernance(options.sql);
  const config = new ConfigStore(options.sql, options.bus);
  const replica = new ConfigReplica({
    store: config,
    bus: options.bus,
    ...(options.configPollMs ? { pollMs: options.configPollMs } : {}),
    ...(options.log ? { log: options.log } : {}),
  });
  await replica.start();
  const catalog = new Catalog(replica);
  const windows = new WindowClock();
  const ledger = new StreamLedgerView(options.sql, options.bus);
  const governance = new GovernanceHotState({
    hot: options.hot,
    sql: options.sql,
    caughtUp: () => ledger.caughtUp(),
    publishBoundMs: options.credits.publisher.publishBoundMs,
    fence: new HotLoadFence(options.sql, 'governance'),
    windows,
    decisionKey: GateEngine.decisionKey,
    ...(options.clock ? { clock: options.clock } : {}),
  });
  const engine = new GateEngine({
    hot: options.hot,
    publisher: options.credits.publisher,
    catalog,
    credits: options.credits.engine,
    governance,
    windows,
    ...(options.failOpen ? { failOpen: true } : {}),
    ...(options.clock ? { clock: options.clock } : {}),
    ...(options.log ? { log: options.log } : {}),
  });
  return {
    engine,
    catalog,
    config,
    replica,
    windows,
    async close() {
      await replica.stop();
    },
  };
}
