/**
 * The gate: the decision waterfall on every request, then the settle or release of what it
 * reserved.
 *
 * In memory, from configuration: the customer, blocks (kill switch), the feature, the
 * customer's effective entitlement, the credit rate and the cost, the limits and budgets that
 * match the request's dimensions (its entities' ancestors included). Then one script on the
 * customer's keys checks every counter and the credit pool and, only if all of them allow,
 * holds on all of them at once (see decide-script.ts). What it decided is appended to the
 * hot-path stream (the credit events and the decision record in one message) before the
 * caller hears "allow"; an allow that cannot be recorded is undone and answered 503.
 */
import type { decisions } from '@allot/contracts';
import {
  type CreditEvent,
  type CreditEventPublisher,
  type CreditsEngine,
  expiredHoldEvents,
  formatAmount,
  type HoldReply,
  type HotPathRecord,
  holdEvent,
  type PoolRef,
  parseAmount,
  poolScriptKeys,
  releaseOutcome,
  settleOutcome,
} from '@allot/credits';
import {
  amountFor,
  blockMatches,
  counterId,
  type DecisionRecord,
  type EndedRecord,
  effectiveDimensions,
  type GovernanceHotState,
  governanceKeys,
  type LimitSpec,
  ONE,
  type Part,
  rollingBucketMs,
  type SettledRecord,
  scopeMatches,
  type WindowClock,
} from '@allot/governance';
import { AppError, GroupCommit } from '@allot/kit';
import type { HotState } from '@allot/kit/hot';
import type { z } from 'zod';
import type { Catalog, CustomerView } from './catalog.ts';
import { FormulaError } from './domain/formula.ts';
import { digest, parseReservationId, type ReservationRef, randomNonce, reservationId } from './domain/ids.ts';
import { decideScript } from './store/decide-script.ts';

type DecisionRequest = decisions.DecisionRequest;
type Decision = decisions.Decision;
type DenyReason = decisions.DenyReason;
export type Settlement = z.output<typeof decisions.settlement>;

export interface GateEngineOptions {
  hot: HotState;
  publisher: CreditEventPublisher;
  catalog: Catalog;
  /** Rebuilds a customer's credit part of the hot state. */
  credits: CreditsEngine;
  /** Rebuilds a customer's governance part of the hot state. */
  governance: GovernanceHotState;
  windows: WindowClock;
  /** When the hot state cannot be reached: false (default) answers 503, true allows without a reservation. */
  failOpen?: boolean;
  log?: { warn(obj: object, msg: string): void };
  /** Most operations of one customer and pool in one script call. Default 128. */
  maxGroup?: number;
  /** The time periods are computed at (tests move it with the embedded hot state's clock). */
  clock?: () => number;
}

interface Counter {
  spec: LimitSpec;
  cid: string;
  amount: bigint;
  ws: number;
  we: number;
}

interface OpReply {
  reply: Record<string, unknown>;
  /** Publication of what the group swept (lapsed holds and reservations); never rejects. */
  side: Promise<void>;
}

const KIND_CHAR: Record<LimitSpec['kind'], string> = {
  budget: 'b',
  entitlement: 'e',
  rate: 'r',
  concurrency: 'c',
};
const METRIC_CHAR = { credits: 'c', units: 'u', requests: 'q' } as const;
const DIMS_FOR_SETTLE_MAX = 4096;

export class GateEngine {
  readonly #hot: HotState;
  readonly #publisher: CreditEventPublisher;
  readonly #catalog: Catalog;
  readonly #credits: CreditsEngine;
  readonly #governance: GovernanceHotState;
  readonly #windows: WindowClock;
  readonly #failOpen: boolean;
  readonly #log: GateEngineOptions['log'];
  readonly #groups: GroupCommit<{ pool: PoolRef; args: string[] }, OpReply>;
  readonly #clock: () => number;

  constructor(options: GateEngineOptions) {
    this.#hot = options.hot;
    this.#publisher = options.publisher;
    this.#catalog = options.catalog;
    this.#credits = options.credits;
    this.#governance = options.governance;
    this.#windows = options.windows;
    this.#failOpen = options.failOpen ?? false;
    this.#log = options.log;
    this.#clock = options.clock ?? Date.now;
    this.#groups = new GroupCommit((_, ops) => this.#runGroup(ops), { maxGroup: options.maxGroup ?? 128 });
  }

  /** The digest a decision's idempotency key is replayed under. */
  static decisionKey(customerId: string, idempotencyKey: string): string {
    return digest('decision', customerId, idempotencyKey);
  }

  async decide(tenant: string, request: DecisionRequest): Promise<Decision> {
    const units = unitsOf(request.units);
    const catalog = this.#catalog.tenant(tenant);
    const view = catalog.customer(request.customerId);
    const rate = view?.rates.get(request.feature);
    const ref: ReservationRef = {
      customerId: request.customerId,
      feature: request.feature,
      creditType: rate?.creditType ?? '',
      resourceId: request.resourceId ?? '',
    };
    const key = request.idempotencyKey
      ? GateEngine.decisionKey(request.customerId, request.idempotencyKey)
      : '';
    const id = reservationId(ref, key ? digest(tenant, key) : randomNonce());
    const early = (reason: DenyReason, decidedBy: string, message: string) =>
      this.#recordEarly(tenant, request, id, units, { reason, decidedBy, message }, view);

    if (!view)
      return early(
        'customer_not_found',
        `customer:${request.customerId}`,
        `customer '${request.customerId}' not found`,
      );
    const dims = effectiveDimensions(view.tree, request.dimensions);
    for (const block of catalog.blocks) {
      if (blockMatches(block.scope, request.customerId, dims)) {
        return early('blocked', `block:${block.id}`, block.reason ?? `blocked by '${block.id}'`);
      }
    }
    if (!catalog.feature(request.feature)) {
      return early(
        'feature_not_found',
        `feature:${request.feature}`,
        `feature '${request.feature}' not found`,
      );
    }
    const entitlement = view.entitlements.get(request.feature);
    if (!entitlement?.enabled) {
      return early(
        'not_entitled',
        `entitlement:${request.feature}`,
        `the plan does not include '${request.feature}'`,
      );
    }
    let cost: bigint | null = null;
    if (rate) {
      try {
        cost = rate.cost(units, request.dimensions);
      } catch (error) {
        if (error instanceof FormulaError) {
          throw new AppError(
            'unprocessable',
            `dimensions: the credit rate of '${request.feature}' ${error.message}`,
          );
        }
        throw error;
      }
    }
    const counters = this.#counters(view, request.feature, dims, {
      units,
      cost,
      creditType: rate?.creditType ?? null,
    });
    // Only a decision that can be retried needs the digest that tells its retries apart.
    const hash = !key
      ? ''
      : digest(
          JSON.stringify([
            request.customerId,
            request.feature,
            request.units,
            request.dimensions,
            ref.resourceId,
            request.ttlMs,
          ]),
        );
    const dimsForSettle = rate?.usesDimensions ? JSON.stringify(request.dimensions) : 'null';
    if (dimsForSettle.length > DIMS_FOR_SETTLE_MAX) {
      throw new AppError('unprocessable', `dimensions: at most ${DIMS_FOR_SETTLE_MAX} characters of JSON`);
    }
    const args = [
      'd',
      id,
      key,
      hash,
      String(request.ttlMs),
      cost === null ? '' : cost.toString(),
      key ? '0' : '1',
      String(counters.length),
      units.toString(),
      dimsForSettle,
    ];
    for (const c of counters) {
      const period = c.spec.period;
      const rms = period.kind === 'rolling' ? period.ms : 0;
      const bms = rms > 0 ? rollingBucketMs(rms) : 0;
      const metric = c.spec.kind === 'concurrency' ? 'q' : METRIC_CHAR[c.spec.metric.kind];
      const hardLimit = c.spec.mode === 'hard' && c.spec.kind !== 'rate' ? Number(c.spec.limit) : -1;
      const part: Part = [
        c.cid,
        KIND_CHAR[c.spec.kind] as Part[1],
        Number(c.amount),
        c.ws,
        rms,
        bms,
        metric,
        hardLimit,
      ];
      args.push(
        c.cid,
        KIND_CHAR[c.spec.kind],
        c.spec.mode === 'hard' ? '1' : '0',
        c.spec.limit.toString(),
        c.amount.toString(),
        String(c.ws),
        String(c.we),
        String(rms),
        String(bms),
        metric,
        JSON.stringify(part),
      );
    }
    const pool: PoolRef = {
      tenant,
      customerId: request.customerId,
      creditType: ref.creditType,
      resourceId: ref.resourceId,
    };

    let result: OpReply;
    try {
      result = await this.#groups.submit(groupKey(pool), { pool, args });
    } catch (error) {
      if (this.#failOpen && error instanceof AppError && error.code === 'unavailable') {
        return this.#failedOpen(tenant, request, units, cost, rate?.creditType ?? null, view, error.message);
      }
      throw error;
    }
    try {
      const reply = result.reply;
      if (reply.d === 'conflict') {
        throw new AppError('idempotency_conflict', 'this idempotencyKey was used for another decision');
      }
      if (reply.d === 'replay') {
        const stored = reply.stored as { h: string; r?: Record<string, unknown>; a?: Decision };
        if (stored.h !== hash) {
          throw new AppError('idempotency_conflict', 'this idempotencyKey was used with a different request');
        }
        if (stored.a) return stored.a;
        return this.#answer(id, stored.r!, counters, view, cost, rate?.creditType ?? null).answer;
      }
      const { answer, allowed } = this.#answer(id, reply, counters, view, cost, rate?.creditType ?? null);
      const record: DecisionRecord = {
        id: `d:${id}`,
        type: 'decision',
        at: Number(reply.at),
        tenant,
        customerId: request.customerId,
        decisionId: id,
        feature: request.feature,
        units: units.toString(),
        dimensions: Object.fromEntries(dims),
        decision: answer.decision,
        reason: answer.reason,
        decidedBy: answer.decidedBy,
        cost: cost === null ? null : cost.toString(),
        creditType: rate?.creditType ?? null,
        resourceId: ref.resourceId,
        idempotencyKey: request.idempotencyKey ?? null,
        requestHash: key ? hash : null,
        expiresAt: allowed ? Number(reply.exp) : null,
        parts: allowed ? counters.map((_, i) => JSON.parse(args[10 + i * 11 + 10]!) as Part) : [],
        answer: answer as unknown as Record<string, unknown>,
      };
      const events: CreditEvent[] = [];
      if (allowed && cost !== null) {
        events.push(
          holdEvent(pool, `r:${id}`, Number(reply.at), {
            type: 'hold.reserved' as const,
            holdId: id,
            amount: cost.toString(),
            expiresAt: Number(reply.exp),
            idempotencyKey: request.idempotencyKey ?? null,
            metadata: { feature: request.feature },
          }),
        );
      }
      try {
        await this.#publisher.publish(request.customerId, events, [record as unknown as HotPathRecord]);
      } catch (error) {
        if (!allowed) {
          // A deny holds nothing: answer it, and let the record follow in the background.
          this.#publisher.retryLater(request.customerId, [], [record as unknown as HotPathRecord]);
          return answer;
        }
        await this.#undo(pool, id, key);
        throw new AppError('unavailable', `the decision could not be recorded: ${(error as Error).message}`);
      }
      return answer;
    } finally {
      await result.side;
    }
  }

  /** Commits the actual usage of a reservation; what was held and not used goes back. */
  async settle(
    tenant: string,
    id: string,
    body: { units?: string; dimensions?: Record<string, string | number> },
  ) {
    const ref = parseReservationId(id);
    if (!ref) throw new AppError('not_found', `reservation ${id} not found`);
    const pool: PoolRef = {
      tenant,
      customerId: ref.customerId,
      creditType: ref.creditType,
      resourceId: ref.resourceId,
    };
    const units = body.units === undefined ? null : unitsOf(body.units);
    let cost: bigint | null = null;
    if (ref.creditType !== '' && (units !== null || body.dimensions !== undefined)) {
      const rate = this.#catalog.tenant(tenant).customer(ref.customerId)?.rates.get(ref.feature);
      if (rate && rate.creditType === ref.creditType) {
        try {
          if (!rate.usesDimensions) {
            if (units !== null) cost = rate.cost(units, {});
          } else {
            const held = await this.#reservationRecord(pool, id);
            if (held) {
              cost = rate.cost(units ?? BigInt(held.u), { ...(held.d ?? {}), ...(body.dimensions ?? {}) });
            }
          }
        } catch (error) {
          if (error instanceof FormulaError) {
            throw new AppError(
              'unprocessable',
              `dimensions: the credit rate of '${ref.feature}' ${error.message}`,
            );
          }
          throw error;
        }
      }
    }
    const args = ['s', id, units === null ? '' : units.toString(), cost === null ? '' : cost.toString()];
    const result = await this.#groups.submit(groupKey(pool), { pool, args });
    try {
      const reply = result.reply;
      if (reply.s === 'not_found') throw new AppError('not_found', `reservation ${id} not found`);
      if (reply.s === 'released_before') {
        throw new AppError('conflict', `reservation ${id} was released; it cannot be settled`);
      }
      const replay = reply.s === 'replay';
      const settled = (replay ? reply.stored : reply) as Record<string, unknown>;
      const credit = settled.credit as HoldReply | null;
      let answer: Settlement;
      const events: CreditEvent[] = [];
      if (credit && credit.status !== 'not_found') {
        const outcome = settleOutcome(pool, id, credit);
        events.push(...outcome.events);
        answer = {
          reservationId: id,
          status: 'settled',
          settled: formatAmount(outcome.result.settled),
          released: formatAmount(outcome.result.released),
          overage: formatAmount(outcome.result.overage),
          cost: { creditType: ref.creditType, amount: formatAmount(BigInt(settled.cost as number)) },
          balance: {
            creditType: ref.creditType,
            available: formatAmount(BigInt((credit.available as string) ?? '0')),
          },
        };
      } else {
        answer = {
          reservationId: id,
          status: 'settled',
          settled: '0',
          released: '0',
          overage: '0',
          cost: null,
          balance: null,
        };
      }
      if (replay) return answer;
      const record: SettledRecord = {
        id: `s:${id}`,
        type: 'settled',
        at: Number(settled.at),
        tenant,
        customerId: ref.customerId,
        reservationId: id,
        feature: ref.feature,
        creditType: ref.creditType,
        units: String(settled.units),
        cost: String(settled.cost),
        late: settled.late === true,
        used: settled.used as SettledRecord['used'],
        answer,
      };
      try {
        await this.#publisher.publish(ref.customerId, events, [record as unknown as HotPathRecord]);
      } catch (error) {
        // Applied in Redis: republished in the background; a retry replays the same answer.
        this.#publisher.retryLater(ref.customerId, events, [record as unknown as HotPathRecord]);
        throw new AppError('unavailable', `the settle could not be recorded: ${(error as Error).message}`);
      }
      return answer;
    } finally {
      await result.side;
    }
  }

  /** Gives the whole reservation back. */
  async release(tenant: string, id: string): Promise<Settlement> {
    const ref = parseReservationId(id);
    if (!ref) throw new AppError('not_found', `reservation ${id} not found`);
    const pool: PoolRef = {
      tenant,
      customerId: ref.customerId,
      creditType: ref.creditType,
      resourceId: ref.resourceId,
    };
    const result = await this.#groups.submit(groupKey(pool), { pool, args: ['l', id] });
    try {
      const reply = result.reply;
      if (reply.s === 'not_found') throw new AppError('not_found', `reservation ${id} not found`);
      if (reply.s === 'settled_before') {
        throw new AppError('conflict', `reservation ${id} was settled; it cannot be released`);
      }
      const empty = {
        reservationId: id,
        status: 'released' as const,
        settled: '0',
        overage: '0',
        cost: null,
        balance: null,
      };
      if (reply.s === 'expired') return { ...empty, released: '0' };
      const replay = reply.s === 'replay';
      const released = (replay ? reply.stored : reply) as Record<string, unknown>;
      const credit = released.credit as HoldReply | null;
      const events: CreditEvent[] = [];
      let amount = 0n;
      if (credit && credit.status !== 'not_found') {
        const outcome = releaseOutcome(pool, id, credit);
        amount = outcome.result.released;
        events.push(outcome.event);
      }
      const answer = { ...empty, released: formatAmount(amount) };
      if (replay) return answer;
      const record: EndedRecord = {
        id: `l:${id}`,
        type: 'released',
        at: Number(released.at),
        tenant,
        customerId: ref.customerId,
        reservationId: id,
        reason: 'released',
      };
      try {
        await this.#publisher.publish(ref.customerId, events, [record as unknown as HotPathRecord]);
      } catch (error) {
        this.#publisher.retryLater(ref.customerId, events, [record as unknown as HotPathRecord]);
        throw new AppError('unavailable', `the release could not be recorded: ${(error as Error).message}`);
      }
      return answer;
    } finally {
      await result.side;
    }
  }

  /** The counters a request lands in, in waterfall order: rate, concurrency, entitlement limit, budgets. */
  #counters(
    view: CustomerView,
    feature: string,
    dims: ReadonlyMap<string, string>,
    request: { units: bigint; cost: bigint | null; creditType: string | null },
  ): Counter[] {
    const out: Counter[] = [];
    const now = this.#clock();
    const entitlementLimit = view.entitlementLimits.get(feature);
    const consider = (spec: LimitSpec) => {
      if (!scopeMatches(spec.scope, dims)) return;
      const amount = amountFor(spec, {
        feature,
        units: request.units,
        cost: request.cost ?? 0n,
        creditType: request.creditType,
      });
      if (amount === null) return;
      const window =
        spec.period.kind === 'rolling'
          ? { start: 0, end: 0 }
          : this.#windows.window(spec.period, spec.timeZone, now);
      out.push({ spec, cid: counterId(spec.id, spec.scope, dims), amount, ws: window.start, we: window.end });
    };
    let entitlementDone = entitlementLimit === undefined;
    for (const spec of view.limits) {
      if (!entitlementDone && spec.kind === 'budget') {
        consider(entitlementLimit!);
        entitlementDone = true;
      }
      consider(spec);
    }
    if (!entitlementDone) consider(entitlementLimit!);
    return out;
  }

  /** The caller's answer from a decide reply. */
  #answer(
    id: string,
    reply: Record<string, unknown>,
    counters: readonly Counter[],
    view: CustomerView,
    cost: bigint | null,
    creditType: string | null,
  ): { answer: Decision; allowed: boolean } {
    const allowed = reply.d === 'allow';
    const states = (reply.c as [number, number][] | undefined) ?? [];
    const limits = counters.map((c, i) => {
      const [used = 0, held = 0] = states[i] ?? [];
      let inUse: bigint;
      const mine = allowed ? c.amount : 0n;
      if (c.spec.kind === 'rate') inUse = BigInt(used) + mine;
      else if (c.spec.kind === 'concurrency') inUse = BigInt(held) + (allowed ? ONE : 0n);
      else inUse = BigInt(used) + BigInt(held) + mine;
      const remaining = c.spec.limit > inUse ? c.spec.limit - inUse : 0n;
      return {
        id: c.spec.id,
        kind: c.spec.kind,
        scope: concreteScopeOf(c),
        limit: formatAmount(c.spec.limit),
        used: formatAmount(inUse),
        remaining: formatAmount(remaining),
      };
    });
    const avail = reply.avail as string | null;
    const balance =
      creditType !== null && avail !== null && avail !== undefined
        ? { creditType, available: formatAmount(BigInt(avail)) }
        : null;
    const costView = creditType !== null && cost !== null ? { creditType, amount: formatAmount(cost) } : null;
    if (allowed) {
      return {
        allowed,
        answer: {
          decisionId: id,
          decision: 'allow',
          reason: null,
          message: null,
          reservationId: id,
          expiresAt: new Date(Number(reply.exp)).toISOString(),
          cost: costView,
          balance,
          limits,
          config: view.config,
          retryAfterMs: null,
          decidedBy: null,
        },
      };
    }
    const reason = reply.r as DenyReason;
    const by = Number(reply.by);
    const counter = by > 0 ? counters[by - 1] : undefined;
    const decidedBy = counter ? `${counter.spec.kind}:${counter.spec.id}` : `pool:${creditType ?? ''}`;
    const message = counter
      ? `${counter.spec.kind} '${counter.spec.id}' is at its limit of ${formatAmount(counter.spec.limit)}`
      : `not enough ${creditType ?? 'credits'}: ${balance?.available ?? '0'} available, ${costView?.amount ?? '0'} needed`;
    const retry = Number(reply.retry ?? 0);
    return {
      allowed,
      answer: {
        decisionId: id,
        decision: 'deny',
        reason,
        message,
        reservationId: null,
        expiresAt: null,
        cost: costView,
        balance,
        limits,
        config: view.config,
        retryAfterMs: reason === 'rate_limited' && retry > 0 ? retry : null,
        decidedBy,
      },
    };
  }

  /** A deny decided in memory (no hot state touched), recorded like any other. */
  async #recordEarly(
    tenant: string,
    request: DecisionRequest,
    id: string,
    units: bigint,
    deny: { reason: DenyReason; decidedBy: string; message: string },
    view: CustomerView | null,
  ): Promise<Decision> {
    const answer: Decision = {
      decisionId: id,
      decision: 'deny',
      reason: deny.reason,
      message: deny.message,
      reservationId: null,
      expiresAt: null,
      cost: null,
      balance: null,
      limits: [],
      config: view?.config ?? {},
      retryAfterMs: null,
      decidedBy: deny.decidedBy,
    };
    await this.#recordUnreserved(tenant, request, units, answer, null, null);
    return answer;
  }

  /** Fail-open: allowed without the hot state, so nothing is reserved or counted. */
  async #failedOpen(
    tenant: string,
    request: DecisionRequest,
    units: bigint,
    cost: bigint | null,
    creditType: string | null,
    view: CustomerView,
    why: string,
  ): Promise<Decision> {
    this.#log?.warn(
      { tenant, customerId: request.customerId, why },
      'gate: hot state unreachable, allowing (fail-open)',
    );
    const id = `fo_${randomNonce()}`;
    const answer: Decision = {
      decisionId: id,
      decision: 'allow',
      reason: null,
      message: 'allowed without checking limits or credits: the hot state is unreachable (fail-open)',
      reservationId: null,
      expiresAt: null,
      cost: creditType !== null && cost !== null ? { creditType, amount: formatAmount(cost) } : null,
      balance: null,
      limits: [],
      config: view.config,
      retryAfterMs: null,
      decidedBy: 'fail_open',
    };
    await this.#recordUnreserved(tenant, request, units, answer, cost, creditType);
    return answer;
  }

  /** Records a decision that holds nothing (an early deny, a fail-open allow); never rejects. */
  async #recordUnreserved(
    tenant: string,
    request: DecisionRequest,
    units: bigint,
    answer: Decision,
    cost: bigint | null,
    creditType: string | null,
  ): Promise<void> {
    const record: DecisionRecord = {
      id: `d:${answer.decisionId}`,
      type: 'decision',
      at: Date.now(),
      tenant,
      customerId: request.customerId,
      decisionId: answer.decisionId,
      feature: request.feature,
      units: units.toString(),
      dimensions: Object.fromEntries(Object.entries(request.dimensions).map(([k, v]) => [k, String(v)])),
      decision: answer.decision,
      reason: answer.reason,
      decidedBy: answer.decidedBy,
      cost: cost === null ? null : cost.toString(),
      creditType,
      resourceId: request.resourceId ?? '',
      idempotencyKey: request.idempotencyKey ?? null,
      requestHash: null,
      expiresAt: null,
      parts: [],
      answer: answer as unknown as Record<string, unknown>,
    };
    const records = [record as unknown as HotPathRecord];
    await this.#publisher
      .publish(request.customerId, [], records)
      .catch(() => this.#publisher.retryLater(request.customerId, [], records));
  }

  /** The reservation as the hot state keeps it, for a settle whose cost needs its dimensions. */
  async #reservationRecord(
    pool: PoolRef,
    id: string,
  ): Promise<{ u: number; d: Record<string, string | number> | null } | null> {
    const [, , res] = governanceKeys(pool.tenant, pool.customerId);
    let raw = await this.#hot.call('HGET', res!, id).catch(() => null);
    if (raw === null) {
      const [, , , , done] = governanceKeys(pool.tenant, pool.customerId);
      raw = await this.#hot.call('HGET', done!, `x:${id}`).catch(() => null);
    }
    return raw === null
      ? null
      : (JSON.parse(String(raw)) as { u: number; d: Record<string, string | number> | null });
  }

  async #undo(pool: PoolRef, id: string, key: string): Promise<void> {
    const keys = [...poolScriptKeys(pool), ...governanceKeys(pool.tenant, pool.customerId)];
    await this.#hot.run(decideScript, keys, ['0', 'u', id, key]).catch(() => {
      // Redis is unreachable too: the reservation lapses at its TTL.
    });
  }

  /** One script call for a group of one customer's operations on one pool. */
  async #runGroup(ops: { pool: PoolRef; args: string[] }[]): Promise<OpReply[]> {
    const pool = ops[0]!.pool;
    const keys = [...poolScriptKeys(pool), ...governanceKeys(pool.tenant, pool.customerId)];
    const args = ['1'];
    for (const op of ops) for (const arg of op.args) args.push(arg);
    let reply: {
      status: string;
      what?: string;
      swept?: unknown;
      expired?: string[];
      replies?: Record<string, unknown>[];
    };
    for (let attempt = 0; ; attempt++) {
      let raw: unknown;
      try {
        raw = await this.#hot.run(decideScript, keys, args);
      } catch (error) {
        throw new AppError('unavailable', `the gate's hot state is unreachable: ${(error as Error).message}`);
      }
      reply = JSON.parse(String(raw));
      if (reply.status !== 'not_loaded') break;
      if (attempt >= 2) throw new AppError('unavailable', 'the hot state is being rebuilt; retry shortly');
      if (reply.what === 'credits') await this.#credits.rebuild(pool.tenant, pool.customerId);
      else await this.#rebuildGovernance(pool.tenant, pool.customerId);
    }
    const side = this.#publishSwept(pool, reply.swept, reply.expired ?? []);
    return (reply.replies ?? []).map((one) => ({ reply: one, side }));
  }

  #rebuildGovernance(tenant: string, customerId: string): Promise<void> {
    const catalog = this.#catalog.tenant(tenant);
    const view = catalog.customer(customerId);
    const specs = new Map<string, LimitSpec>();
    for (const spec of catalog.budgets(customerId)) specs.set(spec.id, spec);
    for (const spec of view?.entitlementLimits.values() ?? []) specs.set(spec.id, spec);
    return this.#governance.rebuild(tenant, customerId, (id) => specs.get(id));
  }

  /** Lapsed holds and reservations a group found: best effort, like the sweepers whose work it does. */
  async #publishSwept(pool: PoolRef, swept: unknown, expired: readonly string[]): Promise<void> {
    const events = expiredHoldEvents(pool, swept);
    const records: EndedRecord[] = expired.map((reservation) => ({
      id: `x:${reservation}`,
      type: 'released',
      at: Date.now(),
      tenant: pool.tenant,
      customerId: pool.customerId,
      reservationId: reservation,
      reason: 'expired',
    }));
    if (events.length === 0 && records.length === 0) return;
    const all = records as unknown as HotPathRecord[];
    await this.#publisher
      .publish(pool.customerId, events, all)
      .catch(() => this.#publisher.retryLater(pool.customerId, events, all));
  }
}

function unitsOf(text: string): bigint {
  try {
    return parseAmount(text);
  } catch (error) {
    throw new AppError('unprocessable', `units: ${(error as Error).message}`);
  }
}

function groupKey(pool: PoolRef): string {
  return `${pool.tenant}\u0000${pool.customerId}\u0000${pool.creditType}\u0000${pool.resourceId ?? ''}`;
}

function concreteScopeOf(c: Counter): Record<string, string> {
  // The counter id holds the values `*` took; fixed values are the scope's own.
  const out: Record<string, string> = {};
  const parts = c.cid.split('\u001f').slice(1);
  for (const key of Object.keys(c.spec.scope).sort()) out[key] = c.spec.scope[key]!;
  for (const part of parts) {
    const eq = part.indexOf('=');
    out[part.slice(0, eq)] = part.slice(eq + 1);
  }
  return out;
}
