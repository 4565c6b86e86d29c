/**
 * Issue 3, second "Done when": a thousand concurrent reservations of random sizes on one pool
 * never overdraw it, and the PostgreSQL ledger holds exactly what the clients were told was
 * settled, each settle once; the same with Redis flushed, Redis killed and restarted empty, the
 * credits worker process SIGKILLed mid-batch, and NATS restarted.
 *
 * Everything runs on servers of our own (a Redis and a NATS with a file store, on free ports,
 * started from the same binaries as the shared ones) and a fresh PostgreSQL database per test,
 * so killing them touches nobody else. Two engines share the Redis, as two gate processes would.
 * The workload (seeded: FAULTS_SEED) and its checks are in support/credits-workload.ts.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { AppError } from '@allot/kit';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { GRANTED, inspectPool, openRig, type Rig, type RigOptions } from './support/credits-rig.ts';
import {
  finishSticky,
  type HoldRecord,
  planWorkload,
  reserveSticky,
  type Sample,
  settleDown,
  startSampler,
  startWorkload,
  summarize,
  verifyLedger,
  type Workload,
} from './support/credits-workload.ts';
import { NatsServer, RedisServer, type Spawned, spawnCreditsWorker, stopAll } from './support/servers.ts';

const SEED = Number(process.env.FAULTS_SEED ?? 3_000_303);
/**
 * The ledger consumer's ack wait in these tests (production default: 30 s): how long what a dead
 * worker, or a NATS restart, left unacknowledged waits before it is redelivered.
 */
const ACK_WAIT_MS = Number(process.env.FAULTS_ACK_WAIT_MS ?? 3_000);
const CLIENTS = 1000;

let redis: RedisServer | undefined;
let nats: NatsServer | undefined;
let rig: Rig | undefined;

beforeAll(async () => {
  [redis, nats] = await Promise.all([RedisServer.start(), NatsServer.start()]);
}, 30_000);

afterEach(async () => {
  await rig?.close();
  rig = undefined;
});

afterAll(async () => {
  await rig?.close();
  await Promise.allSettled([redis?.stop(), nats?.stop()]);
  await stopAll();
});

async function open(options: Partial<RigOptions> = {}): Promise<Rig> {
  rig = await openRig({ redisUrl: redis!.url, natsUrl: nats!.url, ackWaitMs: ACK_WAIT_MS, ...options });
  return rig;
}

/** The run: sampler on, clients go, `fault` runs beside them; returns what was recorded. */
async function run(
  r: Rig,
  seed: number,
  fault?: (workload: Workload) => Promise<void>,
): Promise<{ workload: Workload; sample: Sample }> {
  const sampler = startSampler(r);
  const workload = startWorkload(r, planWorkload(seed, CLIENTS, r.engines.length));
  const debug = process.env.FAULTS_DEBUG
    ? setInterval(() => {
        void inspectPool(r.probe, r.pool)
          .catch(() => null)
          .then((view) =>
            console.log(
              `[debug] in flight ${workload.inFlight()}, ${JSON.stringify(workload.stats).slice(0, 300)}, loaded ${view !== null}`,
            ),
          );
      }, 1000)
    : undefined;
  let sample: Sample | undefined;
  try {
    await Promise.all([workload.done, fault?.(workload)]);
  } finally {
    await workload.done;
    clearInterval(debug);
    sample = await sampler.stop();
  }
  return { workload, sample };
}

/** About 1.2 s into the run, at a moment when calls are in flight; returns how many. */
async function midRun(workload: Workload): Promise<number> {
  await sleep(1_200);
  const deadline = Date.now() + 1_000;
  while (workload.inFlight() < 3 && Date.now() < deadline) await sleep(1);
  const inFlight = workload.inFlight();
  expect(inFlight, 'no call in flight at the fault').toBeGreaterThan(0);
  return inFlight;
}

/** Waits until a call has made the customer loaded again (a rebuild finished). */
async function untilLoaded(r: Rig, timeoutMs = 20_000): Promise<number> {
  const started = Date.now();
  for (;;) {
    const view = await inspectPool(r.probe, r.pool).catch(() => null);
    if (view !== null) return Date.now() - started;
    if (Date.now() - started > timeoutMs) throw new Error('the customer was not rebuilt in time');
    await sleep(10);
  }
}

/** Every sticky hold is in Redis again, with its amount, after the rebuild. */
async function stickyStillHeld(r: Rig, sticky: HoldRecord[]): Promise<string[]> {
  const view = await inspectPool(r.probe, r.pool);
  const missing: string[] = [];
  for (const hold of sticky) {
    const amount = view?.holds.get(hold.holdId);
    if (amount !== hold.amount) missing.push(`${hold.holdId}: ${amount ?? 'gone'} (held ${hold.amount})`);
  }
  return missing;
}

/**
 * Sends again, after the fault, the settles that were answered before it: a retry must apply
 * nothing and answer as the first time (recorded as replays, compared in verifyLedger).
 */
async function resendSettles(workload: Workload, before: HoldRecord[], r: Rig): Promise<number> {
  let sent = 0;
  for (const record of before.slice(0, 25)) {
    const first = record.settle!;
    const engine = r.engines[(record.plan.engine + 1) % r.engines.length]!;
    for (let attempt = 0; ; attempt++) {
      try {
        record.replays.push(
          await engine.settle({ ...r.pool, holdId: record.holdId, amount: first.requested }),
        );
        sent++;
        break;
      } catch (error) {
        if (!(error instanceof AppError && error.code === 'unavailable') || attempt > 100) throw error;
        workload.stats.unavailable++;
        await sleep(100);
      }
    }
  }
  return sent;
}

function expectClean(
  report: Awaited<ReturnType<typeof verifyLedger>>,
  workload: Workload,
  sample: Sample,
): void {
  expect(workload.stats.unexpected).toEqual([]);
  expect(sample.violations).toEqual([]);
  expect(report.problems).toEqual([]);
  expect(report.debitedInLedger).toBe(report.settledTold);
  expect(sample.minHeadroom).toBeGreaterThanOrEqual(0n);
  // The run exercised what it claims to.
  expect(workload.stats.reserved).toBeGreaterThan(300);
  expect(workload.stats.insufficient).toBeGreaterThan(0);
  expect(report.overages + report.lateSettles + report.releases + report.expiries).toBeGreaterThan(0);
}

describe('credits under faults: 1,000 concurrent reservations on one pool (PostgreSQL, Redis, NATS)', () => {
  it('baseline: never overdrawn, and the ledger is exactly what the clients were told', async () => {
    const started = Date.now();
    const r = await open();
    const { workload, sample } = await run(r, SEED);
    await settleDown(r, workload.records);
    const report = await verifyLedger(r.db.store, r, workload.records);
    console.log(
      `[faults] baseline (killed nothing; 2 engines, worker in process, granted ${GRANTED}): ${summarize(report, workload.stats, sample)}; ${Date.now() - started} ms`,
    );
    expectClean(report, workload, sample);
    expect(workload.stats.unavailable).toBe(0);
    expect(report.lateSettles).toBeGreaterThan(0);
    expect(report.overages).toBeGreaterThan(0);
  }, 60_000);

  for (const loss of ['flushed', 'restarted'] as const) {
    it(`Redis ${loss === 'flushed' ? 'flushed (FLUSHALL)' : 'killed and restarted empty'} mid-run: rebuilt from the ledger, holds kept, settles once`, async () => {
      const started = Date.now();
      const r = await open();
      const sticky = await reserveSticky(r, 30, 20_000n);
      let summary = '';
      const { workload, sample } = await run(r, SEED + (loss === 'flushed' ? 1 : 2), async (w) => {
        const inFlight = await midRun(w);
        const settledBefore = [...w.records.values()].filter((h) => h.settle !== undefined);
        const lostAt = Date.now();
        if (loss === 'flushed') {
          await r.probe.redis.call('FLUSHALL');
        } else {
          await redis!.kill();
          await sleep(800);
          await redis!.start();
        }
        const rebuiltMs = await untilLoaded(r);
        const missing = await stickyStillHeld(r, sticky);
        expect(missing, 'holds active when Redis lost its state vanished').toEqual([]);
        const resent = await resendSettles(w, settledBefore, r);
        await finishSticky(w, sticky);
        summary =
          `${loss === 'flushed' ? 'FLUSHALL' : 'SIGKILL + restart (800 ms down)'} with ${inFlight} calls in flight, ` +
          `customer rebuilt ${rebuiltMs} ms after the loss (${Date.now() - lostAt} ms incl. checks), ` +
          `${sticky.length} long holds all still held after the rebuild, ${resent} settles from before the loss sent again`;
      });
      await settleDown(r, workload.records);
      const report = await verifyLedger(r.db.store, r, workload.records);
      console.log(
        `[faults] Redis ${loss}: ${summary}; ${summarize(report, workload.stats, sample)}; ${Date.now() - started} ms`,
      );
      expectClean(report, workload, sample);
      expect(summary).not.toBe('');
      // Killed, Redis refused calls for a while: those answered 503 and were retried.
      if (loss === 'restarted') expect(workload.stats.unavailable).toBeGreaterThan(0);
    }, 60_000);
  }

  it('credits worker process SIGKILLed mid-batch, then restarted: nothing lost, nothing applied twice', async () => {
    const started = Date.now();
    const r = await open({ worker: false });
    const env = {
      DATABASE_URL: r.db.url,
      NATS_URL: nats!.url,
      NATS_PREFIX: r.natsPrefix,
      CREDITS_ACK_WAIT_MS: String(r.ackWaitMs),
    };
    let worker: Spawned = spawnCreditsWorker(env);
    await worker.waitFor('credits worker started');
    const consumer = r.consumer;
    const kills: string[] = [];
    let killedHoldingMessages = 0;
    const { workload, sample } = await run(r, SEED + 3, async () => {
      // Two kills at least; more (up to six) until one lands while a batch is in hand, which on a
      // loaded machine the first two can miss.
      for (let kill = 0; kill < 6 && (kill < 2 || killedHoldingMessages === 0); kill++) {
        await sleep(kill === 0 ? 600 : 900);
        // Kill while the worker holds delivered, unacknowledged messages (a batch in hand).
        const deadline = Date.now() + 3_000;
        let position = await consumer.info();
        while (position.delivered <= position.ackFloor && Date.now() < deadline) {
          position = await consumer.info();
        }
        const { rows } = await r.db.store.query<{ n: string }>(
          'SELECT count(*)::text AS n FROM credits.ledger WHERE tenant = $1',
          [r.tenant],
        );
        await worker.kill('SIGKILL');
        const after = await consumer.info();
        if (after.delivered > after.ackFloor) killedHoldingMessages++;
        kills.push(
          `SIGKILL at ${rows[0]?.n} ledger rows with stream seq ${position.delivered} delivered / ${position.ackFloor} acked ` +
            `(after the kill: ${after.delivered - after.ackFloor} delivered but unacknowledged, ${after.pending} pending)`,
        );
        await sleep(300);
        worker = spawnCreditsWorker(env);
        await worker.waitFor('credits worker started');
      }
    });
    // What the killed worker had in hand comes back after the consumer's ack wait.
    const clientsDone = Date.now();
    await settleDown(r, workload.records, { caughtUpTimeoutMs: r.ackWaitMs + 15_000 });
    const settledMs = Date.now() - clientsDone;
    const report = await verifyLedger(r.db.store, r, workload.records);
    await worker.kill('SIGTERM');
    console.log(
      `[faults] worker (ack wait ${r.ackWaitMs} ms): ${kills.join('; ')}; expiries swept and ledger caught up ${settledMs} ms after the clients finished; ${summarize(report, workload.stats, sample)}; ${Date.now() - started} ms`,
    );
    expectClean(report, workload, sample);
    expect(kills.length).toBeGreaterThanOrEqual(2);
    // At least one kill took delivered, unacknowledged messages down with the worker.
    expect(killedHoldingMessages).toBeGreaterThan(0);
    // Room for FAULTS_ACK_WAIT_MS=30000 and six kill-and-restart rounds.
  }, 120_000);

  it('NATS killed and restarted mid-run (file store): publishes in the outage answer 503, nothing acknowledged is lost', async () => {
    const started = Date.now();
    const r = await open();
    let summary = '';
    const { workload, sample } = await run(r, SEED + 4, async (w) => {
      const inFlight = await midRun(w);
      await nats!.kill('SIGKILL');
      await sleep(1_000);
      await nats!.start();
      summary = `NATS SIGKILLed with ${inFlight} calls in flight, down 1,000 ms, restarted on the same store`;
    });
    // The ledger-side sweep ends holds whose reserve timed out yet reached the stream.
    const { ledgerSwept } = await settleDown(r, workload.records, {
      ledgerSweep: true,
      caughtUpTimeoutMs: r.ackWaitMs + 15_000,
    });
    summary += `, ${ledgerSwept} holds still active only in the ledger afterwards (expiries or 503'd reserves whose events were lost or late) ended by the ledger-side sweeper`;
    const report = await verifyLedger(r.db.store, r, workload.records);
    console.log(
      `[faults] NATS: ${summary}; ${summarize(report, workload.stats, sample)}; ${Date.now() - started} ms`,
    );
    expectClean(report, workload, sample);
    expect(workload.stats.unavailable).toBeGreaterThan(0);
  }, 60_000);
});
