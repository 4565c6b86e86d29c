/**
 * Budget alerts out: `governance.budget.threshold` events on the EVENTS stream (from which the
 * webhook dispatcher delivers signed webhooks with retries). The worker queues an alert in the
 * commit whose usage crossed a threshold, once per counter, period and threshold; this loop
 * publishes what is queued and marks it, under an id that a republish after a crash keeps.
 */
import { formatAmount } from '@allot/contracts/amount';
import { LoopSignal } from '@allot/kit';
import type { Bus } from '@allot/kit/bus';
import type { SqlStore } from '@allot/kit/sql';
import { eventsStreamConfig, publishEvent } from '@allot/kit/webhooks';
import { parseCounterId } from './domain/scope.ts';

export const BUDGET_ALERT = 'governance.budget.threshold';

export interface BudgetAlertsOptions {
  sql: SqlStore;
  bus: Bus;
  log?: { warn(obj: object, msg: string): void };
  /** How often queued alerts are looked for besides wakes. Default 1 s. */
  intervalMs?: number;
}

interface AlertRow {
  tenant: string;
  id: string;
  budget_id: string;
  customer_id: string;
  counter_id: string;
  window_start: string;
  threshold: string;
  used: string;
  limit: string;
  created_at: Date;
}

export class BudgetAlerts {
  readonly #options: BudgetAlertsOptions;
  readonly #signal = new LoopSignal();
  #loop: Promise<void> | undefined;
  published = 0;

  constructor(options: BudgetAlertsOptions) {
    this.#options = options;
  }

  async start(): Promise<void> {
    await this.#options.bus.ensureStream(eventsStreamConfig);
    this.#signal.start();
    this.#loop = this.#run();
  }

  /** New alerts were queued: publish them now rather than at the next interval. */
  wake(): void {
    this.#signal.wake();
  }

  async stop(): Promise<void> {
    this.#signal.stop();
    await this.#loop;
  }

  /** Publishes what is queued; returns how many. */
  async publishQueued(): Promise<number> {
    const { sql, bus } = this.#options;
    const { rows } = await sql.query<AlertRow>(
      `SELECT tenant, id, budget_id, customer_id, counter_id, window_start, threshold, used, "limit", created_at
       FROM governance.alerts WHERE published_at IS NULL ORDER BY created_at LIMIT 500`,
    );
    for (const row of rows) {
      const values = parseCounterId(row.counter_id).values;
      await publishEvent(bus, {
        id: `budget-alert:${row.id}`,
        type: BUDGET_ALERT,
        tenant: row.tenant,
        occurredAt: new Date(row.created_at).toISOString(),
        customerId: row.customer_id,
        data: {
          budgetId: row.budget_id,
          customerId: row.customer_id,
          scope: values,
          threshold: Number(row.threshold),
          used: formatAmount(BigInt(row.used)),
          limit: formatAmount(BigInt(row.limit)),
          periodStart: Number(row.window_start) > 0 ? new Date(Number(row.window_start)).toISOString() : null,
        },
      });
      await sql.query('UPDATE governance.alerts SET published_at = now() WHERE tenant = $1 AND id = $2', [
        row.tenant,
        row.id,
      ]);
    }
    this.published += rows.length;
    return rows.length;
  }

  async #run(): Promise<void> {
    while (!this.#signal.stopping) {
      this.#signal.clearWake();
      try {
        while ((await this.publishQueued()) > 0);
      } catch (error) {
        this.#options.log?.warn({ err: error }, 'budget alerts: publishing failed; retrying');
      }
      if (!this.#signal.woken) await this.#signal.pause(this.#options.intervalMs ?? 1000);
    }
  }
}
