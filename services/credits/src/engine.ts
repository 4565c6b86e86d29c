import { createHash, randomUUID } from 'node:crypto';
import { AppError, GroupCommit } from '@allot/kit';
import { type HotScript, type HotState, waitOutHotLoss } from '@allot/kit/hot';
import type { CreditEvent } from './domain/events.ts';
import {
  expiredHoldEvents,
  type HoldReply,
  holdEvent,
  type ReleaseResult,
  type ReserveResult,
  releaseOutcome,
  reserveOutcome,
  type SettleResult,
  settleOutcome,
} from './domain/hold-replies.ts';
import {
  addGrantScript,
  holdScript,
  loadCustomerScript,
  retireGrantScript,
  setModeScript,
  sweepScript,
} from './store/hot-scripts.ts';
import { customerKeys, type PoolRef, poolKeys, poolName, poolScriptKeys } from './store/keys.ts';
import type { CreditEventPublisher } from './store/publisher.ts';

/** Everything the hot path needs to rebuild one customer, read from PostgreSQL. */
export interface CustomerSnapshot {
  pools: {
    creditType: string;
    resourceId: string;
    mode: 'hard' | 'soft';
    overdraft: bigint;
    grants: { id: string; remaining: bigint; meta: string }[];
    retired: { id: string; kind: 'voided' | 'expired'; amount: bigint }[];
    holds: { id: string; amount: bigint; expiresAt: number }[];
  }[];
  /** Holds finished recently, so that retries after a rebuild replay instead of applying twice. */
  done: { holdId: string; outcome: Record<string, unknown>; at: number }[];
}

/** The PostgreSQL side, as the engine needs it for a rebuild. */
export interface LedgerView {
  /** Resolves once the worker has applied every event stored in the stream before the call. */
  caughtUp(): Promise<void>;
  snapshot(tenant: string, customerId: string): Promise<CustomerSnapshot>;
}

export type { HoldOutcome, ReleaseResult, ReserveResult, SettleResult } from './domain/hold-replies.ts';

export interface EngineOptions {
  hot: HotState;
  publisher: CreditEventPublisher;
  ledger: LedgerView;
  /** Tells whether a customer being loaded was loaded before (kit's HotLoadFence). */
  fence?: { loadedBefore(tenant: string, customerId: string): Promise<boolean> };
  log?: { warn(obj: object, msg: string): void };
  /** Most reserves, settles and releases of one pool in one script call. Default 128. */
  maxGroup?: number;
}

export interface ReserveRequest extends PoolRef {
  amount: bigint;
  ttlMs: number;
  /** Caller-chosen hold id; otherwise derived from the idempotency key, or random. */
  holdId?: string;
  idempotencyKey?: string;
  metadata?: Record<string, unknown>;
}

export interface PoolStatus {
  mode: 'hard' | 'soft';
  held: bigint;
  overdraft: bigint;
  /** Remaining per grant id, for the grants the hot path holds. */
  remaining: Map<string, bigint>;
}

type ScriptReply = HoldReply;

/** One operation's reply, and the publication of the holds its group swept. */
interface GroupReply {
  reply: ScriptReply;
  swept: Promise<void>;
}

/** One reserve, settle or release in a group (see holdScript). */
interface HoldOp {
  pool: PoolRef;
  kind: 'r' | 'n' | 's' | 'l';
  args: [holdId: string, a: string, b: string];
}

/**
 * The credits hot path. Every operation is one Lua script on the customer's keys; what it
 * decided is appended to the CREDITS stream before the call returns. A customer whose hot
 * state is missing (first use, or Redis lost its data) is rebuilt from PostgreSQL first,
 * and answers 503 while that is impossible.
 */
export class CreditsEngine {
  readonly #hot: HotState;
  readonly #publisher: CreditEventPublisher;
  readonly #ledger: LedgerView;
  readonly #fence: EngineOptions['fence'];
  readonly #rebuilding = new Map<string, Promise<void>>();
  /**
   * Reserves, settles and releases of one pool that arrive in one turn of the event loop, or
   * while that pool's previous group is in Redis, run as one script: a hot pool (fifty
   * sub-agents on one credit pool) costs one round trip per group, not per call.
   */
  readonly #holds: GroupCommit<HoldOp, GroupReply>;

  constructor(options: EngineOptions) {
    this.#hot = options.hot;
    this.#publisher = options.publisher;
    this.#ledger = options.ledger;
    this.#fence = options.fence;
    this.#holds = new GroupCommit((_, ops) => this.#runHolds(ops), {
      maxGroup: options.maxGroup ?? 128,
    });
  }

  /**
   * The hold id a reserve with this idempotency key gets, so a retry finds the same hold. The
   * pool is part of it: finished holds are kept per customer, so one key used on two pools
   * must not name one hold.
   */
  static holdIdFor(pool: PoolRef, idempotencyKey: string): string {
    const digest = createHash('sha256')
      .update(`${pool.tenant}\u0000${pool.customerId}\u0000${poolName(pool)}\u0000${idempotencyKey}`)
      .digest('base64url');
    return `h_${digest.slice(0, 32)}`;
  }

  async reserve(request: ReserveRequest): Promise<ReserveResult> {
    if (request.amount < 0n) throw new AppError('unprocessable', 'amount must not be negative');
    // A hold id made up here is new for certain: the script skips looking for earlier attempts.
    const made = request.holdId === undefined && !request.idempotencyKey;
    const holdId = made
      ? `h_${randomUUID()}`
      : (request.holdId ?? CreditsEngine.holdIdFor(request, request.idempotencyKey!));
    return this.#hold(
      request,
      made ? 'n' : 'r',
      [holdId, request.amount.toString(), String(request.ttlMs)],
      (reply) => this.#reserved(request, holdId, reply),
    );
  }

  async #reserved(request: ReserveRequest, holdId: string, reply: ScriptReply): Promise<ReserveResult> {
    const { result, event, fresh } = reserveOutcome(request, holdId, reply);
    if (!event) return result;
    try {
      await this.#publisher.publish(request.customerId, [event]);
    } catch (error) {
      // Not durable, so not granted: give the hold back without a trace, then say so.
      if (fresh) await this.#undo(request, holdId);
      throw new AppError('unavailable', `credits could not be recorded: ${(error as Error).message}`);
    }
    return result;
  }

  /** Commits `amount` of the hold (more or less than held); releases the rest. */
  async settle(pool: PoolRef & { holdId: string; amount: bigint }): Promise<SettleResult> {
    if (pool.amount < 0n) throw new AppError('unprocessable', 'amount must not be negative');
    return this.#hold(pool, 's', [pool.holdId, pool.amount.toString(), ''], (reply) =>
      this.#settled(pool, reply),
    );
  }

  async #settled(pool: PoolRef & { holdId: string }, reply: ScriptReply): Promise<SettleResult> {
    const { result, events } = settleOutcome(pool, pool.holdId, reply);
    try {
      await this.#publisher.publish(pool.customerId, events);
    } catch (error) {
      // Applied in Redis but not durable: republished in the background, and a caller's retry
      // with the same hold id publishes the same event (same id, applied once).
      this.#publisher.retryLater(pool.customerId, events);
      throw new AppError('unavailable', `settle could not be recorded: ${(error as Error).message}`);
    }
    return result;
  }

  /** Returns the whole hold. Idempotent; a settled hold cannot be released. */
  async release(pool: PoolRef & { holdId: string }): Promise<ReleaseResult> {
    return this.#hold(pool, 'l', [pool.holdId, '', ''], (reply) => this.#released(pool, reply));
  }

  async #released(pool: PoolRef & { holdId: string }, reply: ScriptReply): Promise<ReleaseResult> {
    const { result, event } = releaseOutcome(pool, pool.holdId, reply);
    try {
      await this.#publisher.publish(pool.customerId, [event]);
    } catch (error) {
      this.#publisher.retryLater(pool.customerId, [event]);
      throw new AppError('unavailable', `release could not be recorded: ${(error as Error).message}`);
    }
    return result;
  }

  /** Releases holds of one pool past their TTL (the background sweeper's entry). */
  async sweep(pool: PoolRef): Promise<number> {
    const reply = await this.#run(pool, sweepScript, []);
    const expired = expiredHoldEvents(pool, reply.expired);
    await this.#record(pool, expired, 'expired holds');
    return expired.length;
  }

  /**
   * Makes a grant spendable. Call after the grant is in PostgreSQL; idempotent per grant id.
   * A soft pool's overdraft is paid from it first.
   */
  async addGrant(
    pool: PoolRef & { grantId: string; amount: bigint; meta: string; mode?: 'hard' | 'soft' },
  ): Promise<{ overdraftPaid: bigint }> {
    const reply = await this.#run(pool, addGrantScript, [
      pool.grantId,
      pool.amount.toString(),
      pool.meta,
      pool.mode ?? '',
    ]);
    const paid = BigInt((reply.overdraftPaid as string) ?? '0');
    if (paid > 0n) {
      await this.#record(
        pool,
        [
          holdEvent(pool, `od:${pool.grantId}`, Number(reply.at ?? Date.now()), {
            type: 'overdraft.settled',
            grantId: pool.grantId,
            amount: paid.toString(),
          }),
        ],
        'the overdraft payment',
      );
    }
    return { overdraftPaid: paid };
  }

  /** Voids a grant (or expires one that is due): what is left of it stops being spendable. */
  async retireGrant(
    pool: PoolRef & { grantId: string; kind: 'voided' | 'expired' },
  ): Promise<{ status: string; amount: bigint }> {
    const reply = await this.#run(pool, retireGrantScript, [pool.grantId, pool.kind]);
    if (reply.status === 'not_found') throw new AppError('not_found', `grant ${pool.grantId} not found`);
    if (reply.status === 'not_due') return { status: 'not_due', amount: 0n };
    const amount = BigInt(reply.amount as string);
    const kind = reply.status as 'voided' | 'expired';
    await this.#record(
      pool,
      [
        holdEvent(
          pool,
          `${kind === 'voided' ? 'gv' : 'ge'}:${pool.grantId}`,
          Number(reply.at ?? Date.now()),
          {
            type: kind === 'voided' ? 'grant.voided' : 'grant.expired',
            grantId: pool.grantId,
            amount: amount.toString(),
          },
        ),
      ],
      `the ${kind} grant`,
    );
    return { status: kind, amount };
  }

  /**
   * Records an expiry the hot path cannot decide because it never held the grant or hold (it
   * lapsed while Redis was being rebuilt): the ledger's own figure, which no later charge can
   * change, under the same event id the hot path would have used.
   */
  async recordExpiry(
    pool: PoolRef &
      ({ grantId: string; holdId?: never } | { holdId: string; grantId?: never }) & {
        amount: bigint;
        at: number;
      },
  ): Promise<void> {
    const event: CreditEvent = pool.grantId
      ? holdEvent(pool, `ge:${pool.grantId}`, pool.at, {
          type: 'grant.expired',
          grantId: pool.grantId,
          amount: pool.amount.toString(),
        })
      : holdEvent(pool, `x:${pool.holdId}`, pool.at, {
          type: 'hold.released',
          holdId: pool.holdId!,
          amount: pool.amount.toString(),
          reason: 'expired',
        });
    try {
      await this.#publisher.publish(pool.customerId, [event]);
    } catch (error) {
      this.#publisher.retryLater(pool.customerId, [event]);
      throw error;
    }
  }

  /** The pool as the hot path sees it now, or null when the customer is not loaded. */
  async poolStatus(pool: PoolRef): Promise<PoolStatus | null> {
    const loaded = await this.#hot.call('EXISTS', customerKeys(pool.tenant, pool.customerId).loaded);
    if (loaded === 0) return null;
    const flat = (await this.#hot.call('HGETALL', poolKeys(pool).pool)) as string[];
    const status: PoolStatus = { mode: 'hard', held: 0n, overdraft: 0n, remaining: new Map() };
    for (let i = 0; i + 1 < flat.length; i += 2) {
      const field = flat[i]!;
      const value = flat[i + 1]!;
      if (field === 'mode') status.mode = value === 'soft' ? 'soft' : 'hard';
      else if (field === 'held') status.held = BigInt(value);
      else if (field === 'od') status.overdraft = BigInt(value);
      else if (field.startsWith('r:')) status.remaining.set(field.slice(2), BigInt(value));
    }
    return status;
  }

  async setMode(pool: PoolRef & { mode: 'hard' | 'soft' }): Promise<void> {
    await this.#run(pool, setModeScript, [pool.mode]);
  }

  /**
   * Loads one customer's hot state from PostgreSQL. When Redis lost the customer's keys (all of
   * Redis flushed recently, or the customer loaded before and now missing: one shard of a
   * Redis Cluster may lose its keys while the rest keep theirs), it first waits out the publish
   * bound, so every event published before the loss is in the stream, then waits for the
   * worker to apply the stream.
   */
  rebuild(tenant: string, customerId: string): Promise<void> {
    const key = `${tenant}\u0000${customerId}`;
    let pending = this.#rebuilding.get(key);
    if (!pending) {
      pending = this.#load(tenant, customerId).finally(() => this.#rebuilding.delete(key));
      this.#rebuilding.set(key, pending);
    }
    return pending;
  }

  async #load(tenant: string, customerId: string): Promise<void> {
    const now = Date.now();
    await waitOutHotLoss({
      hot: this.#hot,
      fence: this.#fence,
      tenant,
      customerId,
      publishBoundMs: this.#publisher.publishBoundMs,
      now,
    });
    await this.#ledger.caughtUp();
    const snapshot = await this.#ledger.snapshot(tenant, customerId);
    const c = customerKeys(tenant, customerId);
    const keys = [c.loaded, c.done, c.donex];
    const pools = snapshot.pools.map((p) => {
      const k = poolKeys({ tenant, customerId, creditType: p.creditType, resourceId: p.resourceId });
      keys.push(k.pool, k.holds, k.holdsx);
      return {
        mode: p.mode,
        held: p.holds.reduce((sum, h) => sum + h.amount, 0n).toString(),
        od: p.overdraft.toString(),
        grants: p.grants.map((g) => ({ id: g.id, meta: g.meta, remaining: g.remaining.toString() })),
        retired: p.retired.map((x) => ({ id: x.id, kind: x.kind, amount: x.amount.toString() })),
        holds: p.holds.map((h) => ({
          id: h.id,
          amount: h.amount.toString(),
          expiresAt: String(h.expiresAt),
        })),
      };
    });
    const done = snapshot.done.map((d) => ({
      id: d.holdId,
      outcome: JSON.stringify(d.outcome),
      at: String(d.at),
    }));
    await this.#hot.run(loadCustomerScript, keys, [JSON.stringify({ pools, done }), String(now)]);
  }

  /**
   * One reserve, settle or release, in the pool's next group; `then` turns its reply into the
   * answer (publishing what it decided). The answer waits for the holds the group swept to be
   * published too: published first, they share the message of the group's own events.
   */
  async #hold<T>(
    pool: PoolRef,
    kind: HoldOp['kind'],
    args: HoldOp['args'],
    then: (reply: ScriptReply) => Promise<T>,
  ): Promise<T> {
    const group = `${pool.tenant}\u0000${pool.customerId}\u0000${pool.creditType}\u0000${pool.resourceId ?? ''}`;
    const { reply, swept } = await this.#holds.submit(group, { pool, kind, args });
    try {
      return await then(reply);
    } finally {
      await swept;
    }
  }

  /** A group of one pool's hold operations as one script. */
  async #runHolds(ops: HoldOp[]): Promise<GroupReply[]> {
    const pool = ops[0]!.pool;
    const args = ['1'];
    for (const op of ops) args.push(op.kind, ...op.args);
    const reply = await this.#run(pool, holdScript, args);
    // Best effort, like the sweeper whose work it does: on failure they are republished.
    const swept = this.#publishQuietly(pool, expiredHoldEvents(pool, reply.swept));
    return (reply.replies as ScriptReply[]).map((one) => ({ reply: one, swept }));
  }

  async #run(pool: PoolRef, script: HotScript, args: string[]): Promise<ScriptReply> {
    const keys = poolScriptKeys(pool);
    for (let attempt = 0; ; attempt++) {
      let raw: unknown;
      try {
        raw = await this.#hot.run(script, keys, args);
      } catch (error) {
        throw new AppError('unavailable', `credits hot state unreachable: ${(error as Error).message}`);
      }
      const reply = JSON.parse(String(raw)) as ScriptReply;
      if (reply.status !== 'not_loaded') return reply;
      if (attempt > 0) throw new AppError('unavailable', 'credits hot state is being rebuilt; retry shortly');
      await this.rebuild(pool.tenant, pool.customerId);
    }
  }

  async #undo(pool: PoolRef, holdId: string): Promise<void> {
    // Alone and without a sweep: its reply must not wait on, or publish for, other holds.
    await this.#hot.run(holdScript, poolScriptKeys(pool), ['0', 'u', holdId, '', '']).catch(() => {
      // Redis is unreachable too: the hold lapses at its TTL and the sweep records that.
    });
  }

  /** Applied in Redis but not durable: 503, and a retry publishes the same events again. */
  async #record(pool: PoolRef, events: CreditEvent[], what: string): Promise<void> {
    try {
      await this.#publisher.publish(pool.customerId, events);
    } catch (error) {
      this.#publisher.retryLater(pool.customerId, events);
      throw new AppError('unavailable', `${what} could not be recorded: ${(error as Error).message}`);
    }
  }

  /** Side events (expired holds noticed on the way): best effort, the sweeper catches up on failure. */
  async #publishQuietly(pool: PoolRef, events: CreditEvent[]): Promise<void> {
    await this.#publisher
      .publish(pool.customerId, events)
      .catch(() => this.#publisher.retryLater(pool.customerId, events));
  }
}
