/**
 * The scaled-out topology under node loss: two gate processes, a credits process (API and the
 * hot-path worker), a metering API and two metering workers (two partitions each), all on a
 * 3-node Redis Cluster, a 3-node NATS JetStream cluster with R3 streams, and PostgreSQL. While
 * agents decide and settle over HTTP (spread over both gates, retrying with the same
 * idempotency key on any failure, as the SDK does) and clients send usage events in batches
 * (retried with the same ids), the Redis primary that holds the customer's keys is SIGKILLed
 * and restarted empty, and then one NATS server is SIGKILLed and started again.
 *
 * At the end, nothing acknowledged is lost and nothing counts twice: the ledger's debits equal,
 * to the micro-unit, what the agents were told was settled, and never exceed the grant; every
 * acknowledged event is in the raw table and the dedupe table once, and the aggregate of its
 * tokens is exact.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { parseAmount } from '@allot/contracts/amount';
import { afterAll, describe, expect, it } from 'vitest';
import { call, type ScaleTopology, startScaleTopology } from './support/scale-topology.ts';

const CUSTOMER = 'acme';
const GRANTED = '5000';
const AGENTS = 24;
const EVENT_CLIENTS = 3;

describe('scale-out under node loss (Redis Cluster, NATS cluster, PostgreSQL)', () => {
  let topology: ScaleTopology | undefined;
  afterAll(() => topology?.close());

  it('loses no acknowledged settle or event and counts nothing twice when a Redis primary and a NATS server die', async () => {
    topology = await startScaleTopology({ metering: true });
    const { db, redis, nats, gates, configure } = topology;
    const metering = topology.metering!;
    await configure('/v1/features/llm', { name: 'LLM', type: 'metered' });
    await configure('/v1/plans/p', {
      name: 'P',
      entitlements: [{ feature: 'llm' }],
      creditRates: [{ feature: 'llm', creditType: 'credits', rate: '0.001' }],
    });
    await configure(`/v1/customers/${CUSTOMER}`, { name: 'Acme' });
    await configure(`/v1/customers/${CUSTOMER}/subscription`, { plan: 'p' });
    await configure('/v1/budgets/team', {
      customerId: CUSTOMER,
      scope: { team: 't1' },
      metric: 'credits',
      period: 'month',
      limit: '100000',
      mode: 'hard',
      kind: 'budget',
      alerts: [],
    });
    await configure(
      `/v1/customers/${CUSTOMER}/grants`,
      { creditType: 'credits', amount: GRANTED, category: 'paid', idempotencyKey: 'scale-grant' },
      topology.credits,
    );
    await configure(
      '/v1/meters/tokens',
      { eventType: 'llm', aggregation: 'SUM', valueProperty: '$.tokens' },
      metering,
    );
    // Both gates have the configuration before the agents start.
    await topology.waitAllowed(CUSTOMER, 'llm');

    let running = true;
    const settledTold = new Map<string, bigint>();
    const failures = { decide: 0, settle: 0, ingest: 0 };
    const eventsTold = new Map<string, number>();

    /** Until it is answered: the same request, to whichever gate answers. */
    const persist = async (
      kind: 'decide' | 'settle',
      path: string,
      body: unknown,
      turn: number,
    ): Promise<Record<string, unknown>> => {
      for (let attempt = 0; ; attempt++) {
        const g = gates[(turn + attempt) % gates.length]!;
        const res = await call(g.url, 'POST', path, body).catch(() => ({ status: 0, body: {} }));
        if (res.status === 200) return res.body;
        failures[kind]++;
        await sleep(100);
      }
    };
    const agent = async (a: number) => {
      for (let n = 0; running; n++) {
        const idempotencyKey = `a${a}-${n}`;
        const decision = await persist(
          'decide',
          '/v1/decisions',
          {
            customerId: CUSTOMER,
            feature: 'llm',
            units: 100 + ((a * 37 + n * 11) % 400),
            dimensions: { team: 't1', agent: `a${a}` },
            idempotencyKey,
          },
          a + n,
        );
        if (decision.decision !== 'allow') {
          await sleep(50);
          continue;
        }
        const id = String(decision.reservationId);
        const settled = await persist(
          'settle',
          `/v1/reservations/${encodeURIComponent(id)}/settle`,
          { units: 50 + ((a + n) % 300) },
          a + n + 1,
        );
        settledTold.set(id, parseAmount(String(settled.settled)));
      }
    };
    const eventClient = async (c: number) => {
      for (let batch = 0; running; batch++) {
        const events = Array.from({ length: 100 }, (_, i) => ({
          specversion: '1.0',
          id: `c${c}-b${batch}-${i}`,
          source: `scale-client-${c}`,
          type: 'llm',
          subject: `cust-${(batch + i) % 7}`,
          time: new Date().toISOString(),
          data: { tokens: (i % 13) + 1 },
        }));
        for (;;) {
          const res = await call(
            metering.url,
            'POST',
            '/v1/events',
            events,
            'application/cloudevents-batch+json',
          ).catch(() => ({ status: 0, body: {} }));
          if (res.status === 204) break;
          failures.ingest++;
          await sleep(150);
        }
        for (const e of events) eventsTold.set(e.id, e.data.tokens);
        await sleep(20);
      }
    };
    const load = [
      ...Array.from({ length: AGENTS }, (_, a) => agent(a)),
      ...Array.from({ length: EVENT_CLIENTS }, (_, c) => eventClient(c)),
    ];

    await sleep(3000);
    const victim = await redis.nodeOf(`{default:${CUSTOMER}}`);
    const atRedisKill = { settles: settledTold.size, events: eventsTold.size };
    await redis.kill(victim);
    await sleep(1500);
    await redis.startNode(victim);
    await redis.waitHealthy();
    await sleep(3000);
    const natsVictim = 1;
    const atNatsKill = { settles: settledTold.size, events: eventsTold.size };
    await nats.kill(natsVictim);
    await sleep(4000);
    await nats.startNode(natsVictim);
    await sleep(4000);
    running = false;
    await Promise.all(load);

    // Everything acknowledged is applied, once: wait for the workers, then give redeliveries
    // time to (not) count again.
    const told = [...settledTold.values()].reduce((a, b) => a + b, 0n);
    const tokensTold = [...eventsTold.values()].reduce((a, b) => a + b, 0);
    const measure = async () => {
      const { rows } = await db.store.query<{
        debited: string | null;
        events: string;
        seen: string;
        tokens: string | null;
      }>(
        // The clients' events only: the settles become usage events of their own as well.
        `SELECT (SELECT -sum(amount) FROM credits.ledger WHERE kind = 'debit')::text AS debited,
                (SELECT count(*) FROM metering.events WHERE source LIKE 'scale-client-%')::text AS events,
                (SELECT count(*) FROM metering.seen WHERE source LIKE 'scale-client-%')::text AS seen,
                (SELECT sum(sum) FROM metering.aggregates WHERE meter = 'tokens')::text AS tokens`,
      );
      const row = rows[0]!;
      return {
        debited: BigInt(row.debited ?? '0'),
        events: Number(row.events),
        seen: Number(row.seen),
        tokens: Number(row.tokens ?? 0),
      };
    };
    const deadline = Date.now() + 90_000;
    let counted = await measure();
    while ((counted.debited < told || counted.events < eventsTold.size) && Date.now() < deadline) {
      await sleep(500);
      counted = await measure();
    }
    await sleep(4000);
    counted = await measure();

    process.stdout.write(
      `[scale-out faults] killed: Redis primary on port ${redis.ports[victim]} (the shard of {default:${CUSTOMER}}; restarted empty after 1.5 s) ` +
        `after ${atRedisKill.settles} settles and ${atRedisKill.events} events, then NATS server n${natsVictim} ` +
        `(SIGKILL, 4 s down) after ${atNatsKill.settles} settles and ${atNatsKill.events} events; ` +
        `checked: ${settledTold.size} settles acknowledged over 2 gates, told ${told} micro-credits = ledger debits ${counted.debited} ` +
        `(granted ${parseAmount(GRANTED)}); ${eventsTold.size} events acknowledged = ${counted.events} raw rows = ${counted.seen} dedupe rows, ` +
        `tokens told ${tokensTold} = aggregated ${counted.tokens}; retried after failures: ${JSON.stringify(failures)}\n`,
    );
    expect(counted.debited).toBe(told);
    expect(counted.debited).toBeLessThanOrEqual(parseAmount(GRANTED));
    expect(counted.events).toBe(eventsTold.size);
    expect(counted.seen).toBe(eventsTold.size);
    expect(counted.tokens).toBe(tokensTold);
    // The faults were felt, and work went on after each.
    expect(failures.decide + failures.settle).toBeGreaterThan(0);
    expect(settledTold.size).toBeGreaterThan(atNatsKill.settles);
    expect(eventsTold.size).toBeGreaterThan(atNatsKill.events);
  });
});
