/**
 * Two gate processes on one Redis Cluster and one NATS JetStream cluster (R3), with the
 * credits process applying the hot-path stream to PostgreSQL: 200 agents of one team call
 * them over HTTP, each request going to one gate and its settle or release to the other,
 * under a hard team budget, a per-agent budget (`agent: *`), a per-agent concurrency limit of
 * 2 (three requests in flight per agent) and one credit pool. Atomic samples of the customer's
 * hot state, read from the cluster while they run, check that no hard limit and no pool is
 * ever passed; at the end the ledger holds exactly what the agents were told was settled,
 * within the grant, and the team's usage in PostgreSQL is what the hot state counted.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { parseAmount } from '@allot/contracts/amount';
import { RedisHotState } from '@allot/kit/hot';
import { until } from '@allot/kit/testing';
import { afterAll, describe, expect, it } from 'vitest';
import { CLUSTER_COMMAND_TIMEOUT_MS } from './support/clusters.ts';
import { mulberry32 } from './support/credits-workload.ts';
import { limitSampler } from './support/limit-sampler.ts';
import { type Answer, call, type ScaleTopology, startScaleTopology } from './support/scale-topology.ts';

const AGENTS = 200;
const ROUNDS = 9;
const ONE = 1_000_000n;
const TENANT = 'default';

describe('200 agents over HTTP on two gate processes (Redis Cluster, NATS cluster)', () => {
  let topology: ScaleTopology | undefined;
  let hot: RedisHotState | undefined;
  afterAll(async () => {
    await hot?.close();
    await topology?.close();
  });

  it.each([
    { customer: 'acme', binding: 'the team budget', team: '250', pool: '800' },
    { customer: 'globex', binding: 'the pool', team: '800', pool: '250' },
  ])(
    'never pass a hard limit or the pool, across both gates, when $binding binds first',
    async ({ customer, team, pool }) => {
      topology ??= await startScaleTopology({ metering: false });
      // The test's own reads wait longer than a gate's: a slow sample on a loaded machine is no finding.
      hot ??= await RedisHotState.open({
        url: topology.redis.url,
        cluster: true,
        commandTimeoutMs: CLUSTER_COMMAND_TIMEOUT_MS,
      });
      const { configure, gates } = topology;
      await configure('/v1/features/llm', { name: 'LLM', type: 'metered' });
      await configure('/v1/plans/p', {
        name: 'P',
        entitlements: [{ feature: 'llm' }],
        creditRates: [{ feature: 'llm', creditType: 'credits', rate: '0.002' }],
      });
      await configure(`/v1/customers/${customer}`, { name: customer });
      await configure(`/v1/customers/${customer}/subscription`, { plan: 'p' });
      await configure(`/v1/customers/${customer}/entities/t1`, { type: 'team' });
      for (let i = 0; i < AGENTS; i += 20) {
        await Promise.all(
          Array.from({ length: 20 }, (_, j) =>
            configure(`/v1/customers/${customer}/entities/a${i + j}`, { type: 'agent', parentId: 't1' }),
          ),
        );
      }
      const budget = (id: string, body: Record<string, unknown>) =>
        configure(`/v1/budgets/${customer}-${id}`, {
          customerId: customer,
          metric: 'credits',
          mode: 'hard',
          alerts: [],
          ...body,
        });
      await budget('team', { scope: { team: 't1' }, period: 'month', limit: team, kind: 'budget' });
      await budget('per-agent', { scope: { agent: '*' }, period: 'day', limit: '3', kind: 'budget' });
      await budget('in-flight', { scope: { agent: '*' }, period: 'never', limit: '2', kind: 'concurrency' });
      await configure(
        `/v1/customers/${customer}/grants`,
        { creditType: 'credits', amount: pool, category: 'paid', idempotencyKey: `grant-${customer}` },
        topology.credits,
      );
      await topology.waitAllowed(customer, 'llm');

      const sampler = limitSampler(hot, {
        tenant: TENANT,
        customer,
        agents: AGENTS,
        team: { id: `${customer}-team`, limit: parseAmount(team) },
        perAgent: { id: `${customer}-per-agent`, limit: 3n * ONE },
        inFlight: { id: `${customer}-in-flight`, limit: 2n * ONE },
        pool: parseAmount(pool),
      });

      let told = 0n;
      let allowed = 0;
      const reasons = new Map<string, number>();
      const random = mulberry32(customer === 'acme' ? 17 : 19);
      let turn = 0;
      /** A gate answers; a 5xx or a lost connection is retried on the other one, same request. */
      const post = async (path: string, body: unknown): Promise<Answer> => {
        for (let attempt = 0; ; attempt++) {
          const gate = gates[(turn++ + attempt) % gates.length]!;
          const res = await call(gate.url, 'POST', path, body).catch(() => undefined);
          if (res && res.status < 500) return res;
          await sleep(50);
        }
      };
      const one = async (agent: number, n: number) => {
        const d = await post('/v1/decisions', {
          customerId: customer,
          feature: 'llm',
          units: 50 + Math.floor(random() * 650),
          dimensions: { agent: `a${agent}` },
          ttlMs: 60_000,
          idempotencyKey: `${customer}-a${agent}-${n}`,
        });
        expect(d.status).toBe(200);
        if (d.body.decision === 'deny') {
          const reason = String(d.body.reason);
          reasons.set(reason, (reasons.get(reason) ?? 0) + 1);
          return;
        }
        allowed++;
        await sleep(Math.floor(random() * 15));
        const id = encodeURIComponent(String(d.body.reservationId));
        if (random() < 0.2) {
          expect((await post(`/v1/reservations/${id}/release`, {})).status).toBe(200);
          return;
        }
        const s = await post(`/v1/reservations/${id}/settle`, { units: Math.floor(random() * 1000) });
        expect(s.status).toBe(200);
        told += parseAmount(String(s.body.settled));
      };
      const stopSampling = sampler.start();
      await Promise.all(
        Array.from({ length: AGENTS }, async (_, agent) => {
          // Three requests at a time per agent, so the concurrency limit of 2 is tested.
          for (let round = 0; round < ROUNDS; round += 3) {
            await Promise.all([one(agent, round), one(agent, round + 1), one(agent, round + 2)]);
          }
        }),
      );
      await stopSampling();
      await sampler.check();
      expect(sampler.violations).toEqual([]);
      // Samples share the event loop with 600 requests in flight: a few per run, each a consistent cut.
      expect(sampler.samples).toBeGreaterThanOrEqual(2);
      expect(allowed).toBeGreaterThan(200);
      expect(reasons.get('concurrency_limited') ?? 0).toBeGreaterThan(0);

      // The ledger has exactly what the agents were told was settled, within the grant; the
      // team's usage in PostgreSQL is what the hot state counted, within its limit.
      const { db } = topology;
      let debited = 0n;
      await until('the ledger', async () => {
        const { rows } = await db.store.query<{ debited: string | null }>(
          `SELECT -sum(amount) AS debited FROM credits.ledger WHERE customer_id = $1 AND kind = 'debit'`,
          [customer],
        );
        debited = BigInt(rows[0]?.debited ?? '0');
        return debited >= told;
      });
      await sleep(2000);
      const { rows } = await db.store.query<{ debited: string | null }>(
        `SELECT -sum(amount) AS debited FROM credits.ledger WHERE customer_id = $1 AND kind = 'debit'`,
        [customer],
      );
      expect(BigInt(rows[0]?.debited ?? '0')).toBe(told);
      expect(told).toBeLessThanOrEqual(parseAmount(pool));
      const teamUsed = await sampler.teamUsed();
      await until('the usage table', async () => {
        const { rows: usage } = await db.store.query<{ used: string | null }>(
          'SELECT sum(used) AS used FROM governance.usage WHERE counter_id = $1',
          [`${customer}-team`],
        );
        return BigInt(usage[0]?.used ?? '0') === teamUsed;
      });
      expect(teamUsed).toBeLessThanOrEqual(parseAmount(team));
      process.stdout.write(
        `[scale-out] ${customer}, 2 gate processes on a Redis Cluster ×3 and NATS ×3 (R3): ${allowed} allowed, ` +
          `denied ${JSON.stringify(Object.fromEntries(reasons))}, settled ${told} micro = ledger debits, ` +
          `team used ${teamUsed} of ${parseAmount(team)}, pool ${parseAmount(pool)}, ${sampler.samples} atomic samples (${sampler.skipped} skipped, no answer in time), 0 violations\n`,
      );
    },
  );
});
