/**
 * The embedded bus against NATS, step by step: a random sequence of publishes (with and
 * without msgId), fetches on a plain and a filtered consumer (settled at once by ack, nak or
 * term, or held and settled later in any order), pending counts, consumer and stream info, and
 * KV writes (right and wrong revisions) must give identical answers on both: sequences,
 * duplicate flags, fetched messages in order with their delivery counts, ack floors and
 * delivered sequences, KV revisions, values and conflicts.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { Bus, BusMessage, Consumer } from '../src/bus/port.ts';
import { type BusFixture, freshEmbeddedBus, freshNatsBus } from '../src/testing/bus.ts';

/** `all` reads the whole stream, `a` only `eq.a`. */
type ConsumerName = 'all' | 'a';
type Settle = 'ack' | 'nak' | 'term';

type Operation =
  | { kind: 'publish'; subject: string; msgId: string | null; payload: string }
  | { kind: 'fetch'; consumer: ConsumerName; max: number; wait: boolean; settle: Settle | 'hold' }
  | { kind: 'settle'; consumer: ConsumerName; index: number; how: Settle }
  | { kind: 'pending' | 'info'; consumer: ConsumerName }
  | { kind: 'streamInfo'; stream: 'EQ' | 'MISSING' }
  | { kind: 'put' | 'create'; key: string; value: string }
  | { kind: 'update'; key: string; value: string; revision: 'current' | number }
  | { kind: 'delete' | 'get'; key: string }
  | { kind: 'keys' };

const key = fc.constantFrom('a', 'b', 'c.d');
const consumerName = fc.constantFrom<ConsumerName>('all', 'a');
const value = fc.string({ maxLength: 6 });

const operation: fc.Arbitrary<Operation> = fc.oneof(
  {
    weight: 3,
    arbitrary: fc.record({
      kind: fc.constant('publish' as const),
      subject: fc.constantFrom('eq.a', 'eq.b'),
      msgId: fc.option(fc.constantFrom('m1', 'm2', 'm3'), { nil: null }),
      payload: value,
    }),
  },
  {
    weight: 3,
    arbitrary: fc.record({
      kind: fc.constant('fetch' as const),
      consumer: consumerName,
      max: fc.integer({ min: 1, max: 3 }),
      // Rarely: wait briefly, which reads on past messages the filter skips even when none match.
      wait: fc.oneof(
        { weight: 4, arbitrary: fc.constant(false) },
        { weight: 1, arbitrary: fc.constant(true) },
      ),
      settle: fc.constantFrom('ack' as const, 'nak' as const, 'term' as const, 'hold' as const),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant('settle' as const),
      consumer: consumerName,
      index: fc.nat({ max: 5 }),
      how: fc.constantFrom('ack' as const, 'ack' as const, 'nak' as const, 'term' as const),
    }),
  },
  fc.record({ kind: fc.constantFrom('pending' as const, 'info' as const), consumer: consumerName }),
  fc.record({
    kind: fc.constant('streamInfo' as const),
    stream: fc.constantFrom('EQ' as const, 'MISSING' as const),
  }),
  fc.record({ kind: fc.constantFrom('put' as const, 'create' as const), key, value }),
  fc.record({
    kind: fc.constant('update' as const),
    key,
    value,
    revision: fc.oneof(fc.constant('current' as const), fc.integer({ min: 1, max: 12 })),
  }),
  fc.record({ kind: fc.constantFrom('delete' as const, 'get' as const), key }),
  fc.constant({ kind: 'keys' as const }),
);

interface Session {
  fixture: BusFixture;
  /** `expectedCount`: how many messages the reference answered a fetch with (see `fetch`). */
  apply(op: Operation, expectedCount?: number): Promise<unknown>;
}

async function startSession(fixture: BusFixture): Promise<Session> {
  const bus: Bus = fixture.bus;
  await bus.ensureStream({ name: 'EQ', subjects: ['eq.*'] });
  // Long ack wait: redelivery here comes from nak only, never from timing.
  const consumers: Record<ConsumerName, Consumer> = {
    all: await bus.consumer('EQ', { durable: 'eq', ackWaitMs: 60_000 }),
    a: await bus.consumer('EQ', { durable: 'eqa', ackWaitMs: 60_000, filterSubject: 'eq.a' }),
  };
  /** Fetched with `hold`, not settled yet, in fetch order. */
  const held: Record<ConsumerName, BusMessage[]> = { all: [], a: [] };
  const kv = await bus.kv('EQ');
  const decode = (bytes: Uint8Array): string => new TextDecoder().decode(bytes);
  const encode = (text: string): Uint8Array => new TextEncoder().encode(text);
  const settle = async (message: BusMessage, how: Settle): Promise<void> => {
    if (how === 'ack') await message.ack();
    else if (how === 'nak') message.nak();
    else message.term();
  };
  const run = async (op: Operation, expectedCount: number | undefined): Promise<unknown> => {
    switch (op.kind) {
      case 'publish':
        return bus.publish(op.subject, encode(op.payload), op.msgId === null ? {} : { msgId: op.msgId });
      case 'fetch': {
        const messages = await consumers[op.consumer].fetch({ max: op.max, expiresMs: op.wait ? 20 : 0 });
        // NATS tells a consumer of new messages asynchronously: a fetch that does not wait, sent
        // right after a publish was acknowledged, can miss it on a loaded machine. Such a
        // message is not delivered, so fetching again picks it up where a single fetch would.
        for (let tries = 0; !op.wait && messages.length < (expectedCount ?? 0) && tries < 50; tries++) {
          await new Promise((resolve) => setTimeout(resolve, 10));
          const max = (expectedCount ?? 0) - messages.length;
          messages.push(...(await consumers[op.consumer].fetch({ max, expiresMs: 0 })));
        }
        for (const message of messages) {
          if (op.settle === 'hold') held[op.consumer].push(message);
          else await settle(message, op.settle);
        }
        return messages.map((m) => ({
          seq: m.seq,
          subject: m.subject,
          payload: decode(m.data),
          n: m.deliveryCount,
        }));
      }
      case 'settle': {
        const list = held[op.consumer];
        if (list.length === 0) return null;
        const [message] = list.splice(op.index % list.length, 1);
        await settle(message!, op.how);
        return message!.seq;
      }
      case 'pending':
        return consumers[op.consumer].pending();
      case 'info':
        return consumers[op.consumer].info();
      case 'streamInfo':
        return bus.streamInfo(op.stream);
      case 'put':
        return kv.put(op.key, encode(op.value));
      case 'create':
        return kv.create(op.key, encode(op.value));
      case 'update': {
        const revision = op.revision === 'current' ? ((await kv.get(op.key))?.revision ?? 1) : op.revision;
        return kv.update(op.key, encode(op.value), revision);
      }
      case 'delete':
        return kv.delete(op.key);
      case 'get': {
        const entry = await kv.get(op.key);
        return entry && { value: decode(entry.value), revision: entry.revision };
      }
      case 'keys':
        return (await kv.keys()).sort();
    }
  };
  return {
    fixture,
    apply: (op, expectedCount) =>
      run(op, expectedCount).then(
        (result) => ({ ok: result ?? null }),
        (err: unknown) => ({ error: err instanceof Error ? `${err.name}: ${err.message}` : String(err) }),
      ),
  };
}

describe('bus equivalence: embedded vs NATS', () => {
  it('answers every operation sequence identically', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(operation, { minLength: 10, maxLength: 40, size: 'max' }), async (ops) => {
        const nats = await startSession(await freshNatsBus());
        const embedded = await startSession(await freshEmbeddedBus());
        try {
          for (const [step, op] of ops.entries()) {
            // The embedded bus answers first: it is the reference for how many messages a fetch
            // that does not wait may still be owed by NATS.
            const actual = await embedded.apply(op);
            const fetched = (actual as { ok?: unknown }).ok;
            const expected = await nats.apply(op, Array.isArray(fetched) ? fetched.length : undefined);
            expect({ step, op, result: actual }).toEqual({ step, op, result: expected });
          }
        } finally {
          await Promise.all([nats.fixture.cleanup(), embedded.fixture.cleanup()]);
        }
      }),
      // A failure found under a loaded machine must still be reported, with the counterexample
      // shrunk so far, rather than turn into a test timeout while shrinking goes on.
      { numRuns: 50, interruptAfterTimeLimit: 90_000 },
    );
  });
});
