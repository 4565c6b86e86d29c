/**
 * The background republish of credit events whose append failed, on both backends: the caller
 * still hears 503, and once the stream takes publishes again the events land under the same
 * ids, so the stream's view deduplicated by event id holds each once, whether or not the caller
 * retried too. The queue is bounded (oldest dropped) and `close()` flushes it.
 */
import { AppError } from '@allot/kit';
import type { PublishAck, PublishOptions } from '@allot/kit/bus';
import { Registry } from 'prom-client';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { CreditEvent } from '../src/domain/events.ts';
import { CreditsEngine } from '../src/engine.ts';
import type { PoolRef } from '../src/store/keys.ts';
import { CreditEventPublisher, type PublisherOptions } from '../src/store/publisher.ts';
import {
  addGrant,
  type BackendKind,
  dedupeEvents,
  ForwardingBus,
  type HotPath,
  openHotPath,
} from './support/hot-path.ts';

const pool: PoolRef = { tenant: 't1', customerId: 'c1', creditType: 'credits' };

/**
 * A bus whose publishes go wrong while `outage` says so: `fail` stores nothing (NATS down),
 * `lost-ack` stores and then fails (acknowledged too late). Everything else passes through.
 */
class OutageBus extends ForwardingBus {
  outage: 'fail' | 'lost-ack' | undefined;
  attempts = 0;

  override async publish(subject: string, data: Uint8Array, opts?: PublishOptions): Promise<PublishAck> {
    this.attempts++;
    if (this.outage === 'fail') throw new Error('injected: stream unavailable');
    const ack = await this.inner.publish(subject, data, opts);
    if (this.outage === 'lost-ack') throw new Error('injected: acknowledgement lost');
    return ack;
  }
}

async function rejection(pending: Promise<unknown>): Promise<unknown> {
  return pending.then(
    () => expect.unreachable('expected a rejection'),
    (error: unknown) => error,
  );
}

describe.each<BackendKind>(['embedded', 'redis'])('credit events republished on %s', (kind) => {
  let hp: HotPath;
  let bus: OutageBus;
  let publisher: CreditEventPublisher;
  let engine: CreditsEngine;
  let registry: Registry;

  /** An engine over the outage bus (which records, through `hp.bus`, what the stream stored). */
  function open(options: PublisherOptions = {}): void {
    bus = new OutageBus(hp.bus);
    registry = new Registry();
    publisher = new CreditEventPublisher(bus, {
      retry: { minDelayMs: 5, maxDelayMs: 40, ...options.retry },
      registry,
      ...(options.publishTimeoutMs ? { publishTimeoutMs: options.publishTimeoutMs } : {}),
    });
    engine = new CreditsEngine({ hot: hp.hot, publisher, ledger: hp.ledger });
  }

  /** Stored copies of one event id (the raw stream, duplicates included). */
  const copies = (id: string) => hp.bus.events.filter((e) => e.id === id);
  const stored = (): Map<string, CreditEvent> => dedupeEvents(hp.bus.events);
  const metric = async (name: string) =>
    (await registry.getMetricsAsJSON()).find((m) => m.name === name)?.values[0]?.value;

  beforeEach(async () => {
    hp = await openHotPath(kind, { realTime: true });
    open();
  });

  afterEach(async () => {
    try {
      expect(hp.bus.invalid).toEqual([]);
      // A repeated event id always carries the same effect.
      dedupeEvents(hp.bus.events);
    } finally {
      bus.outage = undefined;
      await publisher.close();
      await hp.close();
    }
  });

  it('answers 503 while the stream is down, then stores the settle once it is back', async () => {
    await addGrant(engine, pool, { id: 'g', amount: 100n });
    const hold = await engine.reserve({ ...pool, amount: 60n, ttlMs: 60_000 });
    if (hold.status !== 'reserved') throw new Error(hold.status);
    bus.outage = 'fail';
    const error = await rejection(engine.settle({ ...pool, holdId: hold.holdId, amount: 50n }));
    expect(error).toBeInstanceOf(AppError);
    expect(error).toMatchObject({ code: 'unavailable', status: 503 });
    expect(publisher.pendingRetries).toBe(1);
    // Still down: the background keeps failing, and keeps the event.
    await vi.waitFor(() => expect(bus.attempts).toBeGreaterThan(3), { timeout: 5_000 });
    expect(copies(`s:${hold.holdId}`)).toEqual([]);
    expect(publisher.pendingRetries).toBe(1);
    expect(await metric('allot_credits_publish_retry_pending')).toBe(1);

    bus.outage = undefined;
    await vi.waitFor(() => expect(publisher.pendingRetries).toBe(0), { timeout: 5_000 });
    expect(copies(`s:${hold.holdId}`)).toHaveLength(1);
    expect(stored().get(`s:${hold.holdId}`)).toMatchObject({
      type: 'hold.settled',
      requested: '50',
      released: '10',
      debits: [{ grantId: 'g', amount: '50' }],
    });
    expect(await metric('allot_credits_publish_retry_stored_total')).toBe(1);
    // The caller's late retry replays the same answer; the stream's view is unchanged.
    expect(await engine.settle({ ...pool, holdId: hold.holdId, amount: 50n })).toMatchObject({
      settled: 50n,
      released: 10n,
    });
    expect([...stored().values()].filter((e) => e.id === `s:${hold.holdId}`)).toHaveLength(1);
  });

  it('applies once when the caller retried first, and when the failed publish had been stored', async () => {
    open({ retry: { minDelayMs: 200, maxDelayMs: 400 } });
    await addGrant(engine, pool, { id: 'g', amount: 100n });
    const a = await engine.reserve({ ...pool, amount: 10n, ttlMs: 60_000 });
    const b = await engine.reserve({ ...pool, amount: 20n, ttlMs: 60_000 });
    // a: nothing stored; the caller retries as soon as the stream is back, before the background.
    bus.outage = 'fail';
    await rejection(engine.settle({ ...pool, holdId: a.holdId, amount: 10n }));
    bus.outage = undefined;
    await engine.settle({ ...pool, holdId: a.holdId, amount: 10n });
    // b: stored, but the acknowledgement was lost.
    bus.outage = 'lost-ack';
    await rejection(engine.release({ ...pool, holdId: b.holdId }));
    expect(copies(`l:${b.holdId}`)).toHaveLength(1);
    bus.outage = undefined;
    expect(publisher.pendingRetries).toBe(2);

    await vi.waitFor(() => expect(publisher.pendingRetries).toBe(0), { timeout: 5_000 });
    // Two copies of each in the raw stream, one effect each by id (dedupeEvents checks they match).
    expect(copies(`s:${a.holdId}`)).toHaveLength(2);
    expect(copies(`l:${b.holdId}`)).toHaveLength(2);
    const view = stored();
    expect(view.get(`s:${a.holdId}`)).toMatchObject({ debits: [{ grantId: 'g', amount: '10' }] });
    expect(view.get(`l:${b.holdId}`)).toMatchObject({ amount: '20', reason: 'released' });
  });

  it('republishes grant, void, sweep and expiry records, but not an undone reserve', async () => {
    await addGrant(engine, pool, { id: 'g1', amount: 100n }, 'soft');
    const lapsing = await engine.reserve({ ...pool, amount: 5n, ttlMs: 200 });
    const h = await engine.reserve({ ...pool, amount: 0n, ttlMs: 60_000 });
    await engine.settle({ ...pool, holdId: h.holdId, amount: 150n }); // 55 of overdraft
    bus.outage = 'fail';
    await rejection(addGrant(engine, pool, { id: 'g2', amount: 100n }));
    await rejection(engine.retireGrant({ ...pool, grantId: 'g2', kind: 'voided' }));
    await new Promise((resolve) => setTimeout(resolve, 300));
    await rejection(engine.sweep(pool));
    await rejection(engine.recordExpiry({ ...pool, grantId: 'g-old', amount: 7n, at: Date.now() }));
    const undone = await rejection(
      engine.reserve({ ...pool, amount: 1n, ttlMs: 60_000, holdId: 'h-undone' }),
    );
    expect(undone).toMatchObject({ code: 'unavailable' });
    expect(publisher.pendingRetries).toBe(4);

    bus.outage = undefined;
    await vi.waitFor(() => expect(publisher.pendingRetries).toBe(0), { timeout: 5_000 });
    const view = stored();
    expect(view.get('od:g2')).toMatchObject({ type: 'overdraft.settled', amount: '55' });
    expect(view.get('gv:g2')).toMatchObject({ type: 'grant.voided', amount: '45' });
    expect(view.get(`x:${lapsing.holdId}`)).toMatchObject({ type: 'hold.released', reason: 'expired' });
    expect(view.get('ge:g-old')).toMatchObject({ type: 'grant.expired', amount: '7' });
    // The reserve was undone in Redis: its event is not republished.
    expect(view.has('r:h-undone')).toBe(false);
  });

  it('keeps at most maxPending events, dropping the oldest', async () => {
    open({ retry: { maxPending: 3, background: false } });
    await addGrant(engine, pool, { id: 'g', amount: 100n });
    const holds: string[] = [];
    for (let i = 0; i < 5; i++) {
      const hold = await engine.reserve({ ...pool, amount: 1n, ttlMs: 60_000 });
      holds.push(hold.holdId);
    }
    bus.outage = 'fail';
    for (const holdId of holds) await rejection(engine.settle({ ...pool, holdId, amount: 1n }));
    expect(publisher.pendingRetries).toBe(3);
    expect(await metric('allot_credits_publish_retry_dropped_total')).toBe(2);
    expect(await publisher.retryPending()).toBe(false);
    expect(publisher.pendingRetries).toBe(3);

    bus.outage = undefined;
    expect(await publisher.retryPending()).toBe(true);
    const view = stored();
    expect(holds.map((id) => view.has(`s:${id}`))).toEqual([false, false, true, true, true]);
  });

  it('flushes what is waiting on close, and gives up after closeTimeoutMs', async () => {
    // The background would not try for a minute: only close() can store these.
    open({ retry: { minDelayMs: 60_000, maxDelayMs: 60_000 } });
    await addGrant(engine, pool, { id: 'g', amount: 100n });
    const hold = await engine.reserve({ ...pool, amount: 10n, ttlMs: 60_000 });
    bus.outage = 'fail';
    await rejection(engine.release({ ...pool, holdId: hold.holdId }));
    expect(publisher.pendingRetries).toBe(1);
    bus.outage = undefined;
    expect(await publisher.close()).toBe(0);
    expect(copies(`l:${hold.holdId}`)).toHaveLength(1);

    open({ retry: { minDelayMs: 10, maxDelayMs: 50, closeTimeoutMs: 300 } });
    const other = await engine.reserve({ ...pool, amount: 10n, ttlMs: 60_000 });
    bus.outage = 'fail';
    await rejection(engine.release({ ...pool, holdId: other.holdId }));
    const started = Date.now();
    expect(await publisher.close()).toBe(1);
    expect(Date.now() - started).toBeLessThan(2_000);
    expect(copies(`l:${other.holdId}`)).toEqual([]);
  });
});

/** A bus whose publishes wait until the test lets them through, counting the events in each. */
class GatedBus extends ForwardingBus {
  readonly sent: number[] = [];
  readonly #waiting: (() => void)[] = [];

  override async publish(subject: string, data: Uint8Array, opts?: PublishOptions): Promise<PublishAck> {
    this.sent.push((JSON.parse(Buffer.from(data).toString('utf8')) as { events: unknown[] }).events.length);
    await new Promise<void>((resolve) => this.#waiting.push(resolve));
    return this.inner.publish(subject, data, opts);
  }

  /** Lets the oldest waiting publish through. */
  next(): void {
    this.#waiting.shift()?.();
  }
}

describe('credit event appends under load', () => {
  let hp: HotPath;
  beforeEach(async () => {
    hp = await openHotPath('embedded', { realTime: true });
  });
  afterEach(async () => {
    await hp.close();
  });

  const event = (n: number): CreditEvent => ({
    id: `l:h${n}`,
    at: 1,
    tenant: 't1',
    customerId: 'c1',
    creditType: 'credits',
    resourceId: '',
    type: 'hold.released',
    holdId: `h${n}`,
    amount: '1',
    reason: 'released',
  });
  const turn = () => new Promise((resolve) => setImmediate(resolve));

  it('keeps at most maxInFlight appends out per partition and sends what waited as one message', async () => {
    const bus = new GatedBus(hp.bus);
    const publisher = new CreditEventPublisher(bus, { maxInFlight: 1 });
    const first = publisher.publish('c1', [event(0)]);
    await turn();
    const waiting = Array.from({ length: 20 }, (_, i) => publisher.publish('c1', [event(i + 1)]));
    await turn();
    expect(bus.sent).toEqual([1]);
    bus.next();
    await first;
    await turn();
    expect(bus.sent).toEqual([1, 20]);
    bus.next();
    await Promise.all(waiting);
    expect(hp.bus.events.map((e) => e.id)).toEqual(Array.from({ length: 21 }, (_, i) => `l:h${i}`));
  });

  it('fails what waits behind an append that failed, without sending it', async () => {
    const bus = new GatedBus(hp.bus);
    const publisher = new CreditEventPublisher(bus, { maxInFlight: 1, publishTimeoutMs: 100 });
    const first = publisher.publish('c1', [event(0)]).catch((e: Error) => e.message);
    await turn();
    const queued = publisher.publish('c1', [event(1)]).catch((e: Error) => e.message);
    // The first append is never acknowledged: it times out, and the one waiting fails with it.
    expect(await first).toBe('credit events not acknowledged in time');
    expect(await queued).toBe('credit events not acknowledged in time');
    expect(bus.sent).toEqual([1]);
    expect(publisher.publishBoundMs).toBe(200);
  });
});
