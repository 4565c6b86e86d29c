/**
 * Atomic samples of one customer's hot state while agents run: its governance counters and
 * its credit pool, read by one script (so one consistent cut, even on a Redis Cluster: both
 * keys carry the customer's hash tag), checked against the hard limits the tests configure.
 */
import { HotReplyError, type HotScript, type HotState, hotKey } from '@allot/kit/hot';

const RS = '\u001e';
const US = '\u001f';

const sample: HotScript = {
  name: 'test.gate.sample',
  lua: `return { redis.call('HGETALL', KEYS[1]), redis.call('HGETALL', KEYS[2]) }`,
};

export interface AgentLimits {
  tenant: string;
  customer: string;
  agents: number;
  /** A hard budget on the whole team, in micro-credits. */
  team: { id: string; limit: bigint };
  /** A hard budget per agent (`agent: *`), in micro-credits. */
  perAgent: { id: string; limit: bigint };
  /** A concurrency limit per agent (`agent: *`), in micro-units (1 request = 1,000,000). */
  inFlight: { id: string; limit: bigint };
  /** The credits granted to the pool, in micro-credits. */
  pool: bigint;
}

export interface LimitSampler {
  /** Reads once and records any limit passed. */
  check(): Promise<void>;
  /**
   * Samples every few milliseconds until the returned function is called (it resolves once the
   * last sample is in). A read that times out on a loaded machine is skipped, not a violation.
   */
  start(): () => Promise<void>;
  readonly violations: string[];
  readonly samples: number;
  /** Reads that did not answer in time. */
  readonly skipped: number;
  /** The team's used amount as the hot state counts it now. */
  teamUsed(): Promise<bigint>;
}

export function limitSampler(hot: HotState, limits: AgentLimits): LimitSampler {
  const keys = [
    hotKey(limits.tenant, limits.customer, 'gov', 'counters'),
    hotKey(limits.tenant, limits.customer, 'credits', 'pool', 'credits/'),
  ];
  const violations: string[] = [];
  let samples = 0;
  let skipped = 0;
  const read = async () => {
    const [counters, pool] = (await hot.run(sample, keys, [])) as [string[], string[]];
    const fields = new Map<string, bigint>();
    for (let i = 0; i + 1 < counters.length; i += 2) fields.set(counters[i]!, BigInt(counters[i + 1]!));
    return { get: (counter: string, field: string) => fields.get(`${counter}${RS}${field}`) ?? 0n, pool };
  };
  return {
    violations,
    get samples() {
      return samples;
    },
    get skipped() {
      return skipped;
    },
    start() {
      let running = true;
      const loop = (async () => {
        while (running) {
          await this.check().catch((error: unknown) => {
            if (error instanceof HotReplyError) throw error;
            skipped++;
          });
          await new Promise((resolve) => setTimeout(resolve, 5));
        }
      })();
      return async () => {
        running = false;
        await loop;
      };
    },
    async check() {
      const { get, pool } = await read();
      samples++;
      const team = limits.team.id;
      if (get(team, 'u') + get(team, 'h') > limits.team.limit) {
        violations.push(`team: used ${get(team, 'u')} + held ${get(team, 'h')} > ${limits.team.limit}`);
      }
      for (let i = 0; i < limits.agents; i++) {
        const agent = `${limits.perAgent.id}${US}agent=a${i}`;
        if (get(agent, 'u') + get(agent, 'h') > limits.perAgent.limit)
          violations.push(`a${i}: over its budget`);
        if (get(`${limits.inFlight.id}${US}agent=a${i}`, 'h') > limits.inFlight.limit) {
          violations.push(`a${i}: more than ${limits.inFlight.limit / 1_000_000n} in flight`);
        }
      }
      let remaining = 0n;
      let held = 0n;
      for (let i = 0; i + 1 < pool.length; i += 2) {
        if (pool[i]!.startsWith('r:')) {
          const r = BigInt(pool[i + 1]!);
          if (r < 0n) violations.push(`grant ${pool[i]} below zero`);
          remaining += r;
        }
        if (pool[i] === 'held') held = BigInt(pool[i + 1]!);
      }
      if (limits.pool - remaining + held > limits.pool) violations.push('pool: debits + holds > granted');
    },
    async teamUsed() {
      return (await read()).get(limits.team.id, 'u');
    },
  };
}
