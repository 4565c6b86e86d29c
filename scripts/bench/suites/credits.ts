/**
 * The credits hot path: a reservation is one Lua script on Redis plus its event appended to
 * JetStream (batched per tick) before it returns. Measured on one hot pool, where every call
 * contends for the same keys, and across 10,000 pools, beside raw EVALSHA in the same run.
 * Each reservation is released again, so the pools never run dry during the run.
 */
import { openBus } from '@allot/kit/bus';
import { openHotState } from '@allot/kit/hot';
import { hotGrantMeta } from '../../../services/credits/src/domain/burn-order.ts';
import { CreditsEngine } from '../../../services/credits/src/engine.ts';
import { CreditEventPublisher } from '../../../services/credits/src/store/publisher.ts';
import { uniqueName } from '../lib/baselines.ts';
import type { SuiteContext } from '../lib/suite.ts';

export const name = 'credits';
export const description = 'credit reservations (Lua script + durable JetStream append) vs raw Redis EVALSHA';

const POOLS = 10_000;
const GRANT = 1_000_000_000_000n; // a million credits: never the limit in a bench

export async function run(ctx: SuiteContext): Promise<void> {
  const raw = await ctx.baselines.redis();
  const baseline = await ctx.measure('redis EVALSHA return 1', raw.evalsha);

  const prefix = uniqueName('bcr');
  const hot = await openHotState({ url: ctx.baselines.targets.redisUrl, prefix: `${prefix}:` });
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
  const pool = (i: number) => ({ tenant: 'bench', customerId: `c${i}`, creditType: 'credits' });
  try {
    process.stderr.write(`granting ${POOLS} pools\n`);
    for (let i = 0; i < POOLS; i += 500) {
      await Promise.all(
        Array.from({ length: Math.min(500, POOLS - i) }, (_, j) =>
          engine.addGrant({ ...pool(i + j), grantId: 'g', amount: GRANT, meta }),
        ),
      );
    }
    const reserveAndRelease = (i: () => number) => async () => {
      const p = pool(i());
      const hold = await engine.reserve({ ...p, amount: 1_000_000n, ttlMs: 60_000 });
      if (hold.status !== 'reserved') throw new Error(`not reserved: ${hold.status}`);
      await engine.release({ ...p, holdId: hold.holdId });
    };
    await ctx.measure(
      'reserve+release, one hot pool',
      reserveAndRelease(() => 0),
      {
        baseline,
        note: 'two scripts and two durable appends per op: halve ops/s for reservations alone',
      },
    );
    await ctx.measure(
      'reserve+release, 10,000 pools',
      reserveAndRelease(() => Math.floor(Math.random() * POOLS)),
      {
        baseline,
      },
    );
    const reserveOnly = async () => {
      const hold = await engine.reserve({
        ...pool(Math.floor(Math.random() * POOLS)),
        amount: 1n,
        ttlMs: 1_000,
      });
      if (hold.status !== 'reserved') throw new Error(`not reserved: ${hold.status}`);
    };
    await ctx.measure('reserve (1 s TTL), 10,000 pools', reserveOnly, { baseline });
  } finally {
    await bus.deleteStream('CREDITS').catch(() => {});
    await bus.close();
    await hot.close();
  }
}
