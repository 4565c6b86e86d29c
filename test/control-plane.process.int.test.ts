/**
 * The control plane as its own process (services/control-plane/src/server.ts) on a fresh
 * database and a hub started from a generated configuration: it becomes ready, serves the
 * web UI at /, and creates a tenant whose credentials the hub then accepts once restarted with
 * the configuration the control plane generates.
 */
import { spawn } from 'node:child_process';
import { hashPassword, hubServerConfig } from '@allot/control-plane';
import { freshPgDatabase, until } from '@allot/kit/testing';
import { connect } from '@nats-io/transport-node';
import { afterAll, describe, expect, it } from 'vitest';
import { freePort, NatsServer, REPO_ROOT, stopAll } from './support/servers.ts';

const KEY = 'operator-key-000000000000000';
const HUB_PASSWORD = 'hub-password-0000000000';

describe('the control plane process', () => {
  afterAll(() => stopAll());

  it('starts on its own database and hub, serves the UI, and issues credentials the hub accepts', async () => {
    const db = await freshPgDatabase();
    const controlPlaneUser = { user: 'control-plane', passwordHash: await hashPassword(HUB_PASSWORD) };
    const hub = await NatsServer.withConfig(hubServerConfig({ controlPlane: controlPlaneUser, tenants: [] }));
    const port = await freePort();
    const child = spawn(process.execPath, ['--import', 'tsx', 'services/control-plane/src/server.ts'], {
      cwd: REPO_ROOT,
      env: {
        ...process.env,
        DATABASE_URL: db.url,
        ALLOT_HUB_URL: hub.url,
        ALLOT_HUB_PASSWORD: HUB_PASSWORD,
        ALLOT_API_KEY: KEY,
        PORT: String(port),
        HOST: '127.0.0.1',
        LOG_LEVEL: 'warn',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (c: Buffer) => (output += c.toString()));
    child.stderr.on('data', (c: Buffer) => (output += c.toString()));
    try {
      const base = `http://127.0.0.1:${port}`;
      await until('ready', async () => (await fetch(`${base}/readyz`).catch(() => null))?.ok, 60_000).catch(
        (error: unknown) => {
          throw new Error(`${(error as Error).message}\n${output}`);
        },
      );
      expect(await (await fetch(`${base}/`)).text()).toContain('<div id="root">');
      const headers = { authorization: `Bearer ${KEY}`, 'content-type': 'application/json' };
      const created = await fetch(`${base}/v1/tenants/acme-prod`, {
        method: 'PUT',
        headers,
        body: JSON.stringify({ name: 'Acme production' }),
      });
      expect(created.status).toBe(200);
      const { credentials } = (await created.json()) as { credentials: { user: string; password: string } };
      const conf = await (await fetch(`${base}/v1/control-plane/nats.conf`, { headers })).text();
      expect(conf).toContain('"allot.acme-prod.>"');
      expect(conf).not.toContain(credentials.password);
      // The hub restarted with that configuration lets the tenant in, limited to its subjects.
      await hub.stop();
      const next = await NatsServer.withConfig(conf);
      const nc = await connect({ servers: next.url, user: credentials.user, pass: credentials.password });
      nc.publish('allot.acme-prod.up.health', '{}');
      await nc.flush();
      await nc.close();
      await expect(connect({ servers: next.url, user: credentials.user, pass: 'wrong' })).rejects.toThrow();
      // The operator acts for the tenant by naming it.
      const feature = await fetch(`${base}/v1/features/tokens`, {
        method: 'PUT',
        headers: { ...headers, 'x-allot-tenant': 'acme-prod' },
        body: JSON.stringify({ name: 'Tokens', type: 'metered' }),
      });
      expect(feature.status).toBe(200);
      await next.stop();
    } finally {
      child.kill('SIGTERM');
      await new Promise((resolve) => child.once('exit', resolve));
      await db.drop();
    }
  });
});
