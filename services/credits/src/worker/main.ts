/**
 * The hot-path stream worker as a process of its own:
 * `DATABASE_URL=... NATS_URL=... node --import tsx services/credits/src/worker/main.ts`.
 * Migrates the credits and governance schemas, then applies the CREDITS stream (credit events,
 * and the gate's decision records beside them) until SIGTERM or SIGINT, on which it finishes
 * the batches in hand and exits 0. Killed outright, it loses nothing: what it had not
 * acknowledged is redelivered to the next worker. It also publishes the budget alerts its
 * commits raise.
 */
import { fileURLToPath } from 'node:url';
import { BudgetAlerts, governanceRecordApplier, migrateGovernance } from '@allot/governance';
import {
  baseEnv,
  loadConfig,
  loggerOptions,
  probesApp,
  redactUrl,
  runMain,
  stopOnSignal,
  urlListVariable,
  urlVariable,
} from '@allot/kit';
import { openBus } from '@allot/kit/bus';
import { migrate, openSqlStore } from '@allot/kit/sql';
import { pino } from 'pino';
import { z } from 'zod';
import { CreditsWorker } from './worker.ts';

const workerEnv = baseEnv.extend({
  DATABASE_URL: urlVariable(['postgres:', 'postgresql:'], 'PostgreSQL'),
  NATS_URL: urlListVariable(['nats:', 'tls:'], 'NATS'),
  /** Namespace of the stream on a shared NATS (per tenant, per test). */
  NATS_PREFIX: z.string().optional(),
  /**
   * How long a message this worker took stays unacknowledged before JetStream hands it to another
   * worker. Whatever else binds the `credits-ledger` consumer (the rebuild's ledger view) must
   * use the same value, or each binding changes it.
   */
  CREDITS_ACK_WAIT_MS: z.coerce.number().int().min(100).default(30_000),
});

const MIGRATIONS = fileURLToPath(new URL('../../migrations', import.meta.url));

runMain('credits worker', async () => {
  const env = loadConfig(workerEnv);
  const log = pino(loggerOptions({ service: 'credits-worker', level: env.LOG_LEVEL }));
  const store = await openSqlStore({ url: env.DATABASE_URL, max: 4 });
  const applied = await migrate(store, { schema: 'credits', dir: MIGRATIONS });
  await migrateGovernance(store);
  const bus = await openBus({
    url: env.NATS_URL,
    name: 'credits-worker',
    replicas: env.NATS_REPLICAS,
    ...(env.NATS_PREFIX === undefined ? {} : { prefix: env.NATS_PREFIX }),
  });
  const alerts = new BudgetAlerts({ sql: store, bus, log });
  await alerts.start();
  const probes = await probesApp({
    service: 'credits-worker',
    logLevel: env.LOG_LEVEL,
    readiness: [
      { name: 'postgres', check: () => store.ping(), timeoutMs: 2000 },
      { name: 'nats', check: () => bus.ping(), timeoutMs: 1000 },
    ],
  });
  const worker = new CreditsWorker({
    store,
    bus,
    log,
    ...(probes ? { registry: probes.metrics } : {}),
    ackWaitMs: env.CREDITS_ACK_WAIT_MS,
    records: governanceRecordApplier({ log, onAlerts: () => alerts.wake() }),
  });
  await worker.start();
  log.info(
    { database: redactUrl(env.DATABASE_URL), nats: redactUrl(env.NATS_URL), migrations: applied },
    'credits worker started',
  );

  stopOnSignal('credits worker', {
    graceMs: env.SHUTDOWN_GRACE_MS,
    log,
    stop: async () => {
      await probes?.close();
      await worker.stop();
      await alerts.stop();
      await Promise.allSettled([bus.close(), store.close()]);
      return worker.stats;
    },
  });
  // Probed ready only now: a SIGTERM from here on finishes the batch in hand.
  await probes?.listen({ host: env.HOST, port: env.PORT });
});
