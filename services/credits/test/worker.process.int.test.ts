/**
 * The worker as its own process (`src/worker/main.ts`) on NATS and PostgreSQL: killed with
 * SIGKILL in the middle of the stream and started again, it leaves every event applied exactly
 * once; sent SIGTERM, it finishes what it holds and exits 0.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { type BusFixture, freshNatsBus, testNatsUrl } from '@allot/kit/testing';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { type CreditEvent, creditsSubject } from '../src/domain/events.ts';
import { creditsStreamConfig } from '../src/worker/worker.ts';
import {
  addGrants,
  eventsFor,
  grant,
  type LedgerStore,
  ledgerState,
  openLedgerStore,
} from './support/ledger.ts';

const ROOT = fileURLToPath(new URL('../../..', import.meta.url));
const MAIN = fileURLToPath(new URL('../src/worker/main.ts', import.meta.url));

describe('credits worker process', () => {
  let fixture: BusFixture;
  let ledger: LedgerStore;
  const children: ChildProcess[] = [];
  const tenant = 'proc';

  const startProcess = async (): Promise<{ child: ChildProcess; output: () => string }> => {
    const child = spawn(process.execPath, ['--import', 'tsx', MAIN], {
      cwd: ROOT,
      env: {
        ...process.env,
        DATABASE_URL: ledger.url,
        NATS_URL: testNatsUrl,
        NATS_PREFIX: fixture.prefix,
        CREDITS_ACK_WAIT_MS: '1000',
        LOG_LEVEL: 'info',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    children.push(child);
    let output = '';
    child.stdout?.on('data', (chunk: Buffer) => {
      output += chunk.toString();
    });
    child.stderr?.on('data', (chunk: Buffer) => {
      output += chunk.toString();
    });
    await vi.waitFor(() => expect(output).toContain('credits worker started'), {
      timeout: 20_000,
      interval: 50,
    });
    return { child, output: () => output };
  };

  const exited = (child: ChildProcess) =>
    new Promise<number | null>((resolve) => {
      if (child.exitCode !== null || child.signalCode !== null) resolve(child.exitCode);
      else child.once('exit', (code) => resolve(code));
    });

  const settledHolds = async () => {
    const { rows } = await ledger.store.query<{ n: string }>(
      "SELECT count(*) AS n FROM credits.holds WHERE tenant = $1 AND status = 'settled'",
      [tenant],
    );
    return Number(rows[0]?.n ?? 0);
  };

  beforeEach(async () => {
    [fixture, ledger] = await Promise.all([freshNatsBus(), openLedgerStore('postgres')]);
    await addGrants(ledger.store, [grant(tenant, 'g1', 10_000_000n)]);
    await fixture.bus.ensureStream(creditsStreamConfig);
  });

  afterEach(async () => {
    for (const child of children.splice(0)) if (child.exitCode === null) child.kill('SIGKILL');
    await Promise.all([fixture.cleanup(), ledger.close()]);
  });

  it('applies everything exactly once across a SIGKILL and a restart', { timeout: 60_000 }, async () => {
    const ev = eventsFor({ tenant });
    const messages = 300;
    const perMessage = 10;
    for (let m = 0; m < messages; m++) {
      const events: CreditEvent[] = [];
      for (let i = 0; i < perMessage; i++) {
        const holdId = `h${m}-${i}`;
        events.push(
          ev.reserved(holdId, 10n),
          ev.settled(holdId, { held: 10n, debits: [['g1', 7n]], released: 3n }),
        );
      }
      await fixture.bus.publish(creditsSubject(m % 4), new TextEncoder().encode(JSON.stringify({ events })));
    }
    const first = await startProcess();
    await vi.waitFor(async () => expect(await settledHolds()).toBeGreaterThan(0), {
      timeout: 20_000,
      interval: 5,
    });
    first.child.kill('SIGKILL');
    await exited(first.child);
    const applied = await settledHolds();
    expect(applied).toBeLessThan(messages * perMessage);

    await startProcess();
    await vi.waitFor(async () => expect(await settledHolds()).toBe(messages * perMessage), {
      timeout: 30_000,
      interval: 100,
    });
    const state = await ledgerState(ledger.store, tenant);
    expect(state.ledger).toHaveLength(messages * perMessage * 2);
    expect(state.balances).toEqual([
      { grant_id: 'g1', remaining: String(10_000_000 - messages * perMessage * 7) },
    ]);
  });

  it('finishes its work on SIGTERM and exits 0', { timeout: 30_000 }, async () => {
    const worker = await startProcess();
    const ev = eventsFor({ tenant });
    await fixture.bus.publish(
      creditsSubject(0),
      new TextEncoder().encode(JSON.stringify({ events: [ev.reserved('h1', 10n)] })),
    );
    await vi.waitFor(async () => expect((await ledgerState(ledger.store, tenant)).holds).toHaveLength(1), {
      timeout: 10_000,
    });
    worker.child.kill('SIGTERM');
    expect(await exited(worker.child)).toBe(0);
    expect(worker.output()).toContain('credits worker stopped');
  });
});
