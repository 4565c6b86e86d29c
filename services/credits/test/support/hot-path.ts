/**
 * Fixtures for the credits hot-path tests: the engine over either backend pair (the embedded
 * hot state with an injected clock and the in-process bus, or the real Redis and NATS), a bus
 * that records what the stream acknowledged and fails on demand, a stub `LedgerView`, and an
 * atomic read of one pool's hot state.
 */

import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import type {
  Bus,
  Consumer,
  ConsumerConfig,
  KvBucket,
  PublishAck,
  PublishOptions,
  StreamConfig,
  StreamStatus,
} from '@allot/kit/bus';
import { EmbeddedHotState, type HotScript, type HotState, RedisHotState } from '@allot/kit/hot';
import { freshEmbeddedBus, freshNatsBus, freshRedisHotState } from '@allot/kit/testing';
import { CLUSTER_COMMAND_TIMEOUT_MS, sharedClusters } from '../../../../test/support/clusters.ts';
import { type BurnFields, hotGrantMeta } from '../../src/domain/burn-order.ts';
import { type CreditEvent, creditEventBatch } from '../../src/domain/events.ts';
import { CreditsEngine, type CustomerSnapshot, type LedgerView } from '../../src/engine.ts';
import { type PoolRef, poolScriptKeys } from '../../src/store/keys.ts';
import { CreditEventPublisher, type PublisherOptions } from '../../src/store/publisher.ts';

export const EPOCH_KEY = 'allot:credits:epoch';

/** How the next publishes go wrong: `fail` stores nothing; `lost-ack` stores, then reports failure. */
export type PublishFault = 'fail' | 'lost-ack';

/** A bus that passes everything to `inner`; test buses extend it and override `publish`. */
export class ForwardingBus implements Bus {
  readonly kind: Bus['kind'];

  constructor(protected readonly inner: Bus) {
    this.kind = inner.kind;
  }

  publish(subject: string, data: Uint8Array, opts?: PublishOptions): Promise<PublishAck> {
    return this.inner.publish(subject, data, opts);
  }
  ensureStream(config: StreamConfig): Promise<void> {
    return this.inner.ensureStream(config);
  }
  deleteStream(name: string): Promise<void> {
    return this.inner.deleteStream(name);
  }
  streamInfo(name: string): Promise<StreamStatus> {
    return this.inner.streamInfo(name);
  }
  consumer(stream: string, config: ConsumerConfig): Promise<Consumer> {
    return this.inner.consumer(stream, config);
  }
  kv(bucket: string, opts?: { history?: number; ttlMs?: number }): Promise<KvBucket> {
    return this.inner.kv(bucket, opts);
  }
  notify(subject: string, data: Uint8Array): void {
    this.inner.notify(subject, data);
  }
  subscribe(subject: string, onMessage: (subject: string, data: Uint8Array) => void) {
    return this.inner.subscribe(subject, onMessage);
  }
  flush(): Promise<void> {
    return this.inner.flush();
  }
  ping(): Promise<void> {
    return this.inner.ping();
  }
  close(): Promise<void> {
    return this.inner.close();
  }
}

/**
 * A bus that passes publishes through and keeps the credit events of every message the stream
 * stored, in order. `fault()` makes the next publishes fail, as a NATS outage (`fail`) or a
 * publish acknowledged too late (`lost-ack`) would.
 */
export class RecordingBus extends ForwardingBus {
  /** Every message the stream stored, parsed. */
  readonly stored: CreditEvent[][] = [];
  /** Messages refused before they reached the stream. */
  readonly refused: CreditEvent[][] = [];
  /** Messages that did not parse as a `creditEventBatch` (stored all the same): must stay empty. */
  readonly invalid: string[] = [];
  readonly #faults: PublishFault[] = [];

  /** The next `count` publishes go wrong as `fault` says. */
  fault(fault: PublishFault, count = 1): void {
    for (let i = 0; i < count; i++) this.#faults.push(fault);
  }

  /** Every stored event, in order (duplicates included). */
  get events(): CreditEvent[] {
    return this.stored.flat();
  }

  override async publish(subject: string, data: Uint8Array, opts?: PublishOptions): Promise<PublishAck> {
    const fault = this.#faults.shift();
    const text = Buffer.from(data).toString('utf8');
    const parsed = creditEventBatch.safeParse(JSON.parse(text));
    if (!parsed.success) this.invalid.push(`${parsed.error.message}\n${text}`);
    const events = parsed.success ? parsed.data.events : [];
    if (fault === 'fail') {
      this.refused.push(events);
      throw new Error('injected: stream unavailable');
    }
    const ack = await this.inner.publish(subject, data, opts);
    this.stored.push(events);
    if (fault === 'lost-ack') throw new Error('injected: acknowledgement lost');
    return ack;
  }
}

/** A `LedgerView` that answers from snapshots the test sets, and counts what it was asked. */
export class StubLedger implements LedgerView {
  readonly snapshots = new Map<string, CustomerSnapshot>();
  readonly calls: string[] = [];

  async caughtUp(): Promise<void> {
    this.calls.push('caughtUp');
  }

  async snapshot(tenant: string, customerId: string): Promise<CustomerSnapshot> {
    this.calls.push(`snapshot ${tenant}/${customerId}`);
    return this.snapshots.get(`${tenant}/${customerId}`) ?? { pools: [], done: [] };
  }
}

/** `cluster`: a 3-node Redis Cluster and a 3-node NATS JetStream cluster (R3), two engines. */
export type BackendKind = 'embedded' | 'redis' | 'cluster';

export interface HotPath {
  kind: BackendKind;
  hot: HotState;
  bus: RecordingBus;
  publisher: CreditEventPublisher;
  ledger: StubLedger;
  engine: CreditsEngine;
  /**
   * The engines of every gate process: `engine` alone, or on `cluster` a second one with its
   * own Redis Cluster client, for tests that spread their calls over both.
   */
  engines: CreditsEngine[];
  /** The hot state's clock (Redis: this machine's, which is the server's). */
  now(): number;
  /** Moves the embedded clock; on Redis, waits. */
  advance(ms: number): Promise<void>;
  close(): Promise<void>;
}

export interface HotPathOptions {
  publisher?: PublisherOptions;
  /**
   * Leave the epoch key unset, as on a Redis that just lost its data. By default it is set
   * long ago, as on a Redis that has been up for a while, so a first load does not wait out
   * the publish timeout.
   */
  freshEpoch?: boolean;
  /** Embedded only: run on the wall clock instead of the injected one. */
  realTime?: boolean;
}

/** The engine over the embedded hot state (injected clock) and bus, or over Redis and NATS. */
export async function openHotPath(kind: BackendKind, options: HotPathOptions = {}): Promise<HotPath> {
  let clock = Date.UTC(2030, 0, 1);
  const clusters = kind === 'cluster' ? await sharedClusters() : undefined;
  const clusterPrefix = `c${randomBytes(4).toString('hex')}:`;
  const clusterHot = () =>
    RedisHotState.open({
      url: clusters!.redis.url,
      cluster: true,
      prefix: clusterPrefix,
      commandTimeoutMs: CLUSTER_COMMAND_TIMEOUT_MS,
    });
  const redis = kind === 'redis' ? await freshRedisHotState() : undefined;
  const realTime = kind !== 'embedded' || options.realTime === true;
  const hot: HotState =
    redis ??
    (clusters ? await clusterHot() : await EmbeddedHotState.open(realTime ? {} : { clock: () => clock }));
  const fixture =
    kind === 'redis'
      ? await freshNatsBus()
      : clusters
        ? await freshNatsBus(clusters.nats.url, { replicas: 3 })
        : await freshEmbeddedBus();
  const bus = new RecordingBus(fixture.bus);
  // No background republish unless a test asks for it: a retry on a timer would take the faults
  // a test queued for its next call, and add copies a test counts.
  const publisher = new CreditEventPublisher(bus, { retry: { background: false }, ...options.publisher });
  await publisher.ensureStream();
  if (!options.freshEpoch) await hot.call('SET', EPOCH_KEY, '0');
  const ledger = new StubLedger();
  const engine = new CreditsEngine({ hot, publisher, ledger });
  const otherHot = clusters ? await clusterHot() : undefined;
  const engines = otherHot ? [engine, new CreditsEngine({ hot: otherHot, publisher, ledger })] : [engine];
  return {
    kind,
    hot,
    bus,
    publisher,
    ledger,
    engine,
    engines,
    now: () => (realTime ? Date.now() : clock),
    async advance(ms) {
      if (realTime) await sleep(ms);
      else clock += ms;
    },
    async close() {
      await fixture.cleanup();
      if (redis) await redis.cleanup();
      else await hot.close();
      await otherHot?.close();
    },
  };
}

export interface GrantSpec {
  id: string;
  amount: bigint;
  priority?: number;
  category?: 'paid' | 'promotional';
  effectiveAt?: number;
  expiresAt?: number | null;
  createdAt?: number;
}

export function grantMeta(grant: GrantSpec): string {
  return hotGrantMeta(burnFields(grant));
}

export function burnFields(grant: GrantSpec): BurnFields {
  return {
    id: grant.id,
    priority: grant.priority ?? 100,
    category: grant.category ?? 'paid',
    effectiveAt: new Date(grant.effectiveAt ?? 0),
    expiresAt: grant.expiresAt == null ? null : new Date(grant.expiresAt),
    createdAt: new Date(grant.createdAt ?? 0),
  };
}

export function addGrant(
  engine: CreditsEngine,
  pool: PoolRef,
  grant: GrantSpec,
  mode?: 'hard' | 'soft',
): Promise<{ overdraftPaid: bigint }> {
  return engine.addGrant({
    ...pool,
    grantId: grant.id,
    amount: grant.amount,
    meta: grantMeta(grant),
    ...(mode ? { mode } : {}),
  });
}

/** One pool's hot state, read atomically so it is a consistent cut even under load. */
export interface PoolState {
  mode: string;
  held: bigint;
  od: bigint;
  /** Remaining per grant still in the pool. */
  remaining: Map<string, bigint>;
  /** `<burnKey>|<effectiveMs>|<expiresMs or 0>` per grant still in the pool. */
  meta: Map<string, string>;
  retired: Map<string, { kind: string; amount: bigint }>;
  holds: Map<string, { amount: bigint; expiresAt: number }>;
  /** holdsx: hold id -> score. */
  holdIndex: Map<string, number>;
}

const inspectScript: HotScript = {
  name: 'credits.test.inspect',
  lua: `return { redis.call('HGETALL', KEYS[2]), redis.call('HGETALL', KEYS[3]),
  redis.call('ZRANGE', KEYS[4], '0', '-1', 'WITHSCORES') }`,
};

export async function inspectPool(hot: HotState, pool: PoolRef): Promise<PoolState> {
  if (hot.kind === 'embedded') {
    // Three plain commands, issued in one synchronous run: the embedded adapter applies each as
    // it is called, so nothing can come between them, and it is far cheaper than a script
    // carrying a thousand holds out of the Lua VM.
    const [, poolKey = '', holdsKey = '', indexKey = ''] = poolScriptKeys(pool);
    const [poolFlat, holdsFlat, indexFlat] = (await Promise.all([
      hot.call('HGETALL', poolKey),
      hot.call('HGETALL', holdsKey),
      hot.call('ZRANGE', indexKey, '0', '-1', 'WITHSCORES'),
    ])) as string[][];
    return poolState(poolFlat ?? [], holdsFlat ?? [], indexFlat ?? []);
  }
  const reply = (await hot.run(inspectScript, poolScriptKeys(pool), [])) as string[][];
  const [poolFlat = [], holdsFlat = [], indexFlat = []] = reply;
  return poolState(poolFlat, holdsFlat, indexFlat);
}

function poolState(poolFlat: string[], holdsFlat: string[], indexFlat: string[]): PoolState {
  const state: PoolState = {
    mode: 'hard',
    held: 0n,
    od: 0n,
    remaining: new Map(),
    meta: new Map(),
    retired: new Map(),
    holds: new Map(),
    holdIndex: new Map(),
  };
  for (const [field, value] of pairs(poolFlat)) {
    if (field === 'mode') state.mode = value;
    else if (field === 'held') state.held = BigInt(value);
    else if (field === 'od') state.od = BigInt(value);
    else if (field.startsWith('r:')) state.remaining.set(field.slice(2), BigInt(value));
    else if (field.startsWith('m:')) state.meta.set(field.slice(2), value);
    else if (field.startsWith('x:')) {
      const id = field.slice(2);
      state.retired.set(id, { kind: value, amount: state.retired.get(id)?.amount ?? 0n });
    } else if (field.startsWith('xa:')) {
      const id = field.slice(3);
      state.retired.set(id, { kind: state.retired.get(id)?.kind ?? '', amount: BigInt(value) });
    }
  }
  for (const [id, value] of pairs(holdsFlat)) {
    const [amount = '', expiresAt = ''] = value.split('|');
    state.holds.set(id, { amount: BigInt(amount), expiresAt: Number(expiresAt) });
  }
  for (const [id, score] of pairs(indexFlat)) state.holdIndex.set(id, Number(score));
  return state;
}

/** What the pool could give a new charge now: spendable grants minus holds minus overdraft. */
export function spendable(state: PoolState, now: number): bigint {
  let total = 0n;
  for (const [id, left] of state.remaining) {
    const [, effective = '0', expires = '0'] = (state.meta.get(id) ?? '').split('|');
    const exp = Number(expires);
    if (left > 0n && Number(effective) <= now && (exp === 0 || now < exp)) total += left;
  }
  return total;
}

function* pairs(flat: readonly string[]): Generator<[string, string]> {
  for (let i = 0; i + 1 < flat.length; i += 2) yield [flat[i]!, flat[i + 1]!];
}

/**
 * Replays whose script does not keep the first time (a reserve found existing, a grant added or
 * retired again) stamp `at` with the replay's time; every other field must match.
 */
const REPLAY_RESTAMPED = new Set<CreditEvent['type']>([
  'hold.reserved',
  'grant.voided',
  'grant.expired',
  'overdraft.settled',
]);

/** Events by id; a repeated id must carry the same effect. */
export function dedupeEvents(events: readonly CreditEvent[]): Map<string, CreditEvent> {
  const byId = new Map<string, CreditEvent>();
  for (const event of events) {
    const first = byId.get(event.id);
    if (!first) {
      byId.set(event.id, event);
      continue;
    }
    const same = REPLAY_RESTAMPED.has(event.type)
      ? JSON.stringify({ ...first, at: 0 }) === JSON.stringify({ ...event, at: 0 })
      : JSON.stringify(first) === JSON.stringify(event);
    if (!same) {
      throw new Error(`event ${event.id} published twice with different content:
${JSON.stringify(first)}
${JSON.stringify(event)}`);
    }
  }
  return byId;
}

/** Sum of the grant debits in hold.settled events, deduplicated by event id. */
export function debitedInEvents(events: readonly CreditEvent[]): bigint {
  let sum = 0n;
  for (const event of dedupeEvents(events).values()) {
    if (event.type === 'hold.settled') for (const slice of event.debits) sum += BigInt(slice.amount);
  }
  return sum;
}

/** A small seeded PRNG (mulberry32): the same seed gives the same run. */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
