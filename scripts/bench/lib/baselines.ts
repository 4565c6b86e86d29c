/**
 * The floors a suite compares against, each opened on first use and measured in the same
 * run as the case it is compared with. Everything created (streams, tables, script cache
 * aside) has a unique name and is removed by `close`.
 */
import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { fileURLToPath } from 'node:url';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { Redis } from 'ioredis';
import pg from 'pg';
import { from as copyFrom } from 'pg-copy-streams';
import type { Op } from './load.ts';
import { jsonPoster, startServer } from './server.ts';
import type { CaseOptions } from './suite.ts';

export interface Targets {
  databaseUrl: string;
  redisUrl: string;
  natsUrl: string;
}

export function targetsFromEnv(env: NodeJS.ProcessEnv = process.env): Targets {
  return {
    databaseUrl: env.BENCH_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test',
    redisUrl: env.BENCH_REDIS_URL ?? 'redis://127.0.0.1:6379',
    natsUrl: env.BENCH_NATS_URL ?? 'nats://127.0.0.1:4222',
  };
}

/** What every HTTP case posts: the size and shape of a small decision request. */
export const ECHO_BODY = {
  customer: 'cus_0001',
  feature: 'tokens',
  units: 1200,
  dimensions: { model: 'small', region: 'eu-west-1', agent: 'agent_42' },
};

/** What every publish carries. */
export const MESSAGE = new Uint8Array(128).fill(120);

export const RETURN_ONE = { name: 'bench_return_one', lua: 'return 1' };

export const COPY_ROWS_PER_OP = 1_000;
export const COPY_COLUMNS = ['id', 'customer', 'units', 'created_at'] as const;
/** A COPY op is a thousand rows: a few at once and a low rate are already a heavy load. */
export const COPY_CASE: CaseOptions = {
  concurrency: 4,
  rate: 50,
  note: `one op copies ${COPY_ROWS_PER_OP} rows: rows/s = ops/s × ${COPY_ROWS_PER_OP}`,
};

export interface HttpEchoBaseline {
  origin: string;
  post: Op;
}

export interface RedisBaseline {
  ping: Op;
  /** EVALSHA of `RETURN_ONE`, no keys (EVAL when the script cache was flushed). */
  evalsha: Op;
}

export interface NatsBaseline {
  /** Core publish of `MESSAGE`, then flush (one round trip to the server). */
  publish: Op;
  /** JetStream publish of `MESSAGE`, awaiting the stream's ack. */
  jetstreamPublish: Op;
}

export interface PostgresBaseline {
  /** An empty table with `COPY_COLUMNS`, dropped at the end; cases may copy into it too. */
  table: string;
  /** The `COPY_ROWS_PER_OP` rows each op copies, as values. */
  rows: readonly (readonly [number, string, number, Date])[];
  /** COPY of those rows, encoded once up front: the wire and the server, nothing else. */
  copy: Op;
}

/** A name nothing else uses, for what a run creates. */
export function uniqueName(prefix: string): string {
  return `${prefix}_${process.pid}_${randomBytes(3).toString('hex')}`;
}

function unreachable(what: string, variable: string, url: string, error: unknown): Error {
  const why = error instanceof Error ? error.message : String(error);
  return new Error(`${what} at ${variable}=${url} is not usable: ${why}`);
}

export class Baselines {
  /** Where the baselines connect; cases under test connect to the same servers. */
  readonly targets: Targets;
  readonly #cleanups: (() => Promise<unknown>)[] = [];
  readonly #opened = new Map<string, Promise<unknown>>();

  constructor(targets: Targets) {
    this.targets = targets;
  }

  /** Bare fastify `POST /echo` in its own process, driven over HTTP by an undici Pool (keep-alive). */
  httpEcho(): Promise<HttpEchoBaseline> {
    return this.#once('http', async () => {
      const server = await startServer(fileURLToPath(new URL('../servers/fastify-echo.ts', import.meta.url)));
      this.#cleanups.push(() => server.stop());
      const client = jsonPoster(server.origin, '/echo', ECHO_BODY);
      this.#cleanups.push(() => client.close());
      return { origin: server.origin, post: client.post };
    });
  }

  redis(): Promise<RedisBaseline> {
    return this.#once('redis', async () => {
      const url = this.targets.redisUrl;
      const redis = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 1, retryStrategy: () => null });
      // Failures surface through the commands (and the row's error count), not as console noise.
      redis.on('error', () => {});
      try {
        await redis.connect();
      } catch (error) {
        redis.disconnect();
        throw unreachable('Redis', 'BENCH_REDIS_URL', url, error);
      }
      this.#cleanups.push(() => redis.quit());
      const sha = String(await redis.script('LOAD', RETURN_ONE.lua));
      return {
        ping: async () => {
          await redis.ping();
        },
        evalsha: async () => {
          try {
            await redis.evalsha(sha, 0);
          } catch (error) {
            // Another client flushed the script cache (tests do): EVAL loads it again, as any client would.
            if (!(error instanceof Error && error.message.startsWith('NOSCRIPT'))) throw error;
            await redis.eval(RETURN_ONE.lua, 0);
          }
        },
      };
    });
  }

  nats(): Promise<NatsBaseline> {
    return this.#once('nats', async () => {
      const url = this.targets.natsUrl;
      let nc: NatsConnection;
      try {
        nc = await connect({ servers: url });
      } catch (error) {
        throw unreachable('NATS', 'BENCH_NATS_URL', url, error);
      }
      this.#cleanups.push(() => nc.close());
      const id = uniqueName('bench').replaceAll('_', '-');
      const jsm = await jetstreamManager(nc);
      const stream = id.toUpperCase().replaceAll('-', '_');
      await jsm.streams.add({ name: stream, subjects: [`${id}.js.>`] });
      this.#cleanups.push(() => jsm.streams.delete(stream));
      const js = jetstream(nc);
      return {
        publish: async () => {
          nc.publish(`${id}.core`, MESSAGE);
          await nc.flush();
        },
        jetstreamPublish: async () => {
          await js.publish(`${id}.js.event`, MESSAGE);
        },
      };
    });
  }

  postgres(): Promise<PostgresBaseline> {
    return this.#once('postgres', async () => {
      const url = this.targets.databaseUrl;
      const pool = new pg.Pool({ connectionString: url, max: 16, connectionTimeoutMillis: 5_000 });
      // Without a listener, an idle connection dropping would crash the run.
      pool.on('error', (error) =>
        process.stderr.write(`bench: postgres connection lost: ${error.message}\n`),
      );
      try {
        await pool.query('SELECT 1');
      } catch (error) {
        await pool.end();
        throw unreachable('PostgreSQL', 'BENCH_DATABASE_URL', url, error);
      }
      this.#cleanups.push(() => pool.end());
      // A shared regular table, not a TEMP one: temp tables live in one connection, and both
      // this pool and the adapters under test copy into it from several.
      const table = uniqueName('bench_copy');
      await pool.query(
        `CREATE TABLE ${table} (id bigint, customer text, units bigint, created_at timestamptz)`,
      );
      this.#cleanups.push(() => pool.query(`DROP TABLE IF EXISTS ${table}`));

      const createdAt = new Date('2025-01-01T00:00:00Z');
      const rows = Array.from(
        { length: COPY_ROWS_PER_OP },
        (_, i) => [i, 'cus_0001', 1200, createdAt] as const,
      );
      const encoded = Buffer.from(
        rows
          .map(([id, customer, units, at]) => `${id}\t${customer}\t${units}\t${at.toISOString()}\n`)
          .join(''),
      );
      const statement = `COPY ${table} (${COPY_COLUMNS.join(', ')}) FROM STDIN`;
      return {
        table,
        rows,
        copy: async () => {
          const client = await pool.connect();
          try {
            await pipeline(Readable.from([encoded]), client.query(copyFrom(statement)));
          } finally {
            client.release();
          }
        },
      };
    });
  }

  /** Removes everything the baselines created, newest first; reports but survives failures. */
  async close(): Promise<void> {
    for (const cleanup of this.#cleanups.splice(0).reverse()) {
      try {
        await cleanup();
      } catch (error) {
        process.stderr.write(`bench: cleanup failed: ${error instanceof Error ? error.message : error}\n`);
      }
    }
  }

  #once<T>(key: string, open: () => Promise<T>): Promise<T> {
    let opened = this.#opened.get(key) as Promise<T> | undefined;
    if (!opened) {
      opened = open();
      this.#opened.set(key, opened);
    }
    return opened;
  }
}
