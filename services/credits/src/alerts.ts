/**
 * Credit alerts: `credits.balance.low`, `credits.balance.depleted`, `credits.grant.expired` and
 * `credits.recharge.requested`, published durably to the EVENTS stream, from which the webhook
 * dispatcher delivers them.
 *
 * How a balance change becomes an alert, without slowing the ledger or losing one on a crash:
 * 1. Inside each group commit's transaction (the worker's `hooks.inTransaction`), the pools the
 *    batch touched are marked in `credits.alert_pending`, and each `grant.expired` event queues
 *    its alert in the `credits.alerts` outbox. One cheap statement; it commits or rolls back with
 *    the ledger, so no commit goes unevaluated and a redelivered batch queues nothing new.
 *    (A new grant, written outside the worker, marks its pool through a trigger.)
 * 2. Once committed, the worker wakes this evaluator, which claims marked pools, reads each one's
 *    available balance from the ledger, steps its state machines (domain/alerts.ts), and queues
 *    the alerts, all in one transaction: a crossing fires once, under an id derived from the
 *    pool, the kind and the crossing's number.
 * 3. The outbox is published to the EVENTS stream and each row marked published. A crash between
 *    the two publishes it again under the same id, which the stream (within its duplicate window)
 *    and the dispatcher (per event id and endpoint) recognise.
 *
 * The evaluation runs after the commit rather than in it so that the group commit, the ledger's
 * throughput, pays only for the marks; many commits touching one hot pool are evaluated once.
 */
import { LoopSignal } from '@allot/kit';
import type { Bus } from '@allot/kit/bus';
import type { SqlExecutor, SqlStore } from '@allot/kit/sql';
import { eventsStreamConfig, publishEvent } from '@allot/kit/webhooks';
import {
  type AlertFiring,
  alertEventTypes,
  balanceAlertId,
  type CreditAlertEvent,
  calendarMonth,
  evaluatePoolAlerts,
  expiryAlertId,
  type PoolKey,
} from './domain/alerts.ts';
import { formatAmount } from './domain/amount.ts';
import type { CreditEvent } from './domain/events.ts';
import {
  claimMarkedPools,
  markPools,
  markPublished,
  type PoolAlertView,
  poolAlertViews,
  pruneAlerts,
  type QueuedAlert,
  queueAlerts,
  type StateChange,
  saveAlertStates,
  unpublishedAlerts,
} from './store/alerts.ts';
import type { CommitHooks, WorkerLog } from './worker/worker.ts';

export interface CreditAlertsOptions {
  sql: SqlStore;
  bus: Bus;
  log?: Pick<WorkerLog, 'info' | 'warn' | 'error'>;
  /** How often marks from other processes are looked for. Default 1 s. */
  intervalMs?: number;
  /** Pools per evaluation and alerts per publish. Default 500. */
  batchSize?: number;
  /** Published alerts are forgotten after this. Default 30 days (longer than the streams keep messages). */
  retentionMs?: number;
  /** The clock (tests). */
  now?: () => Date;
}

export interface CreditAlertsStats {
  poolsEvaluated: number;
  alertsRaised: number;
  alertsPublished: number;
}

const PRUNE_EVERY_MS = 60 * 60 * 1000;

/**
 * What the worker does in each group commit's transaction: mark the touched pools and queue the
 * expiry alerts (see the module comment).
 */
export async function recordAlertWork(tx: SqlExecutor, events: readonly CreditEvent[]): Promise<void> {
  const pools = new Map<string, PoolKey>();
  const expiries: QueuedAlert[] = [];
  for (const event of events) {
    const pool: PoolKey = {
      tenant: event.tenant,
      customerId: event.customerId,
      creditType: event.creditType,
      resourceId: event.resourceId,
    };
    pools.set([pool.tenant, pool.customerId, pool.creditType, pool.resourceId].join('\u0000'), pool);
    if (event.type === 'grant.expired') {
      const alert: CreditAlertEvent = {
        ...envelope(pool, new Date(event.at)),
        id: expiryAlertId(event.tenant, event.grantId),
        type: alertEventTypes.expired,
        data: { grantId: event.grantId, amount: formatAmount(BigInt(event.amount)) },
      };
      expiries.push(queued(pool, alert));
    }
  }
  await markPools(tx, [...pools.values()]);
  await queueAlerts(tx, expiries);
}

export class CreditAlerts {
  readonly #sql: SqlStore;
  readonly #bus: Bus;
  readonly #log: Pick<WorkerLog, 'info' | 'warn' | 'error'>;
  readonly #intervalMs: number;
  readonly #batchSize: number;
  readonly #retentionMs: number;
  readonly #now: () => Date;
  readonly #stats: CreditAlertsStats = { poolsEvaluated: 0, alertsRaised: 0, alertsPublished: 0 };
  #loop: Promise<void> | undefined;
  readonly #signal = new LoopSignal();
  #lastPrune = 0;
  /** Passes of this process run one at a time, so `drain` also waits for the loop's pass in progress. */
  #turn: Promise<unknown> = Promise.resolve();

  /** For the ledger worker: `new CreditsWorker({ ..., hooks: alerts.hooks })`. */
  readonly hooks: CommitHooks = {
    inTransaction: (tx, events) => recordAlertWork(tx, events),
    afterCommit: () => this.wake(),
  };

  constructor(options: CreditAlertsOptions) {
    this.#sql = options.sql;
    this.#bus = options.bus;
    this.#log = options.log ?? { info() {}, warn() {}, error() {} };
    this.#intervalMs = options.intervalMs ?? 1000;
    this.#batchSize = options.batchSize ?? 500;
    this.#retentionMs = options.retentionMs ?? 30 * 24 * 60 * 60 * 1000;
    this.#now = options.now ?? (() => new Date());
  }

  get stats(): Readonly<CreditAlertsStats> {
    return { ...this.#stats };
  }

  /** Declares the EVENTS stream, then evaluates and publishes until `stop`. */
  async start(): Promise<void> {
    if (this.#loop) throw new Error('credit alerts already started');
    await this.#bus.ensureStream(eventsStreamConfig);
    this.#signal.start();
    this.#loop = this.#run();
  }

  /** Finishes the pass in progress and resolves. */
  async stop(): Promise<void> {
    this.#signal.stop();
    await this.#loop;
    this.#loop = undefined;
  }

  wake(): void {
    this.#signal.wake();
  }

  /** Evaluates and publishes until nothing is marked and nothing is unpublished. */
  async drain(): Promise<void> {
    while ((await this.evaluateOnce()) > 0);
    while ((await this.publishOnce()) > 0);
  }

  /** One transaction: claims marked pools, steps their alerts, queues what fired. Returns pools claimed. */
  evaluateOnce(): Promise<number> {
    return this.#exclusive(() => this.#evaluate());
  }

  /** Publishes queued alerts to the EVENTS stream, oldest first. Returns how many. */
  publishOnce(): Promise<number> {
    return this.#exclusive(() => this.#publish());
  }

  #exclusive<T>(pass: () => Promise<T>): Promise<T> {
    const result = this.#turn.then(pass);
    this.#turn = result.catch(() => {});
    return result;
  }

  async #evaluate(): Promise<number> {
    const now = this.#now();
    const month = calendarMonth(now);
    const raised = await this.#sql.transaction(async (tx) => {
      const pools = await claimMarkedPools(tx, this.#batchSize);
      if (pools.length === 0) return { pools: 0, alerts: 0 };
      const views = await poolAlertViews(tx, pools, now);
      const changes: StateChange[] = [];
      const alerts: QueuedAlert[] = [];
      for (const view of views) {
        for (const transition of evaluatePoolAlerts({ ...view, month })) {
          changes.push({ ...poolKey(view), kind: transition.kind, state: transition.next });
          if (transition.firing) alerts.push(queued(view, balanceAlert(view, transition.firing, now, month)));
        }
      }
      await saveAlertStates(tx, changes);
      await queueAlerts(tx, alerts);
      return { pools: pools.length, alerts: alerts.length };
    });
    this.#stats.poolsEvaluated += raised.pools;
    this.#stats.alertsRaised += raised.alerts;
    if (raised.alerts > 0) this.#log.info({ alerts: raised.alerts }, 'credit alerts raised');
    return raised.pools;
  }

  async #publish(): Promise<number> {
    const pending = await unpublishedAlerts(this.#sql, this.#batchSize);
    if (pending.length === 0) return 0;
    const results = await Promise.allSettled(
      pending.map((alert) => publishEvent(this.#bus, JSON.parse(alert.event) as CreditAlertEvent)),
    );
    const published = pending.filter((_, i) => results[i]?.status === 'fulfilled');
    await markPublished(this.#sql, published);
    this.#stats.alertsPublished += published.length;
    const failed = results.find((r) => r.status === 'rejected');
    if (failed) throw (failed as PromiseRejectedResult).reason;
    return published.length;
  }

  async #run(): Promise<void> {
    let failures = 0;
    while (!this.#signal.stopping) {
      this.#signal.clearWake();
      try {
        const evaluated = await this.evaluateOnce();
        const published = await this.publishOnce();
        await this.#prune();
        failures = 0;
        if (evaluated === this.#batchSize || published === this.#batchSize) continue;
      } catch (error) {
        failures++;
        this.#log.warn({ err: error }, 'credit alerts: pass failed; will retry');
        await this.#signal.pause(Math.min(30_000, 250 * 2 ** Math.min(failures - 1, 10)));
        continue;
      }
      if (!this.#signal.woken) await this.#signal.pause(this.#intervalMs);
    }
  }

  async #prune(): Promise<void> {
    const now = this.#now().getTime();
    if (now - this.#lastPrune < PRUNE_EVERY_MS) return;
    this.#lastPrune = now;
    await pruneAlerts(this.#sql, new Date(now - this.#retentionMs));
  }
}

function poolKey(pool: PoolKey): PoolKey {
  return {
    tenant: pool.tenant,
    customerId: pool.customerId,
    creditType: pool.creditType,
    resourceId: pool.resourceId,
  };
}

function envelope(pool: PoolKey, at: Date) {
  return {
    tenant: pool.tenant,
    customerId: pool.customerId,
    creditType: pool.creditType,
    resourceId: pool.resourceId === '' ? null : pool.resourceId,
    occurredAt: at.toISOString(),
  };
}

function balanceAlert(view: PoolAlertView, firing: AlertFiring, now: Date, month: string): CreditAlertEvent {
  const base = { ...envelope(view, now), id: balanceAlertId(view, firing.kind, firing.crossing) };
  const available = formatAmount(view.available);
  switch (firing.kind) {
    case 'low':
      return {
        ...base,
        type: alertEventTypes.low,
        data: { available, threshold: formatAmount(firing.threshold) },
      };
    case 'depleted':
      return { ...base, type: alertEventTypes.depleted, data: { available } };
    case 'recharge':
      return {
        ...base,
        type: alertEventTypes.recharge,
        data: {
          amount: formatAmount(firing.amount),
          available,
          threshold: formatAmount(firing.policy.threshold),
          target: formatAmount(firing.policy.target),
          monthlyCap: firing.policy.monthlyCap === null ? null : formatAmount(firing.policy.monthlyCap),
          month,
          monthRequested: formatAmount(firing.monthRequested),
          capped: firing.capped,
        },
      };
  }
}

function queued(pool: PoolKey, event: CreditAlertEvent): QueuedAlert {
  return {
    ...poolKey(pool),
    id: event.id,
    type: event.type,
    event: JSON.stringify(event),
    occurredAt: new Date(event.occurredAt),
  };
}
