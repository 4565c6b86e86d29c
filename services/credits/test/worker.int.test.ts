/**
 * The credits worker end to end: events published to the CREDITS stream reach the ledger
 * exactly once, across worker crashes and restarts, malformed messages and failing commits. On
 * the real NATS with PostgreSQL, and on the embedded bus with PGlite.
 */
import type { Bus } from '@allot/kit/bus';
import type { SqlExecutor, SqlStore, SqlValue } from '@allot/kit/sql';
import { type BusFixture, freshEmbeddedBus, freshNatsBus } from '@allot/kit/testing';
import { Registry } from 'prom-client';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { CREDITS_STREAM, type CreditEvent, creditsSubject } from '../src/domain/events.ts';
import { applyEvents } from '../src/store/ledger.ts';
import {
  CREDITS_DURABLE,
  CreditsWorker,
  type CreditsWorkerOptions,
  creditsStreamConfig,
  ledgerCaughtUp,
} from '../src/worker/worker.ts';
import {
  addGrants,
  eventsFor,
  grant,
  type LedgerStore,
  ledgerState,
  openLedgerStore,
  type StoreKind,
  uniqueTenant,
} from './support/ledger.ts';

interface Backend {
  name: string;
  bus: () => Promise<BusFixture>;
  store: StoreKind;
}

const backends: Backend[] = [
  { name: 'NATS and PostgreSQL', bus: freshNatsBus, store: 'postgres' },
  { name: 'the embedded bus and PGlite', bus: freshEmbeddedBus, store: 'pglite' },
];

const encoder = new TextEncoder();
let published = 0;

async function publish(bus: Bus, events: CreditEvent[]): Promise<void> {
  published++;
  await bus.publish(creditsSubject(published % 3), encoder.encode(JSON.stringify({ events })), {
    msgId: `m${published}-${Math.random()}`,
  });
}

/** A store whose transaction statements fail while `failing` says so, as an outage or a refused batch would. */
class FlakyStore implements SqlStore {
  readonly kind: SqlStore['kind'];
  /** Asked before every statement in a transaction (the worker's one: `applyEvents`); an error fails it. */
  failing: (params: readonly SqlValue[] | undefined) => Error | null = () => null;
  readonly #inner: SqlStore;

  constructor(inner: SqlStore) {
    this.#inner = inner;
    this.kind = inner.kind;
  }

  query: SqlStore['query'] = (text, params) => this.#inner.query(text, params);
  copyFrom: SqlStore['copyFrom'] = (table, columns, rows) => this.#inner.copyFrom(table, columns, rows);
  ping = () => this.#inner.ping();
  close = () => this.#inner.close();

  transaction<T>(fn: (tx: SqlExecutor) => Promise<T>): Promise<T> {
    return this.#inner.transaction((tx) =>
      fn({
        query: async (text, params) => {
          const failure = this.failing(params);
          if (failure) throw failure;
          return tx.query(text, params);
        },
        copyFrom: (table, columns, rows) => tx.copyFrom(table, columns, rows),
      }),
    );
  }
}

describe.each(backends)('credits worker on $name', (backend) => {
  let fixture: BusFixture;
  let ledger: LedgerStore;
  let tenant: string;
  let ev: ReturnType<typeof eventsFor>;
  const workers: CreditsWorker[] = [];

  const startWorker = async (options: Partial<CreditsWorkerOptions> = {}) => {
    const worker = new CreditsWorker({
      store: ledger.store,
      bus: fixture.bus,
      fetchExpiresMs: 100,
      retryInitialMs: 50,
      retryMaxMs: 400,
      ...options,
    });
    workers.push(worker);
    await worker.start();
    return worker;
  };

  /** `count` holds, reserved and settled, two events per hold, `perMessage` holds per message. */
  const publishHolds = async (from: number, count: number, perMessage = 5) => {
    for (let i = from; i < from + count; i += perMessage) {
      const events: CreditEvent[] = [];
      for (let h = i; h < Math.min(i + perMessage, from + count); h++) {
        events.push(
          ev.reserved(`h${h}`, 10n),
          ev.settled(`h${h}`, { held: 10n, debits: [['g1', 7n]], released: 3n }),
        );
      }
      await publish(fixture.bus, events);
    }
  };

  const expectHoldsApplied = async (count: number) => {
    const state = await ledgerState(ledger.store, tenant);
    expect(state.ledger).toHaveLength(count * 2);
    expect(state.holds).toHaveLength(count);
    expect(state.holds.every((h) => h.status === 'settled' && h.reserved === true)).toBe(true);
    expect(state.balances).toEqual([{ grant_id: 'g1', remaining: String(1_000_000n - BigInt(count) * 7n) }]);
  };

  beforeEach(async () => {
    [fixture, ledger] = await Promise.all([backend.bus(), openLedgerStore(backend.store)]);
    tenant = uniqueTenant();
    ev = eventsFor({ tenant });
    await addGrants(ledger.store, [grant(tenant, 'g1', 1_000_000n)]);
    await fixture.bus.ensureStream(creditsStreamConfig);
  });

  afterEach(async () => {
    await Promise.all(workers.splice(0).map((worker) => worker.stop()));
    await Promise.all([fixture.cleanup(), ledger.close()]);
  });

  it('applies what was published once and reports when it has caught up', async () => {
    const registry = new Registry();
    const worker = await startWorker({ registry });
    await publishHolds(0, 50);
    // The same events again, in a message of their own (a publisher retry past the duplicate window).
    await publish(fixture.bus, [
      ev.reserved('h0', 10n),
      ev.settled('h0', { held: 10n, debits: [['g1', 7n]], released: 3n }),
    ]);
    await worker.caughtUp({ timeoutMs: 10_000 });
    await expectHoldsApplied(50);
    expect(worker.stats).toMatchObject({ eventsApplied: 102, messagesApplied: 11, malformed: 0, retried: 0 });
    // From another connection, as a rebuild in another process would ask.
    const elsewhere = await fixture.connect();
    await ledgerCaughtUp(elsewhere, { timeoutMs: 5_000 });
    const metrics = await registry.getMetricsAsJSON();
    const value = (name: string) => metrics.find((m) => m.name === name)?.values[0]?.value;
    expect(value('allot_credits_worker_events_applied_total')).toBe(102);
    expect(value('allot_credits_worker_ledger_entries_total')).toBe(100);
    expect(value('allot_credits_worker_lag_messages')).toBe(0);
  });

  it('applies once what a crashed worker had committed but not acknowledged', async () => {
    await publishHolds(0, 30);
    // A worker fetches, commits, and dies before acknowledging.
    const doomed = await fixture.connect();
    const consumer = await doomed.consumer(CREDITS_STREAM, { durable: CREDITS_DURABLE, ackWaitMs: 1_000 });
    const taken = await consumer.fetch({ max: 4, expiresMs: 1_000 });
    expect(taken.length).toBeGreaterThan(0);
    const events = taken.flatMap((m) => JSON.parse(new TextDecoder().decode(m.data)).events as CreditEvent[]);
    await ledger.store.transaction((tx) => applyEvents(tx, events));
    await doomed.close();

    const worker = await startWorker({ ackWaitMs: 1_000 });
    await worker.caughtUp({ timeoutMs: 15_000 });
    await expectHoldsApplied(30);
    // The redelivered messages were applied again, and changed nothing.
    expect(worker.stats.messagesApplied).toBe(6);
    expect(worker.stats.ledgerEntries).toBe(60 - events.filter((e) => e.type === 'hold.settled').length * 2);
  });

  it('finishes the batch in hand on stop, and a new worker carries on from there', async () => {
    const first = await startWorker({ fetchMax: 2 });
    await publishHolds(0, 50);
    await vi.waitFor(() => expect(first.stats.messagesApplied).toBeGreaterThan(0), { timeout: 5_000 });
    await first.stop();
    expect(first.running).toBe(false);
    await publishHolds(50, 25);
    const second = await startWorker();
    await second.caughtUp({ timeoutMs: 10_000 });
    await expectHoldsApplied(75);
    expect(first.stats.messagesApplied + second.stats.messagesApplied).toBe(15);
    await expect(first.caughtUp()).rejects.toThrow(/not running/);
  });

  it('terminates a malformed message, drops an event the ledger cannot take, and keeps going', async () => {
    const worker = await startWorker();
    await publishHolds(0, 5);
    await fixture.bus.publish(creditsSubject(0), encoder.encode('not json'));
    await fixture.bus.publish(
      creditsSubject(1),
      encoder.encode(JSON.stringify({ events: [{ type: 'hold.nope' }] })),
    );
    const negative = { ...ev.settled('bad', { held: 1n, debits: [['g1', 1n]] }), released: '-5' };
    await publish(fixture.bus, [
      negative,
      ev.reserved('h5', 10n),
      ev.settled('h5', { held: 10n, debits: [['g1', 7n]], released: 3n }),
    ]);
    await publishHolds(6, 5);
    await worker.caughtUp({ timeoutMs: 10_000 });
    const state = await ledgerState(ledger.store, tenant);
    expect(state.holds.map((h) => h.id).sort()).toEqual(Array.from({ length: 11 }, (_, i) => `h${i}`).sort());
    expect(worker.stats).toMatchObject({ malformed: 2, rejectedEvents: 1, retried: 0 });
  });

  it('retries a failed commit with backoff until PostgreSQL takes it', async () => {
    const flaky = new FlakyStore(ledger.store);
    let outage = 3;
    flaky.failing = () =>
      outage-- > 0 ? Object.assign(new Error('connection terminated'), { code: '57P01' }) : null;
    const worker = await startWorker({ store: flaky });
    await publishHolds(0, 10);
    await worker.caughtUp({ timeoutMs: 10_000 });
    await expectHoldsApplied(10);
    expect(worker.stats.retried).toBeGreaterThan(0);
  });

  it('holds up only the message PostgreSQL refuses, and applies it once it can', async () => {
    const flaky = new FlakyStore(ledger.store);
    let refusing = true;
    const poison = ev.reserved('poison', 10n);
    // The second parameter of applyEvents' statement holds the batch's holds.
    flaky.failing = (params) =>
      refusing && String(params?.[1] ?? '').includes('"poison"')
        ? Object.assign(new Error('check constraint violated'), { code: '23514' })
        : null;
    const worker = await startWorker({ store: flaky, fetchMax: 16 });
    await publishHolds(0, 10);
    await publish(fixture.bus, [poison]);
    await publishHolds(10, 10);
    await vi.waitFor(async () => expect((await ledgerState(ledger.store, tenant)).holds).toHaveLength(20), {
      timeout: 10_000,
    });
    await expect(worker.caughtUp({ timeoutMs: 300 })).rejects.toThrow(/not caught up/);
    expect(worker.stats.retried).toBeGreaterThan(0);
    refusing = false;
    await worker.caughtUp({ timeoutMs: 10_000 });
    const state = await ledgerState(ledger.store, tenant);
    expect(state.holds).toHaveLength(21);
    expect(state.holds.find((h) => h.id === 'poison')).toMatchObject({ status: 'active' });
  });
});
