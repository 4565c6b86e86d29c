/**
 * Each service bundle (what its container image holds) copied into an empty directory and run
 * there with Node.js alone, nothing of this checkout in reach: its migrations apply, every
 * process answers /readyz against the real PostgreSQL, Redis and NATS, the gate makes a real
 * decision, the MCP server reaches the gate, and SIGTERM ends each one cleanly.
 */
import { spawn } from 'node:child_process';
import { cp, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freshPgDatabase } from '@allot/kit/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bundleService, SERVICES } from '../../scripts/bundle.ts';
import {
  freePort,
  NatsServer,
  RedisServer,
  type Spawned,
  stopAll,
  track,
  waitReady,
} from '../support/servers.ts';

const API_KEY = 'bundle-test-key-0123456789';

interface Backends {
  dataDb: string;
  controlDb: string;
  redis: string;
  nats: string;
  hub: string;
}

let out: string;
let backends: Backends;
const cleanups: Array<() => Promise<void>> = [];

beforeAll(async () => {
  out = await mkdtemp(join(tmpdir(), 'allot-bundles-'));
  cleanups.push(() => rm(out, { recursive: true, force: true }));
  const [dataDb, controlDb, redis, nats, hub] = await Promise.all([
    freshPgDatabase(),
    freshPgDatabase(),
    RedisServer.start(),
    NatsServer.start(),
    NatsServer.start(),
  ]);
  cleanups.push(
    () => dataDb.drop(),
    () => controlDb.drop(),
    () => redis.stop(),
    () => nats.stop(),
    () => hub.stop(),
  );
  // The processes open their own connections; the fixtures' pools are not needed.
  await Promise.all([dataDb.store.close(), controlDb.store.close()]);
  backends = { dataDb: dataDb.url, controlDb: controlDb.url, redis: redis.url, nats: nats.url, hub: hub.url };
  for (const service of Object.keys(SERVICES)) await bundleService(service, out);
}, 300_000);

afterAll(async () => {
  await stopAll();
  for (const cleanup of cleanups.reverse()) await cleanup().catch(() => undefined);
});

/** A copy of the bundle in a directory of its own, as the image's /app. */
async function install(service: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), `allot-${service}-app-`));
  await cp(join(out, service), dir, { recursive: true });
  cleanups.push(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

/** Node alone, in the bundle's directory, with an environment holding only what the image sets. */
function run(dir: string, file: string, env: Record<string, string>): Spawned {
  const child = spawn(process.execPath, [file], {
    cwd: dir,
    env: { NODE_ENV: 'production', HOME: dir, TMPDIR: tmpdir(), LOG_LEVEL: 'warn', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  return track(child, `${file} of ${dir}`);
}

async function exitCode(proc: Spawned): Promise<number | null> {
  const { child } = proc;
  if (child.exitCode !== null) return child.exitCode;
  return new Promise((resolve) => child.once('exit', (code) => resolve(code)));
}

function dataPlane(): Record<string, string> {
  return {
    DATABASE_URL: backends.dataDb,
    REDIS_URL: backends.redis,
    NATS_URL: backends.nats,
    ALLOT_API_KEY: API_KEY,
  };
}

/**
 * Every process a service ships, with the environment its chart gives it. `.` is the main
 * process, as the image's `CMD ["/app"]` starts it.
 */
function processes(service: string): Array<{ file: string; env: Record<string, string> }> {
  switch (service) {
    case 'gate':
    case 'governance':
      return [{ file: '.', env: dataPlane() }];
    case 'credits':
      return [
        { file: '.', env: dataPlane() },
        { file: 'worker.mjs', env: dataPlane() },
      ];
    case 'metering':
      return [
        { file: '.', env: { ...dataPlane(), METERING_WORKER: 'false' } },
        { file: 'worker.mjs', env: dataPlane() },
      ];
    case 'control-plane':
      return [
        {
          file: '.',
          env: {
            DATABASE_URL: backends.controlDb,
            ALLOT_HUB_URL: backends.hub,
            ALLOT_HUB_PASSWORD: 'hub-password-0123456789',
            ALLOT_API_KEY: API_KEY,
          },
        },
      ];
    case 'uplink':
      return [
        {
          file: '.',
          env: {
            ...dataPlane(),
            ALLOT_TENANT: 'acme',
            ALLOT_UPLINK_URL: backends.hub,
            ALLOT_UPLINK_USER: 'acme',
            ALLOT_UPLINK_PASSWORD: 'acme-password-0123456789',
          },
        },
      ];
    default:
      throw new Error(`no processes listed for ${service}`);
  }
}

describe('service bundles', () => {
  it('every bundle ships its processes and its migrations', () => {
    for (const [service, spec] of Object.entries(SERVICES)) {
      const files = Object.keys(spec.entries);
      expect(files.length, service).toBeGreaterThan(0);
      if (service !== 'mcp') expect(files, service).toContain('migrate.mjs');
    }
  });

  it.each(['data-plane', 'control-plane'] as const)(
    'migrate.mjs applies the %s schemas, then nothing',
    async (plane) => {
      const service = plane === 'data-plane' ? 'gate' : 'control-plane';
      const dir = await install(service);
      const env = { DATABASE_URL: plane === 'data-plane' ? backends.dataDb : backends.controlDb };
      const first = run(dir, 'migrate.mjs', env);
      expect(await exitCode(first), first.output()).toBe(0);
      const applied = JSON.parse(first.output().trim().split('\n').at(-1) ?? '{}') as {
        plane: string;
        applied: string[];
      };
      expect(applied.plane).toBe(plane);
      expect(applied.applied.length).toBeGreaterThan(0);
      const again = run(dir, 'migrate.mjs', env);
      expect(await exitCode(again), again.output()).toBe(0);
      expect(JSON.parse(again.output().trim().split('\n').at(-1) ?? '{}')).toMatchObject({ applied: [] });
    },
  );

  const dataServices = Object.keys(SERVICES).filter((s) => s !== 'mcp');
  it.each(dataServices)('%s starts from an empty directory and answers /readyz', async (service) => {
    const dir = await install(service);
    for (const { file, env } of processes(service)) {
      const port = await freePort();
      const proc = run(dir, file, { ...env, PORT: String(port) });
      const status = (await waitReady(`http://127.0.0.1:${port}`, proc)) as { status: string };
      expect(status.status, `${service} ${file}`).toBe('ready');
      if (service === 'gate') {
        const res = await fetch(`http://127.0.0.1:${port}/v1/decisions`, {
          method: 'POST',
          headers: { authorization: `Bearer ${API_KEY}`, 'content-type': 'application/json' },
          body: JSON.stringify({ customerId: 'bundle-test', feature: 'bundle-test' }),
        });
        expect(res.status).toBe(200);
        expect(await res.json()).toMatchObject({ decision: 'deny', reason: 'customer_not_found' });
      }
      if (service === 'control-plane') {
        // The web UI's build travels in the bundle.
        const page = await fetch(`http://127.0.0.1:${port}/`);
        expect(page.status).toBe(200);
        expect(await page.text()).toContain('<div id="root">');
      }
      proc.child.kill('SIGTERM');
      expect(await exitCode(proc), `${service} ${file} on SIGTERM:\n${proc.output()}`).toBe(0);
    }
  });

  it('mcp starts from an empty directory, reaches the gate, and answers /readyz', async () => {
    const gateDir = await install('gate');
    const gatePort = await freePort();
    const gate = run(gateDir, '.', { ...dataPlane(), PORT: String(gatePort) });
    await waitReady(`http://127.0.0.1:${gatePort}`, gate);
    const dir = await install('mcp');
    const port = await freePort();
    const mcp = run(dir, '.', { PORT: String(port), ALLOT_GATE_URL: `http://127.0.0.1:${gatePort}` });
    expect(await waitReady(`http://127.0.0.1:${port}`, mcp)).toMatchObject({ status: 'ready' });
    // An MCP request: the tools this key may use, listed through the gate's whoami.
    const res = await fetch(`http://127.0.0.1:${port}/mcp`, {
      method: 'POST',
      headers: {
        authorization: `Bearer ${API_KEY}`,
        'content-type': 'application/json',
        accept: 'application/json, text/event-stream',
      },
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list', params: {} }),
    });
    expect(res.status).toBe(200);
    const text = await res.text();
    for (const tool of ['authorize', 'settle', 'release', 'report_usage', 'get_balance'])
      expect(text).toContain(tool);
    mcp.child.kill('SIGTERM');
    gate.child.kill('SIGTERM');
    expect(await exitCode(mcp)).toBe(0);
    expect(await exitCode(gate)).toBe(0);
  });
});
