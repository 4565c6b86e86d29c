/**
 * One pool, a thousand clients at once: reservations of random sizes, then settles (partial,
 * exact, above the hold), releases, duplicate settles and holds left to expire (some settled
 * late), all in parallel. After every step an atomic read of the pool proves it is never
 * overdrawn; at the end, what the clients were told was settled must equal, to the micro-unit,
 * both the grants' debits in Redis and the debit slices in the events the stream stored.
 * Sizes and choices come from a seeded PRNG (CONCURRENCY_SEED); the interleaving is real.
 * On `cluster` (a Redis Cluster and a NATS cluster), the calls alternate between two engines,
 * each with its own Redis client, as two gate processes would.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { stopSharedClusters } from '../../../test/support/clusters.ts';
import type { SettleResult } from '../src/engine.ts';
import type { PoolRef } from '../src/store/keys.ts';
import {
  addGrant,
  type BackendKind,
  debitedInEvents,
  dedupeEvents,
  type HotPath,
  inspectPool,
  mulberry32,
  openHotPath,
} from './support/hot-path.ts';

const CLIENTS = 1000;
const TTL_MS = 1500;
const SEED = Number(process.env.CONCURRENCY_SEED ?? 20_300_101);
const pool: PoolRef = { tenant: 't1', customerId: 'hot', creditType: 'credits', resourceId: 'r1' };
const grants = [
  { id: 'g-first', amount: 200_000n, priority: 1 },
  { id: 'g-promo', amount: 300_000n, priority: 2, category: 'promotional' as const },
  { id: 'g-last', amount: 500_000n, priority: 3 },
];
const GRANTED = grants.reduce((sum, g) => sum + g.amount, 0n);

type Action = 'partial' | 'exact' | 'over' | 'release' | 'expire' | 'expire-late-settle' | 'duplicate-settle';
const actions: [Action, number][] = [
  ['partial', 30],
  ['exact', 15],
  ['over', 15],
  ['release', 15],
  ['expire', 8],
  ['expire-late-settle', 7],
  ['duplicate-settle', 10],
];

afterAll(stopSharedClusters);

describe.each<BackendKind>(['redis', 'embedded', 'cluster'])(
  '1,000 concurrent reservations on one pool (%s)',
  (kind) => {
    let hp: HotPath | undefined;
    afterEach(async () => {
      await hp?.close();
      hp = undefined;
    });

    it('never overdraws the pool, and the settled events sum to what clients were told', async () => {
      hp = await openHotPath(kind, { realTime: true });
      const { engine, engines } = hp;
      // A client reserves on one gate and settles on the other, when there are two.
      const reserver = (i: number) => engines[i % engines.length]!;
      const settler = (i: number) => engines[(i + 1) % engines.length]!;
      const random = mulberry32(SEED);
      const between = (lo: number, hi: number) => lo + Math.floor(random() * (hi - lo + 1));
      const pick = (): Action => {
        let roll = random() * 100;
        for (const [action, weight] of actions) {
          roll -= weight;
          if (roll < 0) return action;
        }
        return 'partial';
      };
      for (const grant of grants) await addGrant(engine, pool, grant);

      const violations: string[] = [];
      let checks = 0;
      const check = async (step: string) => {
        checks++;
        const s = await inspectPool(hp!.hot, pool);
        const remaining = [...s.remaining.values()].reduce((sum, r) => sum + r, 0n);
        const holds = [...s.holds.values()].reduce((sum, h) => sum + h.amount, 0n);
        const debited = GRANTED - remaining;
        const fail = (what: string) => violations.push(`${step}: ${what}`);
        if (holds + debited > GRANTED) fail(`holds ${holds} + debits ${debited} > granted ${GRANTED}`);
        for (const [id, r] of s.remaining) if (r < 0n) fail(`grant ${id} remaining ${r}`);
        if (s.held !== holds) fail(`held ${s.held} != sum of holds ${holds}`);
        if (s.od !== 0n) fail(`overdraft ${s.od} in a hard pool`);
        if (s.holds.size !== s.holdIndex.size) fail(`${s.holds.size} holds, ${s.holdIndex.size} indexed`);
      };

      // What each client was told, by hold id.
      const told = new Map<string, SettleResult>();
      const reservedHolds = new Map<string, bigint>();
      let insufficient = 0;
      const tell = (result: SettleResult) => {
        const first = told.get(result.holdId);
        if (first) expect(result).toEqual(first);
        else told.set(result.holdId, result);
      };

      const plans = Array.from({ length: CLIENTS }, (_, i) => ({
        i,
        amount: BigInt(between(1, 4000)),
        action: pick(),
        delayMs: between(0, 150),
        fraction: random(),
        retryDelayMs: between(100, 400),
      }));

      const client = async (plan: (typeof plans)[number]) => {
        let hold = await reserver(plan.i).reserve({
          ...pool,
          amount: plan.amount,
          ttlMs: TTL_MS,
          idempotencyKey: `k${plan.i}`,
        });
        await check(`reserve ${plan.i}`);
        if (hold.status === 'insufficient') {
          insufficient++;
          // Try once more after others have finished with theirs.
          await sleep(plan.retryDelayMs);
          hold = await reserver(plan.i).reserve({
            ...pool,
            amount: plan.amount,
            ttlMs: TTL_MS,
            idempotencyKey: `k${plan.i}`,
          });
          await check(`reserve again ${plan.i}`);
        }
        if (hold.status !== 'reserved') return;
        reservedHolds.set(hold.holdId, hold.amount);
        const ref = { ...pool, holdId: hold.holdId };
        const held = hold.amount;
        const partial = (held * BigInt(Math.floor(plan.fraction * 1000))) / 1000n;
        await sleep(plan.delayMs);
        switch (plan.action) {
          case 'partial':
            tell(await settler(plan.i).settle({ ...ref, amount: partial }));
            break;
          case 'exact':
            tell(await settler(plan.i).settle({ ...ref, amount: held }));
            break;
          case 'over':
            tell(await settler(plan.i).settle({ ...ref, amount: held + partial + 1n }));
            break;
          case 'release':
            expect(await settler(plan.i).release(ref)).toMatchObject({ released: held });
            break;
          case 'expire':
            return;
          case 'expire-late-settle':
            await sleep(Math.max(0, hold.expiresAt - Date.now()) + 50);
            tell(await settler(plan.i).settle({ ...ref, amount: partial }));
            break;
          case 'duplicate-settle': {
            const [a, b] = await Promise.all([
              settler(plan.i).settle({ ...ref, amount: partial }),
              settler(plan.i).settle({ ...ref, amount: partial }),
            ]);
            expect(b).toEqual(a);
            tell(a);
            break;
          }
        }
        await check(`${plan.action} ${plan.i}`);
      };

      // A sweeper runs beside the clients, as the background one would.
      let running = true;
      const sweeper = (async () => {
        while (running) {
          await engine.sweep(pool);
          await check('sweep');
          await sleep(100);
        }
      })();
      await Promise.all(plans.map(client));
      running = false;
      await sweeper;

      // Every hold ends: past the TTL a sweep leaves nothing held.
      await sleep(TTL_MS + 100);
      while ((await engine.sweep(pool)) > 0);
      await check('final');
      expect(violations).toEqual([]);
      const end = await inspectPool(hp.hot, pool);
      expect(end.held).toBe(0n);
      expect(end.holds.size + end.holdIndex.size).toBe(0);

      const toldSettled = [...told.values()].reduce((sum, r) => sum + r.settled, 0n);
      const remaining = [...end.remaining.values()].reduce((sum, r) => sum + r, 0n);
      expect(debitedInEvents(hp.bus.events)).toBe(toldSettled);
      expect(GRANTED - remaining).toBe(toldSettled);
      expect(hp.bus.invalid).toEqual([]);

      // Each settle the clients heard of is in the stream as that very result.
      const events = dedupeEvents(hp.bus.events);
      for (const result of told.values()) {
        const event = events.get(`s:${result.holdId}`);
        expect(event).toMatchObject({
          type: 'hold.settled',
          requested: String(result.requested),
          overage: String(result.overage),
          debits: result.debits.map((d) => ({ grantId: d.grantId, amount: String(d.amount) })),
        });
      }
      // Each hold reserved ended once: settled, released or expired (and maybe settled late).
      for (const [holdId, amount] of reservedHolds) {
        const ends = ['s', 'l', 'x'].filter((p) => events.has(`${p}:${holdId}`));
        expect(ends.length === 1 || ends.join() === 's,x', `${holdId}: ${ends.join()}`).toBe(true);
        expect(events.get(`r:${holdId}`)).toMatchObject({ amount: String(amount) });
      }
      // The run exercised what it claims to.
      expect(reservedHolds.size).toBeGreaterThan(400);
      expect(insufficient).toBeGreaterThan(0);
      expect([...told.values()].some((r) => r.overage > 0n)).toBe(true);
      expect([...told.values()].some((r) => r.late)).toBe(true);
      // Every client checks after its reserve, and most after what it did with the hold.
      expect(checks).toBeGreaterThan(CLIENTS * 1.5);
      console.info(
        `${kind}: seed ${SEED}, ${reservedHolds.size} holds, ${told.size} settled for ${toldSettled}, ${insufficient} refused at first, ${hp.bus.stored.length} stream messages, ${checks} checks`,
      );
    });
  },
);
