import { AppError } from '@allot/kit';
import type { Bus } from '@allot/kit/bus';
import type { SqlExecutor } from '@allot/kit/sql';
import { hotGrantMeta } from '../domain/burn-order.ts';
import { CREDITS_STREAM } from '../domain/events.ts';
import type { CustomerSnapshot, LedgerView } from '../engine.ts';
import { creditsConsumerConfig, ledgerCaughtUp } from '../worker/worker.ts';
import type { HoldOutcome } from './ledger.ts';
import { customerHotState } from './queries.ts';

export interface StreamLedgerViewOptions {
  /** How long a rebuild waits for the worker before answering 503. Default 10 s. */
  timeoutMs?: number;
  pollMs?: number;
  /** The worker's ack wait: binding the shared durable consumer with another would change it. */
  ackWaitMs?: number;
  /** How long finished holds stay replayable after a rebuild. Default 15 min, as in Redis. */
  finishedWithinMs?: number;
}

/**
 * The ledger as a rebuild needs it: "caught up" means the worker has acknowledged every
 * message the CREDITS stream held when asked (its ack floor reached the stream's last
 * sequence), which works from any process; the snapshot is then read from PostgreSQL.
 */
export class StreamLedgerView implements LedgerView {
  readonly #sql: SqlExecutor;
  readonly #bus: Bus;
  readonly #timeoutMs: number;
  readonly #pollMs: number;
  readonly #ackWaitMs: number;
  readonly #finishedWithinMs: number;

  constructor(sql: SqlExecutor, bus: Bus, options: StreamLedgerViewOptions = {}) {
    this.#sql = sql;
    this.#bus = bus;
    this.#timeoutMs = options.timeoutMs ?? 10_000;
    this.#pollMs = options.pollMs ?? 20;
    this.#ackWaitMs = options.ackWaitMs ?? creditsConsumerConfig.ackWaitMs;
    this.#finishedWithinMs = options.finishedWithinMs ?? 15 * 60_000;
  }

  async caughtUp(): Promise<void> {
    try {
      const consumer = await this.#bus.consumer(CREDITS_STREAM, {
        ...creditsConsumerConfig,
        ackWaitMs: this.#ackWaitMs,
      });
      await ledgerCaughtUp(this.#bus, { timeoutMs: this.#timeoutMs, pollMs: this.#pollMs, consumer });
    } catch (error) {
      throw new AppError(
        'unavailable',
        `the credits ledger is behind; retry shortly (${(error as Error).message})`,
      );
    }
  }

  async snapshot(tenant: string, customerId: string): Promise<CustomerSnapshot> {
    const state = await customerHotState(this.#sql, tenant, customerId, {
      finishedWithinMs: this.#finishedWithinMs,
    });
    return {
      pools: state.pools.map((pool) => ({
        creditType: pool.creditType,
        resourceId: pool.resourceId,
        mode: pool.mode,
        overdraft: pool.overdraft,
        grants: pool.grants.map((g) => ({
          id: g.grantId,
          remaining: g.remaining,
          meta: hotGrantMeta({ ...g, id: g.grantId }),
        })),
        retired: pool.retired.map((r) => ({ id: r.grantId, kind: r.kind, amount: r.amount })),
        holds: pool.holds.map((h) => ({ id: h.holdId, amount: h.amount, expiresAt: h.expiresAt.getTime() })),
      })),
      done: state.finishedHolds.map((hold) => {
        const at = hold.finishedAt.getTime();
        // The finishing event's own answer, so a retry after the rebuild answers (and republishes
        // under the same event id) exactly what the first call did.
        const recorded = hotOutcome(hold.outcome, at);
        if (recorded) return { holdId: hold.holdId, outcome: recorded, at };
        const base = { status: hold.status, amount: hold.amount.toString(), at: String(at) };
        if (hold.status !== 'settled') return { holdId: hold.holdId, outcome: base, at };
        const settled = hold.settled ?? 0n;
        const overage = hold.overage ?? 0n;
        const released = hold.amount > settled ? hold.amount - settled : 0n;
        return {
          holdId: hold.holdId,
          at,
          outcome: {
            ...base,
            held: hold.amount.toString(),
            requested: (settled + overage).toString(),
            settled: settled.toString(),
            debits: { n: 0, items: {} },
            overdraft: '0',
            released: released.toString(),
            overage: overage.toString(),
            late: false,
          },
        };
      }),
    };
  }
}

/**
 * A finished hold's outcome as the hot path keeps it (see the settle script): debits from grants
 * as a list, a soft pool's overdraft slice (grant null) apart. Null for rows without one.
 */
function hotOutcome(outcome: HoldOutcome | null, at: number): Record<string, unknown> | null {
  if (outcome === null) return null;
  if (outcome.status !== 'settled') return { status: outcome.status, amount: outcome.amount, at: String(at) };
  const slices = outcome.debits.filter((d) => d.grantId !== null);
  const overdraft = outcome.debits
    .filter((d) => d.grantId === null)
    .reduce((sum, d) => sum + BigInt(d.amount), 0n);
  return {
    status: 'settled',
    held: outcome.held,
    requested: outcome.requested,
    debits: slices.length > 0 ? { n: slices.length, items: slices } : { n: 0, items: {} },
    overdraft: overdraft.toString(),
    released: outcome.released,
    overage: outcome.overage,
    late: outcome.late,
    at: String(at),
  };
}
