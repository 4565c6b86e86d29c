/**
 * Clustered backends of our own, from the same binaries as the shared servers, on other ports:
 * a Redis Cluster (`redis-cli --cluster create`) and a NATS JetStream cluster. A test may kill
 * one node and start it again; `stop()` ends them all and removes their files.
 */
import { execFile, spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import { jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import { freePort, type Spawned, track } from './servers.ts';

const run = promisify(execFile);

/**
 * How long a test's own client waits on a cluster call: the servers share two cores with the
 * rest of the suite, so a call can take longer than a gate's 2 s without anything being wrong.
 */
export const CLUSTER_COMMAND_TIMEOUT_MS = 10_000;
const REDIS_SERVER = process.env.REDIS_SERVER_BIN ?? 'redis-server';
const REDIS_CLI = process.env.REDIS_CLI_BIN ?? 'redis-cli';
const NATS_SERVER = process.env.NATS_SERVER_BIN ?? '/usr/sbin/nats-server';

async function until(what: string, check: () => Promise<boolean>, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check().catch(() => false)) return;
    if (Date.now() > deadline) throw new Error(`${what} after ${timeoutMs} ms`);
    await sleep(100);
  }
}

/**
 * Primaries only (no replicas): losing one loses its shard's keys, as a crashed cache node
 * would, and a restarted node comes back empty with the same slots. The other shards keep
 * serving meanwhile (`cluster-require-full-coverage no`).
 */
export class RedisCluster {
  readonly ports: number[];
  readonly #dir: string;
  readonly #nodes: Array<Spawned | undefined>;

  private constructor(ports: number[], dir: string) {
    this.ports = ports;
    this.#dir = dir;
    this.#nodes = ports.map(() => undefined);
  }

  static async start(size = 3): Promise<RedisCluster> {
    const ports: number[] = [];
    for (let i = 0; i < size; i++) ports.push(await freePort());
    const cluster = new RedisCluster(ports, await mkdtemp(join(tmpdir(), 'allot-redis-cluster-')));
    await Promise.all(ports.map((_, i) => cluster.startNode(i)));
    await run(REDIS_CLI, [
      '--cluster',
      'create',
      ...ports.map((port) => `127.0.0.1:${port}`),
      '--cluster-replicas',
      '0',
      '--cluster-yes',
    ]);
    await cluster.waitHealthy();
    return cluster;
  }

  /** A seed node's URL: the client discovers the others. */
  get url(): string {
    return `redis://127.0.0.1:${this.ports[0]}`;
  }

  async startNode(index: number): Promise<void> {
    const port = this.ports[index]!;
    const child = spawn(
      REDIS_SERVER,
      [
        '--port',
        String(port),
        '--bind',
        '127.0.0.1',
        '--protected-mode',
        'no',
        '--cluster-enabled',
        'yes',
        '--cluster-config-file',
        join(this.#dir, `nodes-${port}.conf`),
        '--cluster-node-timeout',
        '1500',
        '--cluster-require-full-coverage',
        'no',
        '--save',
        '',
        '--appendonly',
        'no',
        '--dir',
        this.#dir,
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    this.#nodes[index] = track(child, `redis cluster node ${port}`);
    await until(
      `redis node ${port} not answering`,
      async () => (await this.cli(port, 'PING')) === 'PONG',
      10_000,
    );
  }

  async cli(port: number, ...args: string[]): Promise<string> {
    const { stdout } = await run(REDIS_CLI, ['-p', String(port), ...args]);
    return stdout.trim();
  }

  /** Every running node sees the cluster as ok. */
  async waitHealthy(timeoutMs = 30_000): Promise<void> {
    await until(
      'redis cluster not ok',
      async () => {
        for (const [i, port] of this.ports.entries()) {
          if (!this.#nodes[i]) continue;
          if (!(await this.cli(port, 'CLUSTER', 'INFO')).includes('cluster_state:ok')) return false;
        }
        return true;
      },
      timeoutMs,
    );
  }

  /** The node serving a key's slot. */
  async nodeOf(key: string): Promise<number> {
    const slot = Number(await this.cli(this.ports[0]!, 'CLUSTER', 'KEYSLOT', key));
    const nodes = await this.cli(this.ports[0]!, 'CLUSTER', 'NODES');
    for (const line of nodes.split('\n')) {
      const fields = line.split(' ');
      const port = Number(fields[1]?.split('@')[0]?.split(':')[1]);
      for (const range of fields.slice(8)) {
        const [from, to = from] = range.split('-').map(Number);
        if (from !== undefined && slot >= from && slot <= (to ?? from)) return this.ports.indexOf(port);
      }
    }
    throw new Error(`no node serves slot ${slot}`);
  }

  async kill(index: number): Promise<void> {
    await this.#nodes[index]?.kill('SIGKILL');
    this.#nodes[index] = undefined;
  }

  /** Keys on every node (tests that count what is left). */
  async dbsize(): Promise<number> {
    let total = 0;
    for (const [i, port] of this.ports.entries()) {
      if (this.#nodes[i]) total += Number(await this.cli(port, 'DBSIZE'));
    }
    return total;
  }

  async flushAll(): Promise<void> {
    for (const [i, port] of this.ports.entries()) if (this.#nodes[i]) await this.cli(port, 'FLUSHALL');
  }

  async stop(): Promise<void> {
    for (const i of this.ports.keys()) await this.kill(i);
    await rm(this.#dir, { recursive: true, force: true });
  }
}

/**
 * A NATS JetStream cluster of three servers (file store, routes between all of them). Streams
 * and buckets created with three replicas keep every acknowledged message on a quorum.
 */
export class NatsCluster {
  readonly ports: number[];
  readonly #routePorts: number[];
  readonly #dir: string;
  readonly #nodes: Array<Spawned | undefined>;

  private constructor(ports: number[], routePorts: number[], dir: string) {
    this.ports = ports;
    this.#routePorts = routePorts;
    this.#dir = dir;
    this.#nodes = ports.map(() => undefined);
  }

  static async start(size = 3): Promise<NatsCluster> {
    const ports: number[] = [];
    const routes: number[] = [];
    for (let i = 0; i < size; i++) {
      ports.push(await freePort());
      routes.push(await freePort());
    }
    const cluster = new NatsCluster(ports, routes, await mkdtemp(join(tmpdir(), 'allot-nats-cluster-')));
    for (const i of ports.keys()) await cluster.#writeConfig(i);
    await Promise.all(ports.map((_, i) => cluster.startNode(i)));
    await cluster.waitJetStream();
    return cluster;
  }

  /** Every server, so a client fails over to the others. */
  get url(): string {
    return this.ports.map((port) => `nats://127.0.0.1:${port}`).join(',');
  }

  async #writeConfig(index: number): Promise<void> {
    const routes = this.#routePorts
      .filter((_, i) => i !== index)
      .map((port) => `nats-route://127.0.0.1:${port}`);
    const config = [
      `server_name: n${index}`,
      'listen: 127.0.0.1:' + this.ports[index],
      `jetstream { store_dir: "${join(this.#dir, `n${index}`)}" }`,
      `cluster { name: allot, listen: 127.0.0.1:${this.#routePorts[index]}, routes: [${routes.join(', ')}] }`,
    ].join('\n');
    await writeFile(join(this.#dir, `n${index}.conf`), `${config}\n`);
  }

  async startNode(index: number): Promise<void> {
    const child = spawn(NATS_SERVER, ['-c', join(this.#dir, `n${index}.conf`)], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.#nodes[index] = track(child, `nats cluster node n${index}`);
    await this.#nodes[index]!.waitFor('Server is ready', 15_000);
  }

  /** The JetStream API answers (a meta leader is elected). */
  async waitJetStream(timeoutMs = 30_000): Promise<void> {
    await until(
      'jetstream cluster has no meta leader',
      async () => {
        const nc = await connect({ servers: this.url.split(','), timeout: 1000 });
        try {
          const jsm = await jetstreamManager(nc);
          await jsm.getAccountInfo();
          return true;
        } finally {
          await nc.close();
        }
      },
      timeoutMs,
    );
  }

  async kill(index: number): Promise<void> {
    await this.#nodes[index]?.kill('SIGKILL');
    this.#nodes[index] = undefined;
  }

  async stop(): Promise<void> {
    for (const i of this.ports.keys()) await this.kill(i);
    await rm(this.#dir, { recursive: true, force: true });
  }
}

let shared: Promise<{ redis: RedisCluster; nats: NatsCluster }> | undefined;

/** One Redis Cluster and one NATS cluster per test file, started on first use. */
export function sharedClusters(): Promise<{ redis: RedisCluster; nats: NatsCluster }> {
  shared ??= Promise.all([RedisCluster.start(), NatsCluster.start()]).then(([redis, nats]) => ({
    redis,
    nats,
  }));
  return shared;
}

/** In afterAll of a file that used `sharedClusters()`. */
export async function stopSharedClusters(): Promise<void> {
  if (!shared) return;
  const { redis, nats } = await shared;
  shared = undefined;
  await Promise.all([redis.stop(), nats.stop()]);
}
