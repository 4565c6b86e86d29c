/**
 * The credits data plane wired as in production, on servers the fault tests own: engines (one
 * per "gate process", each with its own Redis and NATS connections), the ledger worker in
 * process or not at all (a test may run it as a child process), one hard pool with grants of
 * different burn order in a fresh PostgreSQL database. Plus an atomic read of the pool's hot
 * state, for the invariant sampler.
 */
import { randomBytes } from 'node:crypto';
import { type Consumer, NatsBus } from '@allot/kit/bus';
import { type HotScript, RedisHotState } from '@allot/kit/hot';
import { migrate } from '@allot/kit/sql';
import { type FreshPgDatabase, freshPgDatabase, uniqueBusPrefix } from '@allot/kit/testing';
import { hotGrantMeta } from '../../services/credits/src/domain/burn-order.ts';
import { CREDITS_STREAM } from '../../services/credits/src/domain/events.ts';
import { CreditsEngine } from '../../services/credits/src/engine.ts';
import { creditsMigrations } from '../../services/credits/src/service.ts';
import { type PoolRef, poolScriptKeys } from '../../services/credits/src/store/keys.ts';
import { type GrantCategory, insertGrant } from '../../services/credits/src/store/ledger.ts';
import { StreamLedgerView } from '../../services/credits/src/store/ledger-view.ts';
import { CreditEventPublisher, type PublisherOptions } from '../../services/credits/src/store/publisher.ts';
import { CREDITS_DURABLE, CreditsWorker } from '../../services/credits/src/worker/worker.ts';

/** As in engine.ts: the marker of a Redis that has not lost its state since it was set. */
const EPOCH_KEY = 'allot:credits:epoch';

export interface GrantSpec {
  id: string;
  amount: bigint;
  category: GrantCategory;
  priority: number;
  /** Relative to now; null never expires. */
  expiresInMs: number | null;
}

/**
 * Burn order: g-first (priority 5), then at priority 10 the two expiring grants (promotional
 * before paid at the same expiry), then g-last (priority 20, no expiry).
 */
export const GRANTS: GrantSpec[] = [
  { id: 'g-last', amount: 3_500_000n, category: 'paid', priority: 20, expiresInMs: null },
  { id: 'g-paid-soon', amount: 1_500_000n, category: 'paid', priority: 10, expiresInMs: 86_400_000 },
  { id: 'g-promo-soon', amount: 1_500_000n, category: 'promotional', priority: 10, expiresInMs: 86_400_000 },
  { id: 'g-first', amount: 1_000_000n, category: 'paid', priority: 5, expiresInMs: null },
];
export const GRANTED = GRANTS.reduce((sum, g) => sum + g.amount, 0n);
/** The order charges take from GRANTS (DESIGN.md: priority, expiry, promotional before paid, ...). */
export const BURN_ORDER = ['g-first', 'g-promo-soon', 'g-paid-soon', 'g-last'];

export interface RigOptions {
  redisUrl: string;
  natsUrl: string;
  /** Gate processes sharing the Redis. Default 2. */
  engines?: number;
  /** Run the ledger worker in this process. Default true. */
  worker?: boolean;
  publisher?: PublisherOptions;
  /**
   * The ledger consumer's ack wait, for everything that binds it (worker, rebuild view, the
   * tests' own reads): how long a message a dead worker held waits before redelivery. Default 30 s.
   */
  ackWaitMs?: number;
}

export interface Rig {
  tenant: string;
  pool: PoolRef;
  db: FreshPgDatabase;
  /** The NATS namespace of this rig (a child worker needs it). */
  natsPrefix: string;
  /** For the tests' own reads (ledger caught up, consumer state). */
  bus: NatsBus;
  /** The ledger worker's durable consumer, bound with the rig's ack wait. */
  consumer: Consumer;
  ackWaitMs: number;
  engines: CreditsEngine[];
  /** One Redis connection per engine. */
  hots: RedisHotState[];
  /** A separate connection for the sampler. */
  probe: RedisHotState;
  worker: CreditsWorker | undefined;
  /** Grant id -> its amount. */
  granted: Map<string, bigint>;
  close(): Promise<void>;
}

export async function openRig(options: RigOptions): Promise<Rig> {
  const closers: (() => Promise<void>)[] = [];
  const close = async () => {
    for (const closer of closers.reverse()) await closer().catch(() => {});
  };
  try {
    const db = await freshPgDatabase();
    closers.push(() => db.drop());
    await migrate(db.store, { schema: 'credits', dir: creditsMigrations });

    const tenant = `tf_${randomBytes(4).toString('hex')}`;
    const pool: PoolRef = { tenant, customerId: 'c-hot', creditType: 'credits', resourceId: 'gpt' };
    const redisPrefix = `f${randomBytes(4).toString('hex')}:`;
    const natsPrefix = uniqueBusPrefix();

    const openHot = async () => {
      const hot = await RedisHotState.open({ url: options.redisUrl, prefix: redisPrefix });
      closers.push(() => hot.close());
      return hot;
    };
    const openNats = async (name: string) => {
      const bus = await NatsBus.connect({ url: options.natsUrl, prefix: natsPrefix, name });
      closers.push(() => bus.close());
      return bus;
    };

    const ackWaitMs = options.ackWaitMs ?? 30_000;
    const bus = await openNats('faults-probe');
    const probe = await openHot();
    const hots: RedisHotState[] = [];
    const engines: CreditsEngine[] = [];
    for (let i = 0; i < (options.engines ?? 2); i++) {
      const hot = await openHot();
      const engineBus = await openNats(`faults-gate-${i}`);
      const publisher = new CreditEventPublisher(engineBus, options.publisher);
      await publisher.ensureStream();
      hots.push(hot);
      engines.push(
        new CreditsEngine({
          hot,
          publisher,
          ledger: new StreamLedgerView(db.store, engineBus, { ackWaitMs }),
        }),
      );
    }
    const consumer = await bus.consumer(CREDITS_STREAM, { durable: CREDITS_DURABLE, ackWaitMs });
    let worker: CreditsWorker | undefined;
    if (options.worker ?? true) {
      const workerBus = await openNats('faults-worker');
      worker = new CreditsWorker({ store: db.store, bus: workerBus, ackWaitMs });
      await worker.start();
      closers.push(() => worker!.stop());
    }

    // A Redis that has been up for a while: the first load need not wait out publishes in flight.
    await probe.call('SET', EPOCH_KEY, '1');
    const now = Date.now();
    const granted = new Map<string, bigint>();
    for (const spec of GRANTS) {
      const { grant } = await insertGrant(db.store, {
        tenant,
        id: spec.id,
        customerId: pool.customerId,
        creditType: pool.creditType,
        resourceId: pool.resourceId ?? '',
        amount: spec.amount,
        category: spec.category,
        priority: spec.priority,
        expiresAt: spec.expiresInMs === null ? null : new Date(now + spec.expiresInMs),
      });
      // As the grants route does: the record first, then the hot path.
      await engines[0]!.addGrant({
        ...pool,
        grantId: grant.id,
        amount: grant.amount,
        meta: hotGrantMeta(grant),
      });
      granted.set(grant.id, grant.amount);
    }
    return {
      tenant,
      pool,
      db,
      natsPrefix,
      bus,
      consumer,
      ackWaitMs,
      engines,
      hots,
      probe,
      worker,
      granted,
      close,
    };
  } catch (error) {
    await close();
    throw error;
  }
}

const inspectScript: HotScript = {
  name: 'test.faults.inspect_pool',
  lua: `
if redis.call('EXISTS', KEYS[1]) == 0 then return cjson.encode({ loaded = false }) end
return cjson.encode({ loaded = true, pool = redis.call('HGETALL', KEYS[2]), holds = redis.call('HGETALL', KEYS[3]) })
`,
};

export interface PoolView {
  held: bigint;
  overdraft: bigint;
  mode: string;
  /** Grant id -> remaining (grants the hot state still lists). */
  remaining: Map<string, bigint>;
  /** Hold id -> amount. */
  holds: Map<string, bigint>;
}

/** One atomic read of the pool's hot state; null while the customer is not loaded. */
export async function inspectPool(hot: RedisHotState, pool: PoolRef): Promise<PoolView | null> {
  const raw = JSON.parse(String(await hot.run(inspectScript, poolScriptKeys(pool), []))) as {
    loaded: boolean;
    pool?: string[] | Record<string, never>;
    holds?: string[] | Record<string, never>;
  };
  if (!raw.loaded) return null;
  const flat = (list: string[] | Record<string, never> | undefined): string[] =>
    Array.isArray(list) ? list : [];
  const view: PoolView = { held: 0n, overdraft: 0n, mode: 'hard', remaining: new Map(), holds: new Map() };
  const p = flat(raw.pool);
  for (let i = 0; i + 1 < p.length; i += 2) {
    const field = p[i]!;
    const value = p[i + 1]!;
    if (field === 'held') view.held = BigInt(value);
    else if (field === 'od') view.overdraft = BigInt(value);
    else if (field === 'mode') view.mode = value;
    else if (field.startsWith('r:')) view.remaining.set(field.slice(2), BigInt(value));
  }
  const h = flat(raw.holds);
  for (let i = 0; i + 1 < h.length; i += 2) {
    view.holds.set(h[i]!, BigInt(h[i + 1]!.split('|')[0]!));
  }
  return view;
}
