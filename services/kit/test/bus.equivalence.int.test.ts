/**
 * The embedded bus against NATS, step by step: a random sequence of publishes (with and
 * without msgId), fetch-then-ack, fetch-then-nak, pending counts and KV writes (right and wrong revisions)
 * must give identical answers on both: sequences, duplicate flags, fetched messages in
 * order with their delivery counts, KV revisions, values and conflicts.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { Bus } from '../src/bus/port.ts';
import { type BusFixture, freshEmbeddedBus, freshNatsBus } from '../src/testing/bus.ts';

type Operation =
  | { kind: 'publish'; subject: string; msgId: string | null; payload: string }
  | { kind: 'fetch'; max: number; settle: 'ack' | 'nak' }
  | { kind: 'pending' }
  | { kind: 'put' | 'create'; key: string; value: string }
  | { kind: 'update'; key: string; value: string; revision: 'current' | number }
  | { kind: 'delete' | 'get'; key: string }
  | { kind: 'keys' };

const key = fc.constantFrom('a', 'b', 'c.d');
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
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant('fetch' as const),
      max: fc.integer({ min: 1, max: 3 }),
      settle: fc.constantFrom('ack' as const, 'nak' as const),
    }),
  },
  fc.constant({ kind: 'pending' as const }),
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
  apply(op: Operation): Promise<unknown>;
}

async function startSession(fixture: BusFixture): Promise<Session> {
  const bus: Bus = fixture.bus;
  await bus.ensureStream({ name: 'EQ', subjects: ['eq.*'] });
  // Long ack wait: redelivery here comes from nak only, never from timing.
  const consumer = await bus.consumer('EQ', { durable: 'eq', ackWaitMs: 60_000 });
  const kv = await bus.kv('EQ');
  const decode = (bytes: Uint8Array): string => new TextDecoder().decode(bytes);
  const encode = (text: string): Uint8Array => new TextEncoder().encode(text);
  const run = async (op: Operation): Promise<unknown> => {
    switch (op.kind) {
      case 'publish':
        return bus.publish(op.subject, encode(op.payload), op.msgId === null ? {} : { msgId: op.msgId });
      case 'fetch': {
        const messages = await consumer.fetch({ max: op.max, expiresMs: 0 });
        for (const message of messages) {
          if (op.settle === 'ack') await message.ack();
          else message.nak();
        }
        return messages.map((m) => ({
          seq: m.seq,
          subject: m.subject,
          payload: decode(m.data),
          n: m.deliveryCount,
        }));
      }
      case 'pending':
        return consumer.pending();
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
    apply: (op) =>
      run(op).then(
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
            const expected = await nats.apply(op);
            const actual = await embedded.apply(op);
            expect({ step, op, result: actual }).toEqual({ step, op, result: expected });
          }
        } finally {
          await Promise.all([nats.fixture.cleanup(), embedded.fixture.cleanup()]);
        }
      }),
      { numRuns: 50 },
    );
  });
});
