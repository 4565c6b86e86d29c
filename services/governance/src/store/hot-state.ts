/**
 * The governance part of a customer's hot state: its keys, and its rebuild from PostgreSQL
 * after Redis lost it (or before the customer's first decision).
 */
import { type HotScript, type HotState, hotKey, waitOutHotLoss } from '@allot/kit/hot';
import type { SqlExecutor } from '@allot/kit/sql';
import type { LimitSpec } from '../domain/limits.ts';
import type { WindowClock } from '../domain/periods.ts';
import { rollingBucketMs } from '../domain/periods.ts';
import { parseCounterId } from '../domain/scope.ts';
import { governanceSnapshot } from './ledger.ts';

/** The governance keys of one customer, in the order governanceLua reads them (KEYS[7..12]). */
export function governanceKeys(tenant: string, customerId: string): string[] {
  return ['loaded', 'counters', 'res', 'resx', 'done', 'donex'].map((part) =>
    hotKey(tenant, customerId, 'gov', part),
  );
}

/** The same time the credits hot state uses to know when Redis lost its data. */
const RS = '\u001e';
const ONE = 1_000_000n;
const REPLAY_MS = 15 * 60_000;

/** The digest a decision's idempotency key is kept under (d:<digest> in `done`). */
export type DecisionKeyOf = (customerId: string, idempotencyKey: string) => string;

const loadScript: HotScript = {
  name: 'governance.load_customer',
  lua: `
if redis.call('EXISTS', KEYS[1]) == 1 then return 'already_loaded' end
local state = cjson.decode(ARGV[1])
redis.call('DEL', KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6])
for _, f in ipairs(state.fields) do redis.call('HSET', KEYS[2], f[1], f[2]) end
for _, r in ipairs(state.reservations) do
  redis.call('HSET', KEYS[3], r[1], r[2])
  redis.call('ZADD', KEYS[4], r[3], r[1])
end
for _, d in ipairs(state.done) do
  redis.call('HSET', KEYS[5], d[1], d[2])
  redis.call('ZADD', KEYS[6], d[3], d[1])
end
redis.call('SET', KEYS[1], ARGV[2])
return 'loaded'
`,
};

export interface GovernanceHotStateOptions {
  hot: HotState;
  sql: SqlExecutor;
  /** Resolves once the hot-path stream is applied to PostgreSQL up to now. */
  caughtUp(): Promise<void>;
  /** How long a publish may take before it has certainly ended (the publisher's bound). */
  publishBoundMs: number;
  /** Tells whether a customer being loaded was loaded before (kit's HotLoadFence). */
  fence?: { loadedBefore(tenant: string, customerId: string): Promise<boolean> };
  windows: WindowClock;
  decisionKey: DecisionKeyOf;
  clock?: () => number;
}

export class GovernanceHotState {
  readonly #options: GovernanceHotStateOptions;
  readonly #rebuilding = new Map<string, Promise<void>>();

  constructor(options: GovernanceHotStateOptions) {
    this.#options = options;
  }

  /**
   * Loads one customer's counters, active reservations and recent replays from PostgreSQL.
   * `specOf` gives the current configuration of a budget (or entitlement limit) by id; usage of
   * counters without one is not loaded (the budget is gone).
   */
  rebuild(tenant: string, customerId: string, specOf: (id: string) => LimitSpec | undefined): Promise<void> {
    const key = `${tenant}\u0000${customerId}`;
    let pending = this.#rebuilding.get(key);
    if (!pending) {
      pending = this.#load(tenant, customerId, specOf).finally(() => this.#rebuilding.delete(key));
      this.#rebuilding.set(key, pending);
    }
    return pending;
  }

  async #load(
    tenant: string,
    customerId: string,
    specOf: (id: string) => LimitSpec | undefined,
  ): Promise<void> {
    const { hot, sql, windows } = this.#options;
    const now = (this.#options.clock ?? Date.now)();
    await waitOutHotLoss({
      hot,
      fence: this.#options.fence,
      tenant,
      customerId,
      publishBoundMs: this.#options.publishBoundMs,
      now,
    });
    await this.#options.caughtUp();

    const longestRolling = 366 * 24 * 3600_000;
    const snapshot = await governanceSnapshot(sql, tenant, customerId, {
      // Calendar windows start at most a year back; rolling buckets within a year.
      usageSince: now - longestRolling - 24 * 3600_000,
      replaySince: now - REPLAY_MS,
    });
    const fields = new Map<string, string>();
    const held = new Map<string, bigint>();
    for (const r of snapshot.reservations) {
      for (const [cid, kind, amount] of r.parts) {
        if (kind === 'b' || kind === 'e') held.set(cid, (held.get(cid) ?? 0n) + BigInt(amount));
        else if (kind === 'c') held.set(cid, (held.get(cid) ?? 0n) + ONE);
      }
    }
    const rolling = new Map<string, { sum: bigint; lo: number }>();
    for (const u of snapshot.usage) {
      const spec = specOf(parseCounterId(u.counterId).budgetId);
      if (!spec) continue;
      if (spec.period.kind === 'rolling') {
        const bms = rollingBucketMs(spec.period.ms);
        if (u.windowStart < now - spec.period.ms) continue;
        const idx = Math.floor(u.windowStart / bms);
        fields.set(`${u.counterId}${RS}b${idx}`, u.used.toString());
        const r = rolling.get(u.counterId) ?? { sum: 0n, lo: idx };
        r.sum += u.used;
        r.lo = Math.min(r.lo, idx);
        rolling.set(u.counterId, r);
      } else {
        const window = windows.window(spec.period, spec.timeZone, now);
        if (u.windowStart !== window.start) continue;
        fields.set(`${u.counterId}${RS}w`, String(window.start));
        fields.set(`${u.counterId}${RS}u`, u.used.toString());
      }
    }
    for (const [cid, r] of rolling) {
      fields.set(`${cid}${RS}u`, r.sum.toString());
      fields.set(`${cid}${RS}lo`, String(r.lo));
    }
    for (const [cid, amount] of held) fields.set(`${cid}${RS}h`, amount.toString());

    const state = {
      fields: [...fields],
      reservations: snapshot.reservations.map((r) => [
        r.id,
        JSON.stringify({
          p: r.parts,
          exp: r.expiresAt,
          c: r.credit ? 1 : 0,
          u: Number(r.units),
          k: Number(r.cost),
          d: r.dimensions ?? null,
        }),
        String(r.expiresAt),
      ]),
      done: snapshot.replays.map((d) => [
        `d:${this.#options.decisionKey(customerId, d.idempotencyKey)}`,
        JSON.stringify({ h: d.hash, a: d.answer }),
        String(now),
      ]),
    };
    await hot.run(loadScript, governanceKeys(tenant, customerId), [JSON.stringify(state), String(now)]);
  }
}
