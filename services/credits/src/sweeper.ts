import { AppError } from '@allot/kit';
import type { SqlExecutor } from '@allot/kit/sql';
import type { CreditsEngine } from './engine.ts';
import { dueGrantExpiries, dueHoldExpiries, pruneFinishedHolds } from './store/queries.ts';

export interface SweeperOptions {
  sql: SqlExecutor;
  engine: CreditsEngine;
  intervalMs?: number;
  /** Holds are swept by the hot path as it goes; the ledger's view waits this long before stepping in. */
  holdGraceMs?: number;
  /**
   * How long a finished hold's row is kept (replays and rebuilds read it). Longer than the
   * CREDITS stream keeps messages (7 days), so no redelivered event can meet a pruned hold.
   * Default 8 days.
   */
  holdRetentionMs?: number;
  log?: { warn(obj: object, msg: string): void };
}

/**
 * Ends what time ends: grants at their expiresAt and holds at their TTL, for pools nobody is
 * touching (the hot path already ignores both the moment they lapse), and prunes holds that
 * finished long ago. Runs in the credits service; any number of copies may run, since every
 * step is idempotent.
 */
export class CreditsSweeper {
  readonly #options: SweeperOptions;
  #timer: NodeJS.Timeout | undefined;
  #running: Promise<void> | undefined;

  constructor(options: SweeperOptions) {
    this.#options = options;
  }

  start(): void {
    const interval = this.#options.intervalMs ?? 1000;
    this.#timer = setInterval(() => {
      this.#running ??= this.sweepOnce()
        .then(() => {})
        .catch((error: unknown) => this.#options.log?.warn({ err: error }, 'credits sweep failed'))
        .finally(() => {
          this.#running = undefined;
        });
    }, interval);
    this.#timer.unref();
  }

  async stop(): Promise<void> {
    clearInterval(this.#timer);
    await this.#running;
  }

  /**
   * One pass: expire due grants, release due holds, prune old finished holds. Returns how many
   * of each it handled.
   */
  async sweepOnce(now = new Date()): Promise<{ grants: number; holds: number; pruned: number }> {
    const { sql, engine } = this.#options;
    const grants = await dueGrantExpiries(sql, now, 500);
    for (const grant of grants) {
      const pool = {
        tenant: grant.tenant,
        customerId: grant.customerId,
        creditType: grant.creditType,
        resourceId: grant.resourceId,
      };
      try {
        await engine.retireGrant({ ...pool, grantId: grant.grantId, kind: 'expired' });
      } catch (error) {
        if (!(error instanceof AppError && error.code === 'not_found')) throw error;
        await engine.recordExpiry({
          ...pool,
          grantId: grant.grantId,
          amount: grant.remaining,
          at: grant.expiresAt.getTime(),
        });
      }
    }
    const holds = await dueHoldExpiries(
      sql,
      new Date(now.getTime() - (this.#options.holdGraceMs ?? 5000)),
      500,
    );
    for (const hold of holds) {
      const pool = {
        tenant: hold.tenant,
        customerId: hold.customerId,
        creditType: hold.creditType,
        resourceId: hold.resourceId,
      };
      try {
        await engine.release({ ...pool, holdId: hold.holdId });
      } catch (error) {
        if (!(error instanceof AppError)) throw error;
        // Settled meanwhile: the ledger catches up on its own.
        if (error.code === 'conflict') continue;
        if (error.code !== 'not_found') throw error;
        await engine.recordExpiry({
          ...pool,
          holdId: hold.holdId,
          amount: hold.amount,
          at: hold.expiresAt.getTime(),
        });
      }
    }
    const pruned = await pruneFinishedHolds(
      sql,
      new Date(now.getTime() - (this.#options.holdRetentionMs ?? 8 * 24 * 3600_000)),
      1000,
    );
    return { grants: grants.length, holds: holds.length, pruned };
  }
}
