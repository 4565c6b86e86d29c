/**
 * 200 agents of one team, in parallel, on one shared credit pool, under a hard team budget, a
 * per-agent budget (`agent: *`) and a per-agent concurrency limit of 2; each agent keeps up to
 * three requests going, settling (less or more than reserved) or releasing each. While it
 * runs, atomic samples of the hot state check that no hard limit and no pool is ever passed;
 * at the end, the ledger holds exactly what the agents were told was settled, and the team's
 * usage in PostgreSQL is what the hot state counted.
 *
 * On three topologies: one gate on PostgreSQL, Redis and NATS; the embedded stores; and two
 * gates (each with its own Redis client, credits engine and configuration replica) on a
 * 3-node Redis Cluster and a 3-node NATS JetStream cluster with R3 streams, the agents'
 * requests spread over both, a reservation often settled by the other gate than its own.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { RedisHotState } from '@allot/kit/hot';
import { until } from '@allot/kit/testing';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { StreamLedgerView } from '../services/credits/src/store/ledger-view.ts';
import type { GateService } from '../services/gate/src/service.ts';
import { type GateRig, openGateRig } from '../services/gate/test/support/rig.ts';
import { CLUSTER_COMMAND_TIMEOUT_MS, sharedClusters, stopSharedClusters } from './support/clusters.ts';
import { mulberry32 } from './support/credits-workload.ts';
import { limitSampler } from './support/limit-sampler.ts';

type Topology = 'real' | 'embedded' | 'cluster';

afterAll(stopSharedClusters);

interface Opened {
  rig: GateRig;
  /** The gates the agents' requests go to, in turn. */
  gates: GateService[];
  close(): Promise<void>;
}

async function openTopology(topology: Topology): Promise<Opened> {
  if (topology !== 'cluster') {
    const rig = await openGateRig(topology);
    return { rig, gates: [rig.gate], close: () => rig.close() };
  }
  const { redis, nats } = await sharedClusters();
  const prefix = `c${Math.random().toString(36).slice(2, 8)}:`;
  const [first, second] = await Promise.all(
    [0, 1].map(() =>
      RedisHotState.open({
        url: redis.url,
        cluster: true,
        prefix,
        commandTimeoutMs: CLUSTER_COMMAND_TIMEOUT_MS,
      }),
    ),
  );
  const rig = await openGateRig('real', { hot: first!, natsUrl: nats.url, natsReplicas: 3 });
  const other = await rig.another({ hot: second! });
  return {
    rig,
    gates: [rig.gate, other],
    async close() {
      await rig.close();
      await Promise.all([first!.close(), second!.close()]);
    },
  };
}

const AGENTS = 200;
const ROUNDS = 9;
const ONE = 1_000_000n;

describe.each<Topology>(['real', 'embedded', 'cluster'])('200 parallel agents on %s', (backend) => {
  let opened: Opened;
  let rig: GateRig;
  let gates: GateService[];
  afterEach(() => opened.close());

  it.each([
    { binding: 'the team budget', team: '250', pool: 800_000_000n },
    { binding: 'the pool', team: '800', pool: 250_000_000n },
  ])('never pass a hard limit or the pool when $binding binds first', async ({ team, pool }) => {
    opened = await openTopology(backend);
    ({ rig, gates } = opened);
    // Every gate has seen the configuration before the agents start.
    const waitAll = async () => {
      const version = (await rig.gate.config.versions()).get(rig.tenant) ?? 0;
      await Promise.all(gates.map((g) => g.replica.waitFor(rig.tenant, version)));
    };
    await rig.put('feature', 'llm', { name: 'LLM', type: 'metered' });
    await rig.put('plan', 'p', {
      name: 'P',
      entitlements: [{ feature: 'llm' }],
      creditRates: [{ feature: 'llm', creditType: 'credits', rate: '0.002' }],
    });
    await rig.put('customer', 'acme', { name: 'Acme' });
    await rig.put('subscription', 'acme', { plan: 'p', addons: [], overrides: [] });
    await rig.put('entity', 'acme/t1', { type: 'team' });
    for (let i = 0; i < AGENTS; i++) await rig.put('entity', `acme/a${i}`, { type: 'agent', parentId: 't1' });
    const budget = (id: string, body: Record<string, unknown>) =>
      rig.put('budget', id, { customerId: 'acme', metric: 'credits', mode: 'hard', alerts: [], ...body });
    await budget('team', { scope: { team: 't1' }, period: 'month', limit: team, kind: 'budget' });
    await budget('per-agent', { scope: { agent: '*' }, period: 'day', limit: '3', kind: 'budget' });
    await budget('in-flight', { scope: { agent: '*' }, period: 'never', limit: '2', kind: 'concurrency' });
    await rig.grant('acme', pool);
    await waitAll();

    const teamLimit = BigInt(team) * ONE;
    const sampler = limitSampler(rig.hot, {
      tenant: rig.tenant,
      customer: 'acme',
      agents: AGENTS,
      team: { id: 'team', limit: teamLimit },
      perAgent: { id: 'per-agent', limit: 3n * ONE },
      inFlight: { id: 'in-flight', limit: 2n * ONE },
      pool,
    });
    let told = 0n;
    let allowed = 0;
    let denied = 0;
    const reasons = new Map<string, number>();
    const random = mulberry32(backend === 'real' ? 7 : backend === 'embedded' ? 11 : 13);
    let turn = 0;
    const next = () => gates[turn++ % gates.length]!.engine;
    const one = async (agent: number) => {
      const d = await next().decide(rig.tenant, {
        customerId: 'acme',
        feature: 'llm',
        units: String(50 + Math.floor(random() * 650)),
        dimensions: { agent: `a${agent}` },
        ttlMs: 60_000,
      });
      if (d.decision === 'deny') {
        denied++;
        reasons.set(d.reason!, (reasons.get(d.reason!) ?? 0) + 1);
        return;
      }
      allowed++;
      await sleep(Math.floor(random() * 15));
      if (random() < 0.2) {
        await next().release(rig.tenant, d.reservationId!);
        return;
      }
      const actual = Math.floor(random() * 1000);
      const s = await next().settle(rig.tenant, d.reservationId!, { units: String(actual) });
      told += BigInt(Math.round(Number(s.settled) * 1_000_000));
    };
    const stopSampling = sampler.start();
    await Promise.all(
      Array.from({ length: AGENTS }, async (_, agent) => {
        // Three requests at a time per agent, so the concurrency limit of 2 is tested.
        for (let round = 0; round < ROUNDS; round += 3)
          await Promise.all([one(agent), one(agent), one(agent)]);
      }),
    );
    await stopSampling();
    await sampler.check();
    expect(sampler.violations).toEqual([]);
    expect(sampler.samples).toBeGreaterThan(3);
    expect(allowed).toBeGreaterThan(300);
    expect(reasons.get('concurrency_limited') ?? 0).toBeGreaterThan(0);
    expect(denied).toBeGreaterThan(0);

    // The ledger has exactly what the agents were told was settled.
    await new StreamLedgerView(rig.sql, rig.bus).caughtUp();
    const { rows } = await rig.sql.query<{ debited: string | null }>(
      `SELECT -sum(amount) AS debited FROM credits.ledger WHERE tenant = $1 AND kind = 'debit'`,
      [rig.tenant],
    );
    expect(BigInt(rows[0]?.debited ?? '0')).toBe(told);
    // And the team's usage in PostgreSQL is what the hot state counted, within its limit.
    const teamUsed = await sampler.teamUsed();
    await until('the usage table', async () => {
      const { rows: usage } = await rig.sql.query<{ used: string }>(
        `SELECT sum(used) AS used FROM governance.usage WHERE tenant = $1 AND counter_id = 'team'`,
        [rig.tenant],
      );
      return BigInt(usage[0]?.used ?? '0') === teamUsed;
    });
    expect(teamUsed).toBeLessThanOrEqual(teamLimit);
    console.info(
      `${backend} (${gates.length} gate${gates.length > 1 ? 's' : ''}): ${allowed} allowed, ${denied} denied ${JSON.stringify(Object.fromEntries(reasons))}, settled ${told} micro, team used ${teamUsed}, ${sampler.samples} samples`,
    );
  });
});
