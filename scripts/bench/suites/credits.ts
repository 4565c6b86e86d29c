/**
 * The credits hot path: a reservation is one Lua script on Redis plus its event appended to
 * JetStream before it returns; calls on one pool in one turn of the event loop share one
 * script run and one message (group commit). Measured on one hot pool, where every call
 * contends for the same keys, and across 10,000 pools, beside raw EVALSHA in the same run at
 * the same concurrency. The hot pool is measured with 256 callers, as many agents on one pool
 * would be, and with 32.
 */
import { openBus } from '@allot/kit/bus';
import { RedisHotState } from '@allot/kit/hot';
import { deleteByPrefix } from '@allot/kit/testing';
import { hotGrantMeta } from '../../../services/credits/src/domain/burn-order.ts';
import { CreditsEngine } from '../../../services/credits/src/engine.ts';
import { CreditEventPublisher } from '../../../services/credits/src/store/publisher.ts';
import { uniqueName } from '../lib/baselines.ts';
import type { SuiteContext } from '../lib/suite.ts';

export const name = 'credits';
export const description = 'credit reservations (Lua script + durable JetStream append) vs raw Redis EVALSHA';

const POOLS = 10_000;
const GRANT = 1_000_000_000_000n; // a million credits: never the limit in a bench

const MANY = 256;

export async function run(ctx: SuiteContext): Promise<void> {
  const raw = await ctx.baselines.redis();
  const baseline = await ctx.measure('redis EVALSHA return 1', raw.evalsha);
  const baselineMany = await ctx.measure(`redis EVALSHA return 1, c=${MANY}`, raw.evalsha, {
    concurrency: MANY,
  });

  const prefix = uniqueName('bcr');
  const hot = await RedisHotState.open({ url: ctx.baselines.targets.redisUrl, prefix: `${prefix}:` });
  const bus = await openBus({ url: ctx.baselines.targets.natsUrl, prefix });
  const publisher = new CreditEventPublisher(bus);
  await publisher.ensureStream();
  // The bench publishes and nothing applies: an empty ledger is the truth for a fresh prefix.
  await hot.call('SET', 'allot:credits:epoch', '0');
  const engine = new CreditsEngine({
    hot,
    publisher,
    ledger: { caughtUp: async () => {}, snapshot: async () => ({ pools: [], done: [] }) },
  });
  const now = new Date();
  const meta = hotGrantMeta({
    id: 'g',
    priority: 0,
    expiresAt: null,
    category: 'paid',
    effectiveAt: new Date(0),
    createdAt: now,
  });
  // Requests built field by field: an object spread costs more than the call it feeds on Node 20.
  const pool = (i: number) => ({ tenant: 'bench', customerId: `c${i}`, creditType: 'credits' });
  const reserve = (i: number, amount: bigint, ttlMs: number) =>
    engine.reserve({ tenant: 'bench', customerId: `c${i}`, creditType: 'credits', amount, ttlMs });
  try {
    process.stderr.write(`granting ${POOLS} pools\n`);
    for (let i = 0; i < POOLS; i += 500) {
      await Promise.all(
        Array.from({ length: Math.min(500, POOLS - i) }, (_, j) =>
          engine.addGrant({ ...pool(i + j), grantId: 'g', amount: GRANT, meta }),
        ),
      );
    }
    const reserveOnly = (i: () => number, ttlMs: number) => async () => {
      const hold = await reserve(i(), 1_000_000n, ttlMs);
      if (hold.status !== 'reserved') throw new Error(`not reserved: ${hold.status}`);
    };
    const reserveAndRelease = (i: () => number) => async () => {
      const n = i();
      const hold = await reserve(n, 1_000_000n, 60_000);
      if (hold.status !== 'reserved') throw new Error(`not reserved: ${hold.status}`);
      await engine.release({
        tenant: 'bench',
        customerId: `c${n}`,
        creditType: 'credits',
        holdId: hold.holdId,
      });
    };
    await ctx.measure(
      `reserve, one hot pool, c=${MANY}`,
      reserveOnly(() => 0, 60_000),
      {
        baseline: baselineMany,
        concurrency: MANY,
      },
    );
    await ctx.measure(
      'reserve, one hot pool',
      reserveOnly(() => 0, 60_000),
      { baseline },
    );
    await ctx.measure(
      'reserve+release, one hot pool',
      reserveAndRelease(() => 1),
      {
        baseline,
        note: 'two scripts and two durable appends per op: halve ops/s for reservations alone',
      },
    );
    await ctx.measure(
      'reserve+release, 10,000 pools',
      reserveAndRelease(() => Math.floor(Math.random() * POOLS)),
      { baseline },
    );
    await ctx.measure(
      'reserve (1 s TTL), 10,000 pools',
      reserveOnly(() => Math.floor(Math.random() * POOLS), 1_000),
      { baseline },
    );
  } finally {
    await bus.deleteStream('CREDITS').catch(() => {});
    await bus.close();
    await deleteByPrefix(hot, `${prefix}:`).catch(() => {});
    await hot.close();
  }
}
