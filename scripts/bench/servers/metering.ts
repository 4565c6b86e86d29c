/**
 * Metering's ingest API as deployed: `POST /v1/events` in a process of its own (no worker:
 * the suite runs the workers as processes of theirs), on the real servers the bench targets,
 * a fresh database (BENCH_DATABASE_URL) and NATS namespace (BENCH_PREFIX). Before it listens
 * it defines the meter `tokens` (SUM of $.tokens by $.model) for the tenant `bench`.
 */
import { createApp, StaticApiKeyStore } from '@allot/kit';
import { NatsBus } from '@allot/kit/bus';
import { PgStore } from '@allot/kit/sql';
import { meteringPlugin, startMetering } from '../../../services/metering/src/index.ts';
import { announceListening } from '../lib/server.ts';

const need = (name: string) => {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is required`);
  return value;
};
const tenant = 'bench';
const sql = new PgStore({ url: need('BENCH_DATABASE_URL'), max: 4 });
// BENCH_NATS_REPLICAS=3 on a JetStream cluster (the `scale` suite).
const bus = await NatsBus.connect({
  url: need('BENCH_NATS_URL'),
  prefix: need('BENCH_PREFIX'),
  replicas: Number(process.env.BENCH_NATS_REPLICAS ?? 1),
});
const metering = await startMetering({ sql, bus, worker: false });
const { document } = await metering.config.store.put(
  tenant,
  'meter',
  'tokens',
  { eventType: 'llm', aggregation: 'SUM', valueProperty: '$.tokens', groupBy: { model: '$.model' } },
  'bench',
);
await metering.config.replica.waitFor(tenant, document.version);
const app = await createApp({
  service: 'metering',
  logLevel: (process.env.BENCH_LOG_LEVEL ?? 'warn') as 'warn',
  apiKeys: new StaticApiKeyStore([
    { key: need('BENCH_API_KEY'), principal: { keyId: 'bench', tenant, scopes: ['admin'] } },
  ]),
});
await app.register(meteringPlugin, { sql, metering });
await app.listen({ host: '127.0.0.1', port: 0 });
announceListening(app.server, async () => {
  await app.close();
  await metering.close();
  await Promise.allSettled([bus.close(), sql.close()]);
});
