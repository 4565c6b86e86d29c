import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';

const repo = resolve(import.meta.dirname, '../../..');
const entry = join(repo, 'services/allot/src/main.ts');
const real = {
  DATABASE_URL: process.env.TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test',
  REDIS_URL: process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379',
  NATS_URL: process.env.TEST_NATS_URL ?? 'nats://127.0.0.1:4222',
};

interface Started {
  child: ChildProcess;
  url: string;
  stdout: () => string;
}

const children: ChildProcess[] = [];
const dirs: string[] = [];
afterEach(async () => {
  for (const child of children.splice(0)) if (child.exitCode === null) child.kill('SIGKILL');
  for (const dir of dirs.splice(0)) await rm(dir, { recursive: true, force: true });
});

function cleanEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {
    PATH: process.env.PATH,
    HOME: process.env.HOME,
    PORT: '0',
    LOG_LEVEL: 'warn',
  };
  return { ...env, ...extra };
}

/** Starts the all-in-one process and waits for its banner. */
async function start(command: string, args: string[], extra: Record<string, string>): Promise<Started> {
  const dataDir = await mkdtemp(join(tmpdir(), 'allot-start-'));
  dirs.push(dataDir);
  // A data directory that does not exist yet, as on a fresh clone.
  const env = cleanEnv({ ALLOT_DATA_DIR: join(dataDir, 'fresh/data'), ...extra });
  const child = spawn(command, args, { cwd: repo, env });
  children.push(child);
  let out = '';
  let err = '';
  child.stdout?.on('data', (chunk: Buffer) => {
    out += chunk.toString();
  });
  child.stderr?.on('data', (chunk: Buffer) => {
    err += chunk.toString();
  });
  const url = await new Promise<string>((resolveUrl, reject) => {
    const timer = setInterval(() => {
      const match = /Allot is running at (http:\/\/localhost:\d+)/.exec(out);
      if (match?.[1]) {
        clearInterval(timer);
        resolveUrl(match[1]);
      }
    }, 50);
    child.on('exit', (code) => {
      clearInterval(timer);
      reject(new Error(`exited with ${code}: ${err}`));
    });
  });
  return { child, url, stdout: () => out };
}

/** Runs the entry to completion and returns its exit code and output. */
function run(
  extra: Record<string, string>,
): Promise<{ code: number | null; stderr: string; stdout: string }> {
  return new Promise((done) => {
    const child = spawn(process.execPath, ['--import', 'tsx', entry], { cwd: repo, env: cleanEnv(extra) });
    let stderr = '';
    let stdout = '';
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    child.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk.toString();
    });
    child.on('exit', (code) => done({ code, stderr, stdout }));
  });
}

function exited(child: ChildProcess): Promise<number | null> {
  return new Promise((done) => child.on('exit', (code) => done(code)));
}

describe('npm start', () => {
  it('runs on embedded stores with nothing else, answers /healthz and /readyz, prints a key, stops on SIGTERM', async () => {
    const { child, url, stdout } = await start('npm', ['start', '--silent'], {});
    expect(stdout()).toMatch(/API key: allot_[A-Za-z0-9_-]{32}/);
    const health = await fetch(`${url}/healthz`);
    expect(health.status).toBe(200);
    const ready = await fetch(`${url}/readyz`);
    expect(ready.status).toBe(200);
    const body = (await ready.json()) as { checks: { name: string; status: string }[] };
    expect(body.checks.map((c) => c.name)).toEqual([
      'postgres (pglite)',
      'redis (embedded)',
      'nats (embedded)',
    ]);
    // The demo is loaded, and the decision the banner offers is allowed, under the team budget.
    expect(stdout()).toMatch(/Demo: +loaded/);
    const key = /API key: (allot_[A-Za-z0-9_-]+)/.exec(stdout())?.[1];
    const decide = /Decide: +curl -s (\S+) .* -d '(.+)'/.exec(stdout());
    expect(decide).not.toBeNull();
    const decision = await fetch(decide![1]!, {
      method: 'POST',
      headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
      body: decide![2]!,
    });
    expect(decision.status).toBe(200);
    expect(await decision.json()).toMatchObject({
      decision: 'allow',
      cost: { creditType: 'credits', amount: '2.4' },
      limits: [
        { id: 'acme-team-t1', scope: { team: 't1' } },
        { id: 'acme-per-agent', scope: { agent: 'a7' } },
      ],
      config: { 'max-context': 128000 },
    });
    // npm re-raises a child's signal on itself, so the clean exit is checked on the process itself below.
    child.kill('SIGTERM');
    await exited(child);
  }, 60_000);

  it('closes and exits 0 on SIGTERM', async () => {
    const { child, url } = await start(process.execPath, ['--import', 'tsx', entry], {});
    expect((await fetch(`${url}/healthz`)).status).toBe(200);
    const gone = exited(child);
    child.kill('SIGTERM');
    expect(await gone).toBe(0);
  }, 60_000);

  it('switches each store to the real server whose URL is set', async () => {
    const key = 'allot_ci_key_0123456789abcdef';
    const { url, stdout } = await start(process.execPath, ['--import', 'tsx', entry], {
      ...real,
      ALLOT_API_KEY: key,
    });
    expect(stdout()).toMatch(/API key: from ALLOT_API_KEY/);
    expect(stdout()).not.toContain(key);
    const ready = await fetch(`${url}/readyz`);
    const body = (await ready.json()) as { checks: { name: string; status: string }[] };
    expect(body.checks.map((c) => [c.name, c.status])).toEqual([
      ['postgres (postgres)', 'ok'],
      ['redis (redis)', 'ok'],
      ['nats (nats)', 'ok'],
    ]);
    expect(ready.status).toBe(200);
  }, 60_000);

  it('is not ready while a configured store is unreachable, each check failing on its own', async () => {
    const { url } = await start(process.execPath, ['--import', 'tsx', entry], {
      REDIS_URL: 'redis://127.0.0.1:1',
    });
    const ready = await fetch(`${url}/readyz`);
    expect(ready.status).toBe(503);
    const body = (await ready.json()) as { checks: { name: string; status: string }[] };
    expect(body.checks.map((c) => [c.name, c.status])).toEqual([
      ['postgres (pglite)', 'ok'],
      ['redis (redis)', 'failed'],
      ['nats (embedded)', 'ok'],
    ]);
  }, 60_000);
});

describe('bad configuration', () => {
  it('stops on a malformed REDIS_URL with one line naming it', async () => {
    const { code, stderr, stdout } = await run({ REDIS_URL: 'localhost:6379' });
    expect(code).toBe(1);
    expect(stdout).toBe('');
    expect(stderr).toBe(
      'allot: invalid configuration: REDIS_URL: expected a Redis URL (redis:// or rediss://)\n',
    );
  }, 30_000);

  it('stops on missing required variables with one line naming them', async () => {
    const { code, stderr } = await run({ NODE_ENV: 'production', REDIS_URL: real.REDIS_URL });
    expect(code).toBe(1);
    expect(stderr.trim().split('\n')).toHaveLength(1);
    expect(stderr).toMatch(/DATABASE_URL: is required when NODE_ENV=production/);
    expect(stderr).toMatch(/NATS_URL: is required/);
    expect(stderr).toMatch(/ALLOT_API_KEY: is required/);
    expect(stderr).not.toMatch(/REDIS_URL/);
  }, 30_000);

  it('stops on a bad PORT with one line', async () => {
    const { code, stderr } = await run({ PORT: 'http' });
    expect(code).toBe(1);
    expect(stderr).toMatch(/^allot: invalid configuration: PORT: expected a port number\n$/);
  }, 30_000);
});
