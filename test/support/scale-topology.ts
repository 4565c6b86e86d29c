/**
 * The scaled-out data plane as real processes, for the scale-out tests: a 3-node Redis
 * Cluster, a 3-node NATS JetStream cluster (R3 streams), a fresh PostgreSQL database, the
 * credits process (its API and the hot-path worker), two gate processes, and optionally the
 * metering API with two workers on two partitions each. Every process is started from its
 * source entry as it runs in production, with `REDIS_CLUSTER=true` and `NATS_REPLICAS=3`.
 */
import { freshPgDatabase } from '@allot/kit/testing';
import { NatsCluster, RedisCluster } from './clusters.ts';
import { freePort, type Spawned, spawnEntry, stopAll, waitReady } from './servers.ts';

export const SCALE_KEY = 'scale-out-test-key-0123456789';

export interface Service {
  name: string;
  url: string;
  proc: Spawned;
}

export interface Answer {
  status: number;
  body: Record<string, unknown>;
}

/** One API call with the admin key; a network failure rejects. */
export async function call(
  url: string,
  method: string,
  path: string,
  body?: unknown,
  type = 'application/json',
): Promise<Answer> {
  const res = await fetch(`${url}${path}`, {
    method,
    headers: {
      authorization: `Bearer ${SCALE_KEY}`,
      ...(body === undefined ? {} : { 'content-type': type }),
    },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    signal: AbortSignal.timeout(5000),
  });
  const text = await res.text();
  return { status: res.status, body: text ? (JSON.parse(text) as Record<string, unknown>) : {} };
}

export interface ScaleTopology {
  db: Awaited<ReturnType<typeof freshPgDatabase>>;
  redis: RedisCluster;
  nats: NatsCluster;
  credits: Service;
  gates: Service[];
  metering: Service | undefined;
  workers: Spawned[];
  /** Writes a configuration document through the first gate (or metering for meters); fails on a 4xx/5xx. */
  configure(path: string, body: unknown, on?: Service): Promise<void>;
  /** Until every gate allows `feature` for `customerId` (each has the configuration). */
  waitAllowed(customerId: string, feature: string): Promise<void>;
  close(): Promise<void>;
}

export async function startScaleTopology(options: { metering: boolean }): Promise<ScaleTopology> {
  const [db, redis, nats] = await Promise.all([freshPgDatabase(), RedisCluster.start(), NatsCluster.start()]);
  const backends = {
    DATABASE_URL: db.url,
    REDIS_URL: redis.url,
    REDIS_CLUSTER: 'true',
    NATS_URL: nats.url,
    NATS_REPLICAS: '3',
    ALLOT_API_KEY: SCALE_KEY,
  };
  const start = async (name: string, entry: string, env: Record<string, string> = {}): Promise<Service> => {
    const port = await freePort();
    const proc = spawnEntry(name, entry, { ...backends, PORT: String(port), ...env });
    const url = `http://127.0.0.1:${port}`;
    await waitReady(url, proc);
    return { name, url, proc };
  };
  // The credits process first: it creates the hot-path stream the gates publish to.
  const credits = await start('credits', 'services/credits/src/server.ts');
  const gates = await Promise.all([
    start('gate-a', 'services/gate/src/server.ts'),
    start('gate-b', 'services/gate/src/server.ts'),
  ]);
  let metering: Service | undefined;
  const workers: Spawned[] = [];
  if (options.metering) {
    metering = await start('metering', 'services/metering/src/server.ts', { METERING_WORKER: 'false' });
    for (const [i, take] of ['0,1', '2,3'].entries()) {
      workers.push(
        spawnEntry(`metering-worker-${i}`, 'services/metering/src/worker/main.ts', {
          ...backends,
          LOG_LEVEL: 'info',
          METERING_TAKE: take,
          // One worker turns the gates' settles into usage.
          METERING_SETTLED_USAGE: String(i === 0),
          METERING_ACK_WAIT_MS: '3000',
        }),
      );
    }
    await Promise.all(workers.map((w) => w.waitFor('metering worker started', 30_000)));
  }
  return {
    db,
    redis,
    nats,
    credits,
    gates,
    metering,
    workers,
    async configure(path, body, on = gates[0]!) {
      const method = path.endsWith('/grants') ? 'POST' : 'PUT';
      const res = await call(on.url, method, path, body);
      if (res.status >= 300) throw new Error(`${method} ${path}: ${res.status} ${JSON.stringify(res.body)}`);
    },
    async waitAllowed(customerId, feature) {
      for (const gate of gates) {
        for (let tries = 0; ; tries++) {
          const d = await call(gate.url, 'POST', '/v1/decisions', { customerId, feature, units: 1 });
          if (d.body.decision === 'allow') {
            await call(gate.url, 'POST', `/v1/reservations/${d.body.reservationId}/release`);
            break;
          }
          if (tries > 100) throw new Error(`${gate.name} never allowed: ${JSON.stringify(d.body)}`);
          await new Promise((resolve) => setTimeout(resolve, 100));
        }
      }
    },
    async close() {
      await stopAll();
      await Promise.allSettled([db.drop(), redis.stop(), nats.stop()]);
    },
  };
}
