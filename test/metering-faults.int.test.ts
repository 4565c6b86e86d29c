/**
 * Metering under faults, on the real PostgreSQL and a NATS server of our own: events flow in
 * from several concurrent clients while the worker process is SIGKILLed mid-batch and NATS is
 * killed and restarted. A client whose ingest failed retries the same events (same ids), as
 * an SDK would. At the end every acknowledged event is counted exactly once: the raw table,
 * the dedupe table and the aggregates all match what the clients were told.
 */
import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { NatsBus } from '@allot/kit/bus';
import { ConfigStore } from '@allot/kit/config-store';
import { freshPgDatabase } from '@allot/kit/testing';
import { startMetering, type UsageEvent } from '@allot/metering';
import { afterAll, describe, expect, it } from 'vitest';
import { NatsServer, type Spawned, spawnMeteringWorker, stopAll } from './support/servers.ts';

describe('metering under faults (PostgreSQL, NATS)', () => {
  afterAll(async () => {
    await stopAll();
  });

  it('loses no acknowledged event and counts none twice across a worker SIGKILL and a NATS restart', async () => {
    const db = await freshPgDatabase();
    const nats = await NatsServer.start();
    const prefix = `mf${randomUUID().slice(0, 8)}`;
    const tenant = 'faults';
    const bus = await NatsBus.connect({ url: nats.url, prefix, name: 'metering-faults' });
    const metering = await startMetering({ sql: db.store, bus, worker: false });
    await new ConfigStore(db.store, bus).put(
      tenant,
      'meter',
      'tokens',
      { eventType: 'llm', aggregation: 'SUM', valueProperty: '$.tokens', groupBy: {} },
      'test',
    );
    const workerEnv = {
      DATABASE_URL: db.url,
      NATS_URL: nats.url,
      NATS_PREFIX: prefix,
      METERING_ACK_WAIT_MS: '2000',
    };
    let worker: Spawned = spawnMeteringWorker(workerEnv);
    await worker.waitFor('metering worker started', 30_000);

    const told = new Map<string, number>();
    let failures = 0;
    let running = true;
    const client = async (c: number) => {
      for (let batch = 0; running; batch++) {
        const events: UsageEvent[] = Array.from({ length: 200 }, (_, i) => ({
          id: `c${c}-b${batch}-${i}`,
          source: `client-${c}`,
          type: 'llm',
          subject: `cust-${(batch + i) % 13}`,
          time: Date.now(),
          data: { tokens: (i % 17) + 1 },
        }));
        // Retried with the same ids until stored, as a client is told to.
        for (;;) {
          try {
            await metering.ingest.ingest(tenant, events);
            break;
          } catch {
            failures++;
            await sleep(200);
          }
        }
        for (const e of events) told.set(e.id, (e.data as { tokens: number }).tokens);
        // Some batches sent twice on purpose (a client that did not hear the first answer).
        if (batch % 5 === 0) await metering.ingest.ingest(tenant, events).catch(() => {});
        await sleep(10);
      }
    };
    const clients = [0, 1, 2, 3].map(client);

    await sleep(1500);
    await worker.kill('SIGKILL');
    const killedAt = told.size;
    await sleep(500);
    worker = spawnMeteringWorker(workerEnv);
    await worker.waitFor('metering worker started', 30_000);
    await sleep(1000);
    await nats.kill('SIGKILL');
    const natsDownAt = told.size;
    await sleep(800);
    await nats.start();
    // Until the clients are through again and have been told of more events.
    const resumeBy = Date.now() + 30_000;
    while (told.size < natsDownAt + 8000 && Date.now() < resumeBy) await sleep(100);
    await sleep(1000);
    running = false;
    await Promise.all(clients);

    const expectedTokens = [...told.values()].reduce((a, b) => a + b, 0);
    const deadline = Date.now() + 60_000;
    let counted = { events: 0, seen: 0, tokens: 0 };
    for (;;) {
      const { rows } = await db.store.query<{ events: string; seen: string; tokens: string | null }>(
        `SELECT (SELECT count(*) FROM metering.events WHERE tenant = $1)::text AS events,
                (SELECT count(*) FROM metering.seen WHERE tenant = $1)::text AS seen,
                (SELECT sum(sum) FROM metering.aggregates WHERE tenant = $1)::text AS tokens`,
        [tenant],
      );
      counted = {
        events: Number(rows[0]!.events),
        seen: Number(rows[0]!.seen),
        tokens: Number(rows[0]!.tokens ?? 0),
      };
      if (counted.events >= told.size || Date.now() > deadline) break;
      await sleep(250);
    }
    // Settled: give redeliveries time to (not) count again.
    await sleep(3000);
    const { rows } = await db.store.query<{ events: string; tokens: string }>(
      `SELECT (SELECT count(*) FROM metering.events WHERE tenant = $1)::text AS events,
              (SELECT sum(sum) FROM metering.aggregates WHERE tenant = $1)::text AS tokens`,
      [tenant],
    );
    process.stdout.write(
      `[metering faults] worker SIGKILLed after ${killedAt} acknowledged events, NATS SIGKILLed and restarted after ${natsDownAt}; ` +
        `${told.size} events acknowledged (${failures} ingest attempts failed and were retried), ` +
        `${counted.events} raw rows, ${counted.seen} dedupe rows, tokens told ${expectedTokens} = counted ${rows[0]!.tokens}\n`,
    );
    expect(Number(rows[0]!.events)).toBe(told.size);
    expect(counted.seen).toBe(told.size);
    expect(Number(rows[0]!.tokens)).toBe(expectedTokens);
    expect(failures).toBeGreaterThan(0);
    expect(told.size).toBeGreaterThan(natsDownAt + 8000);

    await worker.kill('SIGTERM');
    await metering.close();
    await bus.close().catch(() => {});
    await nats.stop();
    await db.drop();
  });
});
