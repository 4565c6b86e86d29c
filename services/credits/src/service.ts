import { fileURLToPath } from 'node:url';
import type { Bus } from '@allot/kit/bus';
import { HotLoadFence, type HotState } from '@allot/kit/hot';
import { migrate, type SqlStore } from '@allot/kit/sql';
import {
  startWebhookDispatcher,
  type WebhookDispatcher,
  type WebhookDispatcherOptions,
} from '@allot/kit/webhooks';
import type { Registry } from 'prom-client';
import { CreditAlerts } from './alerts.ts';
import { CreditsEngine } from './engine.ts';
import { StreamLedgerView } from './store/ledger-view.ts';
import { CreditEventPublisher } from './store/publisher.ts';
import { CreditsSweeper } from './sweeper.ts';
import { CreditsWorker, type RecordApplier, type WorkerLog } from './worker/worker.ts';

export const creditsMigrations = fileURLToPath(new URL('../migrations', import.meta.url));

export interface CreditsServiceOptions {
  sql: SqlStore;
  hot: HotState;
  bus: Bus;
  log?: WorkerLog;
  registry?: Registry;
  /** Run the ledger worker and the expiry sweeper in this process (default true). */
  background?: boolean;
  /**
   * With `background`: raise low-balance, depleted, expired and recharge alerts to the EVENTS
   * stream after each group commit (default true).
   */
  alerts?: boolean;
  /**
   * Deliver the EVENTS stream (every service's events) as signed webhooks from this process
   * (default false: run one dispatcher per deployment; `npm start` turns it on).
   */
  webhooks?: boolean | Omit<WebhookDispatcherOptions, 'sql' | 'bus'>;
  /** Records other services put on the hot-path stream (the gate's decisions), applied by the worker. */
  records?: RecordApplier;
}

/**
 * The credits service assembled: the engine the gate calls, and (unless `background` is false)
 * the worker that applies the stream to the ledger and the sweeper that ends what time ends.
 */
export interface CreditsService {
  engine: CreditsEngine;
  publisher: CreditEventPublisher;
  worker: CreditsWorker | undefined;
  sweeper: CreditsSweeper | undefined;
  alerts: CreditAlerts | undefined;
  webhooks: WebhookDispatcher | undefined;
  close(): Promise<void>;
}

export async function startCredits(options: CreditsServiceOptions): Promise<CreditsService> {
  await migrate(options.sql, { schema: 'credits', dir: creditsMigrations });
  const publisher = new CreditEventPublisher(options.bus, {
    ...(options.log ? { log: options.log } : {}),
    ...(options.registry ? { registry: options.registry } : {}),
  });
  await publisher.ensureStream();
  const engine = new CreditsEngine({
    hot: options.hot,
    publisher,
    fence: new HotLoadFence(options.sql, 'credits'),
    ledger: new StreamLedgerView(options.sql, options.bus),
  });
  const background = options.background ?? true;
  const alerts =
    background && options.alerts !== false
      ? new CreditAlerts({ sql: options.sql, bus: options.bus, ...(options.log ? { log: options.log } : {}) })
      : undefined;
  await alerts?.start();
  const worker = background
    ? new CreditsWorker({
        store: options.sql,
        bus: options.bus,
        ...(options.log ? { log: options.log } : {}),
        ...(options.registry ? { registry: options.registry } : {}),
        ...(alerts ? { hooks: alerts.hooks } : {}),
        ...(options.records ? { records: options.records } : {}),
      })
    : undefined;
  await worker?.start();
  const sweeper = background
    ? new CreditsSweeper({ sql: options.sql, engine, ...(options.log ? { log: options.log } : {}) })
    : undefined;
  sweeper?.start();
  const webhooks = options.webhooks
    ? await startWebhookDispatcher({
        sql: options.sql,
        bus: options.bus,
        ...(options.log ? { log: options.log } : {}),
        ...(options.registry ? { registry: options.registry } : {}),
        ...(typeof options.webhooks === 'object' ? options.webhooks : {}),
      })
    : undefined;
  return {
    engine,
    publisher,
    worker,
    sweeper,
    alerts,
    webhooks,
    async close() {
      await sweeper?.stop();
      // Stores what the background republish still holds, for a bounded time.
      await publisher.close();
      await worker?.stop();
      await alerts?.stop();
      await webhooks?.stop();
    },
  };
}
