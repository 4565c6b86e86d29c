/**
 * The bus conformance suite: every adapter must pass it unchanged. It pins down the JetStream
 * semantics the services rely on (sequences, dedupe, ack/nak/term/working, redelivery, max
 * deliver, competing fetchers, KV revisions and CAS, watch order, notifications, namespaces).
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Bus, BusMessage, KvEntry } from '../src/bus/port.ts';
import { BusConflictError, BusNoStreamError, BusNotFoundError } from '../src/bus/port.ts';
import { type BusFixture, uniqueBusPrefix } from '../src/testing/bus.ts';

/** Short, so the suite is quick; redelivery tests wait a little over it. */
const ACK_WAIT_MS = 1000;

const encode = (text: string): Uint8Array => new TextEncoder().encode(text);
const decode = (bytes: Uint8Array): string => new TextDecoder().decode(bytes);
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

async function eventually(check: () => void, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      check();
      return;
    } catch (err) {
      if (Date.now() > deadline) throw err;
      await sleep(20);
    }
  }
}

const payloads = (messages: BusMessage[]): string[] => messages.map((m) => decode(m.data));
const seqs = (messages: BusMessage[]): number[] => messages.map((m) => m.seq);
const summary = (entries: KvEntry[]): Array<[string, string, number, string]> =>
  entries.map((e) => [e.key, decode(e.value), e.revision, e.operation]);

export function busConformance(name: string, open: () => Promise<BusFixture>): void {
  describe(`bus conformance: ${name}`, () => {
    let fixture: BusFixture;
    let bus: Bus;

    beforeEach(async () => {
      fixture = await open();
      bus = fixture.bus;
    });

    afterEach(async () => {
      await fixture.cleanup();
    });

    async function publishAll(subject: string, texts: string[]): Promise<void> {
      for (const text of texts) await bus.publish(subject, encode(text));
    }

    describe('streams', () => {
      it('acknowledges per-stream sequences from 1', async () => {
        await bus.ensureStream({ name: 'ORDERS', subjects: ['orders.>'] });
        const acks = [];
        for (const text of ['a', 'b', 'c']) acks.push(await bus.publish('orders.new', encode(text)));
        expect(acks).toEqual([
          { stream: 'ORDERS', seq: 1, duplicate: false },
          { stream: 'ORDERS', seq: 2, duplicate: false },
          { stream: 'ORDERS', seq: 3, duplicate: false },
        ]);
      });

      it('rejects a publish that no stream captures', async () => {
        await expect(bus.publish('nowhere.x', encode('x'))).rejects.toThrow(
          new BusNoStreamError('nowhere.x').message,
        );
        await expect(bus.publish('nowhere.x', encode('x'))).rejects.toBeInstanceOf(BusNoStreamError);
      });

      it('ensureStream is idempotent and updates subjects in place', async () => {
        await bus.ensureStream({ name: 'ORDERS', subjects: ['orders.>'] });
        await bus.ensureStream({ name: 'ORDERS', subjects: ['orders.>'] });
        expect((await bus.publish('orders.new', encode('a'))).seq).toBe(1);
        await expect(bus.publish('refunds.new', encode('r'))).rejects.toBeInstanceOf(BusNoStreamError);
        await bus.ensureStream({ name: 'ORDERS', subjects: ['orders.>', 'refunds.>'] });
        expect(await bus.publish('refunds.new', encode('r'))).toEqual({
          stream: 'ORDERS',
          seq: 2,
          duplicate: false,
        });
      });

      it('refuses a stream whose subjects overlap another stream', async () => {
        await bus.ensureStream({ name: 'A', subjects: ['shared.>'] });
        await expect(bus.ensureStream({ name: 'B', subjects: ['shared.x'] })).rejects.toThrow(/overlap/);
      });

      it('captures only subjects matching `*` and `>` patterns', async () => {
        await bus.ensureStream({ name: 'EVENTS', subjects: ['ev.*.created', 'audit.>'] });
        expect((await bus.publish('ev.order.created', encode('1'))).seq).toBe(1);
        expect((await bus.publish('audit.a.b.c', encode('2'))).seq).toBe(2);
        await expect(bus.publish('ev.order.deleted', encode('x'))).rejects.toBeInstanceOf(BusNoStreamError);
        await expect(bus.publish('ev.a.b.created', encode('x'))).rejects.toBeInstanceOf(BusNoStreamError);
        await expect(bus.publish('audit', encode('x'))).rejects.toBeInstanceOf(BusNoStreamError);
      });

      it('keeps two streams with separate subjects and sequences', async () => {
        await bus.ensureStream({ name: 'A', subjects: ['a.>'] });
        await bus.ensureStream({ name: 'B', subjects: ['b.>'] });
        expect(await bus.publish('a.1', encode('a1'))).toEqual({ stream: 'A', seq: 1, duplicate: false });
        expect(await bus.publish('b.1', encode('b1'))).toEqual({ stream: 'B', seq: 1, duplicate: false });
        expect(await bus.publish('a.2', encode('a2'))).toEqual({ stream: 'A', seq: 2, duplicate: false });
        const consumer = await bus.consumer('B', { durable: 'reader', ackWaitMs: ACK_WAIT_MS });
        expect(payloads(await consumer.fetch({ max: 10, expiresMs: 0 }))).toEqual(['b1']);
      });

      it('stores a repeated msgId once within the duplicate window, answering the original sequence', async () => {
        await bus.ensureStream({ name: 'EV', subjects: ['ev.>'], duplicateWindowMs: 500 });
        expect(await bus.publish('ev.a', encode('1'), { msgId: 'm1' })).toEqual({
          stream: 'EV',
          seq: 1,
          duplicate: false,
        });
        expect(await bus.publish('ev.a', encode('1 again'), { msgId: 'm1' })).toEqual({
          stream: 'EV',
          seq: 1,
          duplicate: true,
        });
        expect((await bus.publish('ev.b', encode('2'), { msgId: 'm2' })).seq).toBe(2);
        expect((await bus.publish('ev.b', encode('3'))).seq).toBe(3);
        expect(await bus.publish('ev.b', encode('3'))).toEqual({ stream: 'EV', seq: 4, duplicate: false });
        const consumer = await bus.consumer('EV', { durable: 'reader', ackWaitMs: ACK_WAIT_MS });
        expect(payloads(await consumer.fetch({ max: 10, expiresMs: 0 }))).toEqual(['1', '2', '3', '3']);
        // Well past the window the id is forgotten.
        await sleep(1500);
        expect(await bus.publish('ev.a', encode('1 later'), { msgId: 'm1' })).toEqual({
          stream: 'EV',
          seq: 5,
          duplicate: false,
        });
      });

      it('round-trips headers, and the msgId as Nats-Msg-Id', async () => {
        await bus.ensureStream({ name: 'EV', subjects: ['ev.>'] });
        await bus.publish('ev.a', encode('x'), {
          msgId: 'id-1',
          headers: { 'X-Trace': 'abc', tenant: 't1' },
        });
        await bus.publish('ev.a', encode('y'));
        const consumer = await bus.consumer('EV', { durable: 'reader', ackWaitMs: ACK_WAIT_MS });
        const [first, second] = await consumer.fetch({ max: 2, expiresMs: 0 });
        expect(first?.headers).toEqual({ 'X-Trace': 'abc', tenant: 't1', 'Nats-Msg-Id': 'id-1' });
        expect(first?.subject).toBe('ev.a');
        expect(second?.headers).toEqual({});
      });

      it('drops messages older than maxAge', async () => {
        await bus.ensureStream({ name: 'EPHEMERAL', subjects: ['eph.>'], maxAgeMs: 300 });
        await bus.publish('eph.a', encode('old'));
        await sleep(1500);
        await bus.publish('eph.a', encode('new'));
        const consumer = await bus.consumer('EPHEMERAL', { durable: 'reader', ackWaitMs: ACK_WAIT_MS });
        expect(payloads(await consumer.fetch({ max: 10, expiresMs: 0 }))).toEqual(['new']);
      });

      it('refuses a duplicate window longer than the max age', async () => {
        await expect(
          bus.ensureStream({ name: 'BAD', subjects: ['bad.>'], maxAgeMs: 1000, duplicateWindowMs: 5000 }),
        ).rejects.toThrow(/duplicates window/);
      });

      it('deleteStream removes the stream and tolerates a missing one', async () => {
        await bus.ensureStream({ name: 'GONE', subjects: ['gone.>'] });
        await bus.deleteStream('GONE');
        await bus.deleteStream('GONE');
        await expect(bus.publish('gone.x', encode('x'))).rejects.toBeInstanceOf(BusNoStreamError);
      });
    });

    describe('consumers', () => {
      beforeEach(async () => {
        await bus.ensureStream({ name: 'WORK', subjects: ['work.>'] });
      });

      it('fetch returns what is available at once, up to max, in stream order', async () => {
        await publishAll('work.a', ['1', '2', '3', '4', '5']);
        const consumer = await bus.consumer('WORK', { durable: 'w', ackWaitMs: 30_000 });
        const first = await consumer.fetch({ max: 3, expiresMs: 5000 });
        expect(seqs(first)).toEqual([1, 2, 3]);
        expect(first.map((m) => m.deliveryCount)).toEqual([1, 1, 1]);
        // Fewer than max are available: they come back without waiting for the expiry.
        const started = Date.now();
        const rest = await consumer.fetch({ max: 10, expiresMs: 20_000 });
        expect(payloads(rest)).toEqual(['4', '5']);
        expect(Date.now() - started).toBeLessThan(15_000);
      });

      it('fetch waits for the first message to arrive', async () => {
        const consumer = await bus.consumer('WORK', { durable: 'w', ackWaitMs: 30_000 });
        const fetched = consumer.fetch({ max: 10, expiresMs: 10_000 });
        await sleep(200);
        await bus.publish('work.a', encode('late'));
        expect(payloads(await fetched)).toEqual(['late']);
      });

      it('fetch returns nothing once expiresMs passes without messages', async () => {
        const consumer = await bus.consumer('WORK', { durable: 'w', ackWaitMs: 30_000 });
        expect(await consumer.fetch({ max: 10, expiresMs: 300 })).toEqual([]);
        expect(await consumer.fetch({ max: 10, expiresMs: 0 })).toEqual([]);
      });

      it('never redelivers an acked message', async () => {
        await publishAll('work.a', ['1', '2']);
        const consumer = await bus.consumer('WORK', { durable: 'w', ackWaitMs: ACK_WAIT_MS });
        const fetched = await consumer.fetch({ max: 2, expiresMs: 0 });
        for (const message of fetched) await message.ack();
        await sleep(ACK_WAIT_MS + 500);
        expect(await consumer.fetch({ max: 10, expiresMs: 300 })).toEqual([]);
        expect(await consumer.pending()).toBe(0);
      });

      it('redelivers an unacked message after ackWait with deliveryCount 2', async () => {
        await bus.publish('work.a', encode('x'), { headers: { k: 'v' } });
        const consumer = await bus.consumer('WORK', { durable: 'w', ackWaitMs: ACK_WAIT_MS });
        const [first] = await consumer.fetch({ max: 1, expiresMs: 0 });
        expect(first?.deliveryCount).toBe(1);
        const [again] = await consumer.fetch({ max: 1, expiresMs: ACK_WAIT_MS * 4 });
        expect(again).toMatchObject({
          seq: first?.seq,
          deliveryCount: 2,
          subject: 'work.a',
          headers: { k: 'v' },
        });
        expect(decode(again!.data)).toBe('x');
        await again!.ack();
        expect(await consumer.pending()).toBe(0);
      });

      it('nak redelivers at once, or after the given delay', async () => {
        await bus.publish('work.a', encode('x'));
        const consumer = await bus.consumer('WORK', { durable: 'w', ackWaitMs: 30_000 });
        const [first] = await consumer.fetch({ max: 1, expiresMs: 0 });
        first!.nak();
        const [second] = await consumer.fetch({ max: 1, expiresMs: 2000 });
        expect(second).toMatchObject({ seq: 1, deliveryCount: 2 });
        second!.nak(1000);
        expect(await consumer.fetch({ max: 1, expiresMs: 200 })).toEqual([]);
        const [third] = await consumer.fetch({ max: 1, expiresMs: 5000 });
        expect(third).toMatchObject({ seq: 1, deliveryCount: 3 });
      });

      it('serves redeliveries before new messages', async () => {
        await publishAll('work.a', ['1', '2']);
        const consumer = await bus.consumer('WORK', { durable: 'w', ackWaitMs: 30_000 });
        const [first] = await consumer.fetch({ max: 1, expiresMs: 0 });
        first!.nak();
        const next = await consumer.fetch({ max: 2, expiresMs: 0 });
        expect(next.map((m) => [m.seq, m.deliveryCount])).toEqual([
          [1, 2],
          [2, 1],
        ]);
      });

      it('term stops redelivery', async () => {
        await publishAll('work.a', ['1', '2']);
        const consumer = await bus.consumer('WORK', { durable: 'w', ackWaitMs: ACK_WAIT_MS });
        const [poison, good] = await consumer.fetch({ max: 2, expiresMs: 0 });
        poison!.term();
        await good!.ack();
        await sleep(ACK_WAIT_MS + 500);
        expect(await consumer.fetch({ max: 10, expiresMs: 300 })).toEqual([]);
        expect(await consumer.pending()).toBe(0);
      });

      it('ignores a second settle of the same message', async () => {
        await bus.publish('work.a', encode('x'));
        const consumer = await bus.consumer('WORK', { durable: 'w', ackWaitMs: 30_000 });
        const [message] = await consumer.fetch({ max: 1, expiresMs: 0 });
        await message!.ack();
        message!.nak();
        await message!.ack();
        expect(await consumer.fetch({ max: 1, expiresMs: 200 })).toEqual([]);
        expect(await consumer.pending()).toBe(0);
      });

      it('working resets the ack timer', async () => {
        await bus.publish('work.a', encode('slow'));
        const consumer = await bus.consumer('WORK', { durable: 'w', ackWaitMs: ACK_WAIT_MS });
        const [message] = await consumer.fetch({ max: 1, expiresMs: 0 });
        await sleep(ACK_WAIT_MS * 0.6);
        message!.working();
        await sleep(ACK_WAIT_MS * 0.6);
        message!.working();
        await sleep(ACK_WAIT_MS * 0.6);
        // 1.8 ack waits after delivery, but only 0.6 after the last progress report.
        expect(await consumer.fetch({ max: 1, expiresMs: 0 })).toEqual([]);
        const [again] = await consumer.fetch({ max: 1, expiresMs: ACK_WAIT_MS * 4 });
        expect(again).toMatchObject({ seq: 1, deliveryCount: 2 });
      });

      it('stops redelivering after maxDeliver deliveries', async () => {
        await bus.publish('work.a', encode('x'));
        const consumer = await bus.consumer('WORK', { durable: 'w', ackWaitMs: ACK_WAIT_MS, maxDeliver: 2 });
        const [first] = await consumer.fetch({ max: 1, expiresMs: 0 });
        expect(first?.deliveryCount).toBe(1);
        const [second] = await consumer.fetch({ max: 1, expiresMs: ACK_WAIT_MS * 4 });
        expect(second?.deliveryCount).toBe(2);
        expect(await consumer.fetch({ max: 1, expiresMs: ACK_WAIT_MS * 2 })).toEqual([]);
        expect(await consumer.pending()).toBe(0);
      });

      it('deliverPolicy new starts after the messages already stored', async () => {
        await publishAll('work.a', ['old1', 'old2']);
        const consumer = await bus.consumer('WORK', {
          durable: 'w',
          ackWaitMs: 30_000,
          deliverPolicy: 'new',
        });
        expect(await consumer.fetch({ max: 10, expiresMs: 0 })).toEqual([]);
        await bus.publish('work.a', encode('new'));
        const fetched = await consumer.fetch({ max: 10, expiresMs: 2000 });
        expect(fetched.map((m) => [m.seq, decode(m.data)])).toEqual([[3, 'new']]);
      });

      it('filterSubject selects the subjects a consumer sees', async () => {
        await bus.publish('work.a.1', encode('a1'));
        await bus.publish('work.b.1', encode('b1'));
        await bus.publish('work.a.2', encode('a2'));
        const consumer = await bus.consumer('WORK', {
          durable: 'w',
          ackWaitMs: 30_000,
          filterSubject: 'work.a.*',
        });
        const fetched = await consumer.fetch({ max: 10, expiresMs: 0 });
        expect(fetched.map((m) => [m.seq, m.subject])).toEqual([
          [1, 'work.a.1'],
          [3, 'work.a.2'],
        ]);
        expect(await consumer.pending()).toBe(2);
      });

      it('re-binding a durable with a new filter keeps its position', async () => {
        await bus.publish('work.a.1', encode('a1'));
        await bus.publish('work.b.1', encode('b1'));
        await bus.publish('work.a.2', encode('a2'));
        const narrow = await bus.consumer('WORK', {
          durable: 'w',
          ackWaitMs: 30_000,
          filterSubject: 'work.a.*',
        });
        const [first] = await narrow.fetch({ max: 1, expiresMs: 0 });
        await first!.ack();
        const wide = await bus.consumer('WORK', { durable: 'w', ackWaitMs: 30_000 });
        await bus.publish('work.b.2', encode('b2'));
        expect(payloads(await wide.fetch({ max: 10, expiresMs: 0 }))).toEqual(['b1', 'a2', 'b2']);
      });

      it('fetch fails once the consumer is gone', async () => {
        const consumer = await bus.consumer('WORK', { durable: 'w', ackWaitMs: 30_000 });
        await bus.deleteStream('WORK');
        await expect(consumer.fetch({ max: 1, expiresMs: 100 })).rejects.toThrow(
          'consumer not found: WORK/w',
        );
      });

      it('a durable resumes after re-binding: only unacked and new messages', async () => {
        await publishAll('work.a', ['1', '2', '3', '4', '5']);
        const consumer = await bus.consumer('WORK', { durable: 'w', ackWaitMs: ACK_WAIT_MS });
        const [one, two, three] = await consumer.fetch({ max: 3, expiresMs: 0 });
        await one!.ack();
        await two!.ack();
        expect(three?.seq).toBe(3);
        await bus.close();

        const again = await fixture.connect();
        const rebound = await again.consumer('WORK', { durable: 'w', ackWaitMs: ACK_WAIT_MS });
        const fresh = await rebound.fetch({ max: 10, expiresMs: 0 });
        expect(fresh.map((m) => [m.seq, m.deliveryCount])).toEqual([
          [4, 1],
          [5, 1],
        ]);
        const [redelivered] = await rebound.fetch({ max: 10, expiresMs: ACK_WAIT_MS * 4 });
        expect(redelivered).toMatchObject({ seq: 3, deliveryCount: 2 });
      });

      it('pending counts undelivered plus delivered-but-unacked messages', async () => {
        await publishAll('work.a', ['1', '2', '3', '4']);
        const consumer = await bus.consumer('WORK', { durable: 'w', ackWaitMs: 30_000 });
        expect(await consumer.pending()).toBe(4);
        const fetched = await consumer.fetch({ max: 2, expiresMs: 0 });
        expect(await consumer.pending()).toBe(4);
        await fetched[0]!.ack();
        expect(await consumer.pending()).toBe(3);
        fetched[1]!.term();
        expect(await consumer.pending()).toBe(2);
        for (const message of await consumer.fetch({ max: 10, expiresMs: 0 })) await message.ack();
        expect(await consumer.pending()).toBe(0);
      });

      it('competing fetchers on one durable never hold the same unacked message', async () => {
        const texts = Array.from({ length: 20 }, (_, i) => `m${i + 1}`);
        await publishAll('work.a', texts);
        const other = await fixture.connect();
        const fetchers = [
          await bus.consumer('WORK', { durable: 'w', ackWaitMs: 30_000 }),
          await other.consumer('WORK', { durable: 'w', ackWaitMs: 30_000 }),
        ];
        const received: BusMessage[][] = [[], []];
        for (let round = 0; round < 20 && received.flat().length < texts.length; round++) {
          const batches = await Promise.all(fetchers.map((f) => f.fetch({ max: 3, expiresMs: 300 })));
          for (const [i, batch] of batches.entries()) received[i]!.push(...batch);
        }
        const all = seqs(received.flat());
        expect(new Set(all).size).toBe(all.length);
        expect([...all].sort((a, b) => a - b)).toEqual(texts.map((_, i) => i + 1));
        expect(received[0]!.length).toBeGreaterThan(0);
        expect(received[1]!.length).toBeGreaterThan(0);
        for (const message of received.flat()) await message.ack();
        expect(await fetchers[0]!.pending()).toBe(0);
      });
    });

    describe('stream and consumer info', () => {
      beforeEach(async () => {
        await bus.ensureStream({ name: 'WORK', subjects: ['work.>'] });
      });

      it('streamInfo reports the last sequence and the message count', async () => {
        expect(await bus.streamInfo('WORK')).toEqual({ lastSeq: 0, messages: 0 });
        await publishAll('work.a', ['1', '2']);
        await bus.publish('work.b', encode('3'), { msgId: 'x' });
        await bus.publish('work.b', encode('3 again'), { msgId: 'x' });
        expect(await bus.streamInfo('WORK')).toEqual({ lastSeq: 3, messages: 3 });
        // Consuming does not remove anything from a limits stream.
        const consumer = await bus.consumer('WORK', { durable: 'w', ackWaitMs: 30_000 });
        for (const message of await consumer.fetch({ max: 10, expiresMs: 0 })) await message.ack();
        expect(await bus.streamInfo('WORK')).toEqual({ lastSeq: 3, messages: 3 });
      });

      it('streamInfo rejects a missing stream with BusNotFoundError', async () => {
        await expect(bus.streamInfo('NOPE')).rejects.toThrow(new BusNotFoundError('stream not found: NOPE'));
        await expect(bus.streamInfo('NOPE')).rejects.toBeInstanceOf(BusNotFoundError);
        await bus.deleteStream('WORK');
        await expect(bus.streamInfo('WORK')).rejects.toBeInstanceOf(BusNotFoundError);
      });

      it('info: nothing delivered yet, then one message delivered and acked', async () => {
        const consumer = await bus.consumer('WORK', { durable: 'w', ackWaitMs: 30_000 });
        expect(await consumer.info()).toEqual({ ackFloor: 0, pending: 0, delivered: 0 });
        await publishAll('work.a', ['1', '2', '3']);
        expect(await consumer.info()).toEqual({ ackFloor: 0, pending: 3, delivered: 0 });
        const [first] = await consumer.fetch({ max: 1, expiresMs: 0 });
        expect(await consumer.info()).toEqual({ ackFloor: 0, pending: 3, delivered: 1 });
        await first!.ack();
        expect(await consumer.info()).toEqual({ ackFloor: 1, pending: 2, delivered: 1 });
      });

      it('info: an out-of-order ack leaves the floor until the gap is acked', async () => {
        await publishAll('work.a', ['1', '2', '3', '4']);
        const consumer = await bus.consumer('WORK', { durable: 'w', ackWaitMs: 30_000 });
        const [one, two, three] = await consumer.fetch({ max: 3, expiresMs: 0 });
        await two!.ack();
        await three!.ack();
        expect(await consumer.info()).toEqual({ ackFloor: 0, pending: 2, delivered: 3 });
        await one!.ack();
        expect(await consumer.info()).toEqual({ ackFloor: 3, pending: 1, delivered: 3 });
        const [four] = await consumer.fetch({ max: 10, expiresMs: 0 });
        await four!.ack();
        expect(await consumer.info()).toEqual({ ackFloor: 4, pending: 0, delivered: 4 });
      });

      it('info: acking the earliest delivery moves the floor to just below the next unacked one', async () => {
        await publishAll('work.a', ['1', '2', '3', '4']);
        const consumer = await bus.consumer('WORK', { durable: 'w', ackWaitMs: 30_000 });
        const [one, two, three, four] = await consumer.fetch({ max: 4, expiresMs: 0 });
        const floors: number[] = [];
        for (const message of [three, one, two, four]) {
          await message!.ack();
          floors.push((await consumer.info()).ackFloor);
        }
        expect(floors).toEqual([0, 1, 3, 4]);
      });

      it('info: with a filter the floor and delivered can land on skipped messages', async () => {
        // a1 b2 a3 b4 a5 b6, the consumer sees a1 a3 a5.
        for (const letter of ['a', 'b', 'a', 'b', 'a', 'b'])
          await bus.publish(`work.${letter}`, encode(letter));
        const consumer = await bus.consumer('WORK', {
          durable: 'w',
          ackWaitMs: 30_000,
          filterSubject: 'work.a',
        });
        expect(await consumer.info()).toEqual({ ackFloor: 0, pending: 3, delivered: 0 });
        const [a1, a3] = await consumer.fetch({ max: 2, expiresMs: 0 });
        expect(await consumer.info()).toEqual({ ackFloor: 0, pending: 3, delivered: 3 });
        await a1!.ack();
        expect(await consumer.info()).toEqual({ ackFloor: 2, pending: 2, delivered: 3 });
        await a3!.ack();
        expect(await consumer.info()).toEqual({ ackFloor: 3, pending: 1, delivered: 3 });
        // Short of max: the fetch reads to the end of the stream, past b6.
        const [a5] = await consumer.fetch({ max: 10, expiresMs: 0 });
        expect(await consumer.info()).toEqual({ ackFloor: 3, pending: 1, delivered: 6 });
        await a5!.ack();
        expect(await consumer.info()).toEqual({ ackFloor: 6, pending: 0, delivered: 6 });
        await bus.publish('work.b', encode('b'));
        // A fetch that does not wait and finds nothing reads nothing; one that waits reads on.
        expect(await consumer.fetch({ max: 10, expiresMs: 0 })).toEqual([]);
        expect(await consumer.info()).toEqual({ ackFloor: 6, pending: 0, delivered: 6 });
        expect(await consumer.fetch({ max: 10, expiresMs: 200 })).toEqual([]);
        expect(await consumer.info()).toEqual({ ackFloor: 6, pending: 0, delivered: 7 });
      });

      it('info: with a filter, out-of-order acks', async () => {
        // b1 a2 b3 a4 b5 a6 b7, the consumer sees a2 a4 a6.
        for (const letter of ['b', 'a', 'b', 'a', 'b', 'a', 'b']) {
          await bus.publish(`work.${letter}`, encode(letter));
        }
        const consumer = await bus.consumer('WORK', {
          durable: 'w',
          ackWaitMs: 30_000,
          filterSubject: 'work.a',
        });
        const [a2, a4, a6] = await consumer.fetch({ max: 10, expiresMs: 0 });
        expect(seqs([a2!, a4!, a6!])).toEqual([2, 4, 6]);
        await a4!.ack();
        expect(await consumer.info()).toEqual({ ackFloor: 0, pending: 2, delivered: 7 });
        await a2!.ack();
        expect(await consumer.info()).toEqual({ ackFloor: 5, pending: 1, delivered: 7 });
        await a6!.ack();
        expect(await consumer.info()).toEqual({ ackFloor: 7, pending: 0, delivered: 7 });
      });

      it('info: a waiting fetch does not read past messages its filter skips', async () => {
        const consumer = await bus.consumer('WORK', {
          durable: 'w',
          ackWaitMs: 30_000,
          filterSubject: 'work.a',
        });
        const fetched = consumer.fetch({ max: 5, expiresMs: 600 });
        await sleep(100);
        await bus.publish('work.b', encode('b'));
        expect(await fetched).toEqual([]);
        expect(await consumer.info()).toEqual({ ackFloor: 0, pending: 0, delivered: 0 });
      });

      it('info: term counts as an ack for the floor', async () => {
        await publishAll('work.a', ['1', '2', '3']);
        const consumer = await bus.consumer('WORK', { durable: 'w', ackWaitMs: 30_000 });
        const [one, two, three] = await consumer.fetch({ max: 3, expiresMs: 0 });
        one!.term();
        expect(await consumer.info()).toEqual({ ackFloor: 1, pending: 2, delivered: 3 });
        three!.term();
        expect(await consumer.info()).toEqual({ ackFloor: 1, pending: 1, delivered: 3 });
        await two!.ack();
        expect(await consumer.info()).toEqual({ ackFloor: 3, pending: 0, delivered: 3 });
      });

      it('info: a redelivered message keeps its place for the floor', async () => {
        await publishAll('work.a', ['1', '2', '3']);
        const consumer = await bus.consumer('WORK', { durable: 'w', ackWaitMs: 30_000 });
        const [one, two, three] = await consumer.fetch({ max: 3, expiresMs: 0 });
        one!.nak();
        await two!.ack();
        expect(await consumer.info()).toEqual({ ackFloor: 0, pending: 2, delivered: 3 });
        const [again] = await consumer.fetch({ max: 3, expiresMs: 0 });
        expect(again).toMatchObject({ seq: 1, deliveryCount: 2 });
        await again!.ack();
        expect(await consumer.info()).toEqual({ ackFloor: 2, pending: 1, delivered: 3 });
        await three!.ack();
        expect(await consumer.info()).toEqual({ ackFloor: 3, pending: 0, delivered: 3 });
      });

      it('info: a message given up after maxDeliver does not move the floor, the next ack does', async () => {
        await publishAll('work.a', ['1', '2', '3']);
        const consumer = await bus.consumer('WORK', { durable: 'w', ackWaitMs: ACK_WAIT_MS, maxDeliver: 1 });
        const [one, two, three] = await consumer.fetch({ max: 3, expiresMs: 0 });
        await two!.ack();
        await three!.ack();
        expect(await consumer.info()).toEqual({ ackFloor: 0, pending: 1, delivered: 3 });
        await sleep(ACK_WAIT_MS + 500);
        expect(await consumer.fetch({ max: 10, expiresMs: 0 })).toEqual([]);
        expect(await consumer.info()).toEqual({ ackFloor: 0, pending: 0, delivered: 3 });
        // A late ack of the given-up delivery still counts.
        await one!.ack();
        expect(await consumer.info()).toEqual({ ackFloor: 3, pending: 0, delivered: 3 });
        await bus.publish('work.a', encode('4'));
        const [four] = await consumer.fetch({ max: 1, expiresMs: 0 });
        expect(await consumer.info()).toEqual({ ackFloor: 3, pending: 1, delivered: 4 });
        await four!.ack();
        expect(await consumer.info()).toEqual({ ackFloor: 4, pending: 0, delivered: 4 });
      });

      it('info: deliverPolicy new starts delivered at the last sequence, the floor at 0', async () => {
        await publishAll('work.a', ['1', '2']);
        const consumer = await bus.consumer('WORK', {
          durable: 'w',
          ackWaitMs: 30_000,
          deliverPolicy: 'new',
        });
        expect(await consumer.info()).toEqual({ ackFloor: 0, pending: 0, delivered: 2 });
        await publishAll('work.a', ['3', '4']);
        const [three, four] = await consumer.fetch({ max: 2, expiresMs: 0 });
        await four!.ack();
        expect(await consumer.info()).toEqual({ ackFloor: 0, pending: 1, delivered: 4 });
        await three!.ack();
        expect(await consumer.info()).toEqual({ ackFloor: 4, pending: 0, delivered: 4 });
      });

      it('info: pending messages dropped by max age count as acked', async () => {
        await bus.ensureStream({ name: 'EPHEMERAL', subjects: ['eph.>'], maxAgeMs: 300 });
        for (const text of ['1', '2', '3', '4']) await bus.publish('eph.a', encode(text));
        const consumer = await bus.consumer('EPHEMERAL', { durable: 'r', ackWaitMs: 30_000 });
        const [, two] = await consumer.fetch({ max: 3, expiresMs: 0 });
        await two!.ack();
        expect(await consumer.info()).toEqual({ ackFloor: 0, pending: 3, delivered: 3 });
        await sleep(1500);
        expect(await bus.streamInfo('EPHEMERAL')).toEqual({ lastSeq: 4, messages: 0 });
        expect(await consumer.info()).toEqual({ ackFloor: 3, pending: 0, delivered: 3 });
        // Nothing left: a fetch that does not wait reads nothing, one that waits reads to the end.
        expect(await consumer.fetch({ max: 10, expiresMs: 0 })).toEqual([]);
        expect(await consumer.info()).toEqual({ ackFloor: 3, pending: 0, delivered: 3 });
        expect(await consumer.fetch({ max: 10, expiresMs: 200 })).toEqual([]);
        expect(await consumer.info()).toEqual({ ackFloor: 3, pending: 0, delivered: 4 });
      });

      it('info, fetch and pending reject with BusNotFoundError once the consumer is gone', async () => {
        const consumer = await bus.consumer('WORK', { durable: 'w', ackWaitMs: 30_000 });
        await bus.deleteStream('WORK');
        const gone = new BusNotFoundError('consumer not found: WORK/w');
        await expect(consumer.info()).rejects.toThrow(gone);
        await expect(consumer.info()).rejects.toBeInstanceOf(BusNotFoundError);
        await expect(consumer.pending()).rejects.toBeInstanceOf(BusNotFoundError);
        await expect(consumer.fetch({ max: 1, expiresMs: 0 })).rejects.toBeInstanceOf(BusNotFoundError);
      });
    });

    describe('kv', () => {
      it('get, put, create, update (CAS) and delete with bucket-wide revisions', async () => {
        const kv = await bus.kv('CONFIG');
        expect(await kv.get('a')).toBeNull();
        expect(await kv.put('a', encode('1'))).toBe(1);
        expect(await kv.get('a')).toEqual({ key: 'a', value: encode('1'), revision: 1, operation: 'PUT' });
        await expect(kv.create('a', encode('x'))).rejects.toBeInstanceOf(BusConflictError);
        expect(await kv.create('b', encode('b1'))).toBe(2);
        expect(await kv.update('a', encode('2'), 1)).toBe(3);
        await expect(kv.update('a', encode('3'), 1)).rejects.toThrow(
          new BusConflictError("key 'a': wrong last sequence: 3").message,
        );
        await expect(kv.update('missing', encode('3'), 1)).rejects.toBeInstanceOf(BusConflictError);
        await kv.delete('a');
        expect(await kv.get('a')).toBeNull();
        // The tombstone is revision 4: the last PUT's revision no longer matches.
        await expect(kv.update('a', encode('z'), 3)).rejects.toBeInstanceOf(BusConflictError);
        expect(await kv.create('a', encode('again'))).toBe(5);
        expect(decode((await kv.get('a'))!.value)).toBe('again');
        expect((await kv.keys()).sort()).toEqual(['a', 'b']);
      });

      it('keys lists live keys only', async () => {
        const kv = await bus.kv('CONFIG');
        expect(await kv.keys()).toEqual([]);
        await kv.put('x.one', encode('1'));
        await kv.put('x.two', encode('2'));
        await kv.put('y', encode('3'));
        await kv.delete('x.two');
        expect((await kv.keys()).sort()).toEqual(['x.one', 'y']);
      });

      it('rejects invalid keys and revisions alike', async () => {
        const kv = await bus.kv('CONFIG');
        await expect(kv.put('bad key', encode('x'))).rejects.toThrow(/invalid key/);
        await expect(kv.put('.lead', encode('x'))).rejects.toThrow(/invalid key/);
        await expect(kv.update('a', encode('x'), 0)).rejects.toBeInstanceOf(RangeError);
      });

      it('watch delivers current values in revision order, then every change', async () => {
        const kv = await bus.kv('CONFIG');
        await kv.put('a', encode('a1')); // 1
        await kv.put('b', encode('b1')); // 2
        await kv.put('c', encode('c1')); // 3
        await kv.delete('c'); // 4
        await kv.put('a', encode('a2')); // 5
        const seen: KvEntry[] = [];
        const watcher = await kv.watch((entry) => seen.push(entry));
        expect(summary(seen)).toEqual([
          ['b', 'b1', 2, 'PUT'],
          ['a', 'a2', 5, 'PUT'],
        ]);
        await kv.put('b', encode('b2')); // 6
        await kv.delete('a'); // 7
        await kv.create('d', encode('d1')); // 8
        await eventually(() => expect(seen).toHaveLength(5));
        expect(summary(seen.slice(2))).toEqual([
          ['b', 'b2', 6, 'PUT'],
          ['a', '', 7, 'DEL'],
          ['d', 'd1', 8, 'PUT'],
        ]);
        await watcher.stop();
        await kv.put('e', encode('e1'));
        await sleep(200);
        expect(seen).toHaveLength(5);
      });

      it('watch on an empty bucket resolves at once and sees later puts', async () => {
        const kv = await bus.kv('EMPTY');
        const seen: KvEntry[] = [];
        const watcher = await kv.watch((entry) => seen.push(entry));
        expect(seen).toEqual([]);
        await kv.put('k', encode('v'));
        await eventually(() => expect(summary(seen)).toEqual([['k', 'v', 1, 'PUT']]));
        await watcher.stop();
      });

      it('buckets are independent, each with its own revisions', async () => {
        const one = await bus.kv('ONE');
        const two = await bus.kv('TWO');
        expect(await one.put('k', encode('1'))).toBe(1);
        expect(await one.put('k', encode('2'))).toBe(2);
        expect(await two.put('k', encode('x'))).toBe(1);
        expect(decode((await two.get('k'))!.value)).toBe('x');
      });

      it('ttl expires entries', async () => {
        const kv = await bus.kv('SHORT', { ttlMs: 300 });
        await kv.put('k', encode('v'));
        await sleep(1500);
        expect(await kv.get('k')).toBeNull();
        expect(await kv.create('k', encode('again'))).toBe(2);
      });
    });

    describe('notifications', () => {
      it('subscribers receive matching subjects, `*` and `>` included', async () => {
        const got: Record<string, string[]> = { star: [], tail: [], exact: [] };
        bus.subscribe('alerts.*', (subject) => got.star!.push(subject));
        bus.subscribe('alerts.>', (subject) => got.tail!.push(subject));
        bus.subscribe('alerts.low', (subject, data) => got.exact!.push(`${subject}=${decode(data)}`));
        bus.notify('alerts.low', encode('1'));
        bus.notify('alerts.low.credits', encode('2'));
        bus.notify('other.low', encode('3'));
        await bus.flush();
        await eventually(() => {
          expect(got.star).toEqual(['alerts.low']);
          expect(got.tail).toEqual(['alerts.low', 'alerts.low.credits']);
          expect(got.exact).toEqual(['alerts.low=1']);
        });
      });

      it('delivers asynchronously, across connections, and stops after unsubscribe', async () => {
        const other = await fixture.connect();
        const got: string[] = [];
        const subscription = other.subscribe('kill.>', (_subject, data) => got.push(decode(data)));
        await other.flush();
        bus.notify('kill.customer', encode('c1'));
        expect(got).toEqual([]);
        await bus.flush();
        await eventually(() => expect(got).toEqual(['c1']));
        subscription.unsubscribe();
        bus.notify('kill.customer', encode('c2'));
        await bus.flush();
        await sleep(200);
        expect(got).toEqual(['c1']);
      });
    });

    describe('namespaces', () => {
      it('two prefixes never see each other', async () => {
        const other = await fixture.connect(uniqueBusPrefix());
        await bus.ensureStream({ name: 'S', subjects: ['x.>'] });
        await other.ensureStream({ name: 'S', subjects: ['x.>'] });
        expect(await bus.publish('x.a', encode('mine'))).toEqual({ stream: 'S', seq: 1, duplicate: false });
        expect(await other.publish('x.a', encode('theirs'))).toEqual({
          stream: 'S',
          seq: 1,
          duplicate: false,
        });
        const mine = await bus.consumer('S', { durable: 'r', ackWaitMs: 30_000 });
        const theirs = await other.consumer('S', { durable: 'r', ackWaitMs: 30_000 });
        expect(payloads(await mine.fetch({ max: 10, expiresMs: 0 }))).toEqual(['mine']);
        expect(payloads(await theirs.fetch({ max: 10, expiresMs: 0 }))).toEqual(['theirs']);

        const kvMine = await bus.kv('B');
        const kvTheirs = await other.kv('B');
        await kvMine.put('k', encode('mine'));
        expect(await kvTheirs.get('k')).toBeNull();

        const heard: string[] = [];
        other.subscribe('x.>', (subject) => heard.push(subject));
        await other.flush();
        bus.notify('x.a', encode('n'));
        await bus.flush();
        await sleep(200);
        expect(heard).toEqual([]);
      });
    });

    describe('connection', () => {
      it('pings while open; close is idempotent and later calls fail', async () => {
        await bus.ping();
        await bus.close();
        await bus.close();
        await expect(bus.ping()).rejects.toThrow();
      });
    });
  });
}
