/**
 * Private servers and processes for the fault tests: a Redis and a NATS of our own (same
 * binaries as the shared ones, other ports), which a test may kill and start again without
 * touching what other engineers' tests use, and the credits worker as a real child process.
 * Every child is tracked, so `stopAll()` in afterAll ends them even when a test failed.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createConnection, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';

export const REPO_ROOT = fileURLToPath(new URL('../..', import.meta.url));
const NATS_SERVER = process.env.NATS_SERVER_BIN ?? '/usr/sbin/nats-server';
const REDIS_SERVER = process.env.REDIS_SERVER_BIN ?? 'redis-server';

const children = new Set<ChildProcess>();

/** A port nobody listens on right now (the OS picks it). */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

async function accepting(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ host: '127.0.0.1', port });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

async function waitListening(port: number, child: ChildProcess, what: string, timeoutMs = 10_000) {
  const deadline = Date.now() + timeoutMs;
  while (!(await accepting(port))) {
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new Error(`${what} exited (${child.exitCode ?? child.signalCode}) before listening on ${port}`);
    }
    if (Date.now() > deadline) throw new Error(`${what} not listening on ${port} after ${timeoutMs} ms`);
    await sleep(25);
  }
}

export interface Spawned {
  readonly child: ChildProcess;
  /** stdout and stderr so far (capped), for failure messages. */
  output(): string;
  /** Sends `signal` and resolves once the process is gone. */
  kill(signal?: NodeJS.Signals): Promise<void>;
  /** Resolves once `text` appears in the output; rejects if the process exits first or on timeout. */
  waitFor(text: string, timeoutMs?: number): Promise<void>;
}

export function track(child: ChildProcess, what: string): Spawned {
  children.add(child);
  let output = '';
  const keep = (chunk: Buffer) => {
    output = (output + chunk.toString('utf8')).slice(-20_000);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  const exited = new Promise<void>((resolve) => {
    child.once('exit', () => {
      children.delete(child);
      resolve();
    });
  });
  child.once('error', (error) => {
    output += `\n${what}: ${error.message}`;
  });
  return {
    child,
    output: () => output,
    async waitFor(text: string, timeoutMs = 15_000) {
      const deadline = Date.now() + timeoutMs;
      while (!output.includes(text)) {
        if (child.exitCode !== null || child.signalCode !== null) {
          throw new Error(
            `${what} exited (${child.exitCode ?? child.signalCode}) before '${text}':\n${output}`,
          );
        }
        if (Date.now() > deadline) throw new Error(`${what}: no '${text}' after ${timeoutMs} ms:\n${output}`);
        await sleep(20);
      }
    },
    async kill(signal: NodeJS.Signals = 'SIGKILL') {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      await exited;
    },
  };
}

/** Ends every child still running (afterAll, pass or fail). */
export async function stopAll(): Promise<void> {
  await Promise.all(
    [...children].map(
      (child) =>
        new Promise<void>((resolve) => {
          if (child.exitCode !== null || child.signalCode !== null) return resolve();
          child.once('exit', () => resolve());
          child.kill('SIGKILL');
        }),
    ),
  );
}

/** A Redis of our own, without persistence: a kill loses everything, as a crashed cache node would. */
export class RedisServer {
  readonly port: number;
  #proc: Spawned | undefined;

  private constructor(port: number) {
    this.port = port;
  }

  static async start(): Promise<RedisServer> {
    const server = new RedisServer(await freePort());
    await server.start();
    return server;
  }

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  async start(): Promise<void> {
    const child = spawn(
      REDIS_SERVER,
      [
        '--port',
        String(this.port),
        '--bind',
        '127.0.0.1',
        '--save',
        '',
        '--appendonly',
        'no',
        '--daemonize',
        'no',
        '--protected-mode',
        'no',
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    this.#proc = track(child, 'redis-server');
    await waitListening(this.port, child, 'redis-server');
  }

  /** SIGKILL: the data set is gone with the process. */
  async kill(): Promise<void> {
    await this.#proc?.kill('SIGKILL');
    this.#proc = undefined;
  }

  async stop(): Promise<void> {
    await this.kill();
  }
}

/** A NATS server of our own with JetStream on a file store, so a restart keeps the streams. */
export class NatsServer {
  readonly port: number;
  readonly storeDir: string;
  #proc: Spawned | undefined;

  private constructor(port: number, storeDir: string) {
    this.port = port;
    this.storeDir = storeDir;
  }

  #configFile: string | undefined;

  static async start(): Promise<NatsServer> {
    const server = new NatsServer(await freePort(), await mkdtemp(join(tmpdir(), 'allot-faults-nats-')));
    await server.start();
    return server;
  }

  /** A server with a configuration file of its own (users and permissions), no JetStream. */
  static async withConfig(config: string): Promise<NatsServer> {
    const server = new NatsServer(await freePort(), await mkdtemp(join(tmpdir(), 'allot-hub-nats-')));
    server.#configFile = join(server.storeDir, 'nats.conf');
    await writeFile(server.#configFile, config);
    await server.start();
    return server;
  }

  get url(): string {
    return `nats://127.0.0.1:${this.port}`;
  }

  async start(): Promise<void> {
    const child = spawn(
      NATS_SERVER,
      this.#configFile
        ? ['-c', this.#configFile, '-a', '127.0.0.1', '-p', String(this.port)]
        : ['-a', '127.0.0.1', '-p', String(this.port), '-js', '-sd', this.storeDir],
      {
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    this.#proc = track(child, 'nats-server');
    await waitListening(this.port, child, 'nats-server');
  }

  async kill(signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    await this.#proc?.kill(signal);
    this.#proc = undefined;
  }

  async stop(): Promise<void> {
    await this.kill('SIGKILL');
    await rm(this.storeDir, { recursive: true, force: true });
  }
}

/**
 * `node --import tsx services/credits/src/worker/main.ts`, as it runs in production, on our
 * database and NATS namespace.
 */
export function spawnCreditsWorker(env: {
  DATABASE_URL: string;
  NATS_URL: string;
  NATS_PREFIX: string;
  CREDITS_ACK_WAIT_MS: string;
}): Spawned {
  const child = spawn(process.execPath, ['--import', 'tsx', 'services/credits/src/worker/main.ts'], {
    cwd: REPO_ROOT,
    env: { ...process.env, ...env, LOG_LEVEL: 'info', NODE_ENV: 'test' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  return track(child, 'credits worker');
}

/** `node --import tsx services/metering/src/worker/main.ts` on our database and NATS namespace. */
export function spawnMeteringWorker(env: {
  DATABASE_URL: string;
  NATS_URL: string;
  NATS_PREFIX: string;
  METERING_ACK_WAIT_MS?: string;
  METERING_TAKE?: string;
}): Spawned {
  const child = spawn(process.execPath, ['--import', 'tsx', 'services/metering/src/worker/main.ts'], {
    cwd: REPO_ROOT,
    env: { ...process.env, ...env, LOG_LEVEL: 'info', NODE_ENV: 'test' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  return track(child, 'metering worker');
}

/** `node --import tsx <entry>` with `env` over this process's, as a service runs in production. */
export function spawnEntry(what: string, entry: string, env: Record<string, string>): Spawned {
  const child = spawn(process.execPath, ['--import', 'tsx', entry], {
    cwd: REPO_ROOT,
    env: { ...process.env, NODE_ENV: 'test', LOG_LEVEL: 'warn', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  return track(child, what);
}

/** Resolves with the body once `GET <url>/readyz` answers 200; rejects if the process exits first. */
export async function waitReady(url: string, proc: Spawned, timeoutMs = 60_000): Promise<unknown> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (proc.child.exitCode !== null) throw new Error(`exited ${proc.child.exitCode}:\n${proc.output()}`);
    const res = await fetch(`${url}/readyz`).catch(() => undefined);
    if (res?.status === 200) return res.json();
    if (Date.now() > deadline) throw new Error(`${url} not ready after ${timeoutMs} ms:\n${proc.output()}`);
    await sleep(200);
  }
}
