/**
 * The embedded hot state against Redis, step by step: a random sequence of commands and of
 * the kind of scripts the gate runs (a counter with a limit, a token bucket, hold and settle)
 * over three keys of one customer must give identical replies and identical errors on both.
 * Keys collide across types on purpose, so WRONGTYPE paths are exercised as often as the happy
 * ones. TTLs are long and never read back, so nothing depends on the clock.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { type HotReply, HotReplyError, type HotScript, type HotState } from '../src/hot/index.ts';
import { freshEmbeddedHotState, freshRedisHotState } from '../src/testing/hot.ts';

type Arg = string | number;
type Step =
  | { kind: 'call'; argv: [string, ...Arg[]] }
  | { kind: 'script'; script: HotScript; keys: string[]; args: Arg[] };

const limiter: HotScript = {
  name: 'equivalence.limiter',
  lua: `local current = tonumber(redis.call('GET', KEYS[1]) or '0')
if current == nil then return redis.error_reply('ERR counter is not a number') end
local limit, cost = tonumber(ARGV[1]), tonumber(ARGV[2])
if current + cost > limit then
  return {0, current}
end
local now = redis.call('INCRBY', KEYS[1], cost)
if now == cost then redis.call('PEXPIRE', KEYS[1], ARGV[3]) end
return {1, now}
`,
};

const tokenBucket: HotScript = {
  name: 'equivalence.token-bucket',
  lua: `local capacity, rate = tonumber(ARGV[1]), tonumber(ARGV[2])
local now, cost = tonumber(ARGV[3]), tonumber(ARGV[4])
local state = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(state[1]) or capacity
local ts = tonumber(state[2]) or now
if now > ts then
  tokens = math.min(capacity, tokens + math.floor((now - ts) * rate / 1000))
  ts = now
end
if tokens < cost then
  return {0, tokens}
end
tokens = tokens - cost
redis.call('HSET', KEYS[1], 'tokens', tokens, 'ts', ts)
return {1, tokens}
`,
};

const hold: HotScript = {
  name: 'equivalence.hold',
  lua: `local existing = redis.call('HGET', KEYS[2], ARGV[1])
if existing then return {2, tonumber(existing)} end
local balance = tonumber(redis.call('HGET', KEYS[1], 'balance') or '0')
local held = tonumber(redis.call('HGET', KEYS[1], 'held') or '0')
if balance == nil or held == nil then return redis.error_reply('ERR corrupt pool') end
local amount = tonumber(ARGV[2])
if balance - held < amount then
  return {0, balance - held}
end
redis.call('HINCRBY', KEYS[1], 'held', amount)
redis.call('HSET', KEYS[2], ARGV[1], amount)
return {1, balance - held - amount}
`,
};

const settle: HotScript = {
  name: 'equivalence.settle',
  lua: `local amount = redis.call('HGET', KEYS[2], ARGV[1])
if not amount then return redis.error_reply('ERR unknown hold') end
amount = tonumber(amount)
-- Validate rather than let Lua raise: 5.1 and 5.4 word runtime errors differently.
if amount == nil then return redis.error_reply('ERR corrupt hold') end
local actual = math.min(tonumber(ARGV[2]), amount)
-- 0 - x, never -x: on Redis's Lua 5.1, -0 is a double sent as '-0', which is no integer.
redis.call('HINCRBY', KEYS[1], 'held', 0 - amount)
redis.call('HINCRBY', KEYS[1], 'balance', 0 - actual)
redis.call('HDEL', KEYS[2], ARGV[1])
return {actual, amount - actual}
`,
};

const key = fc.constantFrom('{t:c}:a', '{t:c}:b', '{t:c}:c');
// Values stay far below 2^53: above it Lua 5.1 (doubles) and 5.4 (int64) do different arithmetic.
const value = fc.constantFrom('0', '1', '7', '-3', '40', 'x', '1.5', '');
const integer = fc.oneof(
  { weight: 4, arbitrary: fc.integer({ min: -5, max: 12 }) },
  { weight: 1, arbitrary: fc.constantFrom('1.5', 'x') },
);
const field = fc.constantFrom('f', 'g', 'balance', 'held', 'tokens', 'ts', 'h1');
const member = fc.constantFrom('m1', 'm2', 'm3', '7', '8');
const score = fc.oneof(
  { weight: 5, arbitrary: fc.integer({ min: -3, max: 5 }) },
  { weight: 1, arbitrary: fc.constantFrom('+inf', '-inf', 'x') },
);
const bound = fc.oneof(
  { weight: 4, arbitrary: fc.integer({ min: -3, max: 5 }).map(String) },
  { weight: 2, arbitrary: fc.integer({ min: -3, max: 5 }).map((n) => `(${n}`) },
  { weight: 1, arbitrary: fc.constantFrom('-inf', '+inf', 'x') },
);

function command<T extends unknown[]>(
  name: string,
  ...parts: { [K in keyof T]: fc.Arbitrary<T[K]> }
): fc.Arbitrary<Step> {
  return fc.tuple(...parts).map((values) => ({ kind: 'call', argv: [name, ...(values as Arg[][]).flat()] }));
}

const one = <T>(arbitrary: fc.Arbitrary<T>) => arbitrary.map((v) => [v]);
const optional = (words: Arg[]) => fc.constantFrom([] as Arg[], words);

const commandStep: fc.Arbitrary<Step> = fc.oneof(
  // strings and keys
  command('GET', one(key)),
  command(
    'SET',
    one(key),
    one(value),
    fc.subarray(['NX', 'XX', 'GET', 'KEEPTTL']),
    fc.constantFrom([], ['EX', 1000], ['PX', 1_000_000], ['EX', 0]),
  ),
  command('INCR', one(key)),
  command('DECR', one(key)),
  command('INCRBY', one(key), one(integer)),
  command('DECRBY', one(key), one(integer)),
  command('MGET', one(key), one(key)),
  command('DEL', one(key), optional(['{t:c}:b'])),
  command('EXISTS', one(key), one(key)),
  command('TYPE', one(key)),
  command('PERSIST', one(key)),
  command('EXPIRE', one(key), fc.constantFrom([1000], [2000], [-1]), fc.subarray(['NX', 'XX', 'GT', 'LT'])),
  command('PEXPIRE', one(key), fc.constantFrom([1_000_000], [-5])),
  // hashes
  command('HSET', one(key), one(field), one(value), fc.constantFrom([], ['g', '2'], ['g'])),
  command('HSETNX', one(key), one(field), one(value)),
  command('HGET', one(key), one(field)),
  command('HDEL', one(key), one(field), optional(['g'])),
  command('HGETALL', one(key)),
  command('HINCRBY', one(key), one(field), one(integer)),
  command('HMGET', one(key), one(field), one(field)),
  command('HEXISTS', one(key), one(field)),
  command('HLEN', one(key)),
  command('HKEYS', one(key)),
  command('HVALS', one(key)),
  // sorted sets
  command(
    'ZADD',
    one(key),
    fc.subarray(['NX', 'XX', 'GT', 'LT', 'CH', 'INCR']),
    one(score),
    one(member),
    fc.constantFrom([], [2, 'm2']),
  ),
  command('ZREM', one(key), one(member)),
  command('ZSCORE', one(key), one(member)),
  command('ZCARD', one(key)),
  command(
    'ZRANGEBYSCORE',
    one(key),
    one(bound),
    one(bound),
    optional(['WITHSCORES']),
    fc.constantFrom([], ['LIMIT', 0, 2], ['LIMIT', 1, -1], ['LIMIT', -1, 2]),
  ),
  command('ZREMRANGEBYSCORE', one(key), one(bound), one(bound)),
  command('ZCOUNT', one(key), one(bound), one(bound)),
  command(
    'ZRANGE',
    one(key),
    one(fc.integer({ min: -4, max: 4 })),
    one(fc.integer({ min: -4, max: 4 })),
    optional(['WITHSCORES']),
  ),
  // sets
  command('SADD', one(key), one(member), fc.constantFrom([], ['m2'], ['9'])),
  command('SREM', one(key), one(member)),
  command('SISMEMBER', one(key), one(member)),
  command('SMEMBERS', one(key)),
  command('SCARD', one(key)),
);

const scriptStep: fc.Arbitrary<Step> = fc.oneof(
  fc.tuple(key, fc.integer({ min: 0, max: 20 }), fc.integer({ min: 1, max: 6 })).map(
    ([k, limit, cost]): Step => ({
      kind: 'script',
      script: limiter,
      keys: [k],
      args: [limit, cost, 60_000],
    }),
  ),
  fc
    .tuple(
      key,
      fc.integer({ min: 1, max: 10 }),
      fc.integer({ min: 0, max: 5000 }),
      fc.integer({ min: 1, max: 4 }),
    )
    .map(
      ([k, capacity, now, cost]): Step => ({
        kind: 'script',
        script: tokenBucket,
        keys: [k],
        args: [capacity, 1000, now, cost],
      }),
    ),
  fc.tuple(key, key, fc.constantFrom('h1', 'h2', 'h3'), fc.integer({ min: 1, max: 30 })).map(
    ([pool, holds, id, amount]): Step => ({
      kind: 'script',
      script: hold,
      keys: [pool, holds],
      args: [id, amount],
    }),
  ),
  fc.tuple(key, key, fc.constantFrom('h1', 'h2', 'h3'), fc.integer({ min: 0, max: 30 })).map(
    ([pool, holds, id, actual]): Step => ({
      kind: 'script',
      script: settle,
      keys: [pool, holds],
      args: [id, actual],
    }),
  ),
  key.map((pool): Step => ({ kind: 'call', argv: ['HINCRBY', pool, 'balance', 25] })),
);

const steps = fc.array(
  fc.oneof({ weight: 3, arbitrary: commandStep }, { weight: 2, arbitrary: scriptStep }),
  {
    minLength: 5,
    maxLength: 40,
  },
);

type Outcome = { reply: HotReply } | { error: string };

async function apply(hot: HotState, step: Step): Promise<Outcome> {
  try {
    const reply =
      step.kind === 'call' ? await hot.call(...step.argv) : await hot.run(step.script, step.keys, step.args);
    // Set order is the server's business (hash order); compare members as a set.
    if (step.kind === 'call' && step.argv[0] === 'SMEMBERS' && Array.isArray(reply))
      return { reply: [...reply].sort() };
    return { reply };
  } catch (error) {
    if (error instanceof HotReplyError) return { error: error.message };
    throw error;
  }
}

describe('HotState equivalence: embedded vs Redis', () => {
  it('answers a random sequence of commands and scripts identically, step by step', async () => {
    await fc.assert(
      fc.asyncProperty(steps, async (sequence) => {
        const redis = await freshRedisHotState();
        const embedded = await freshEmbeddedHotState();
        try {
          for (const [index, step] of sequence.entries()) {
            const expected = await apply(redis, step);
            const actual = await apply(embedded, step);
            expect({ index, step: describeStep(step), outcome: actual }).toEqual({
              index,
              step: describeStep(step),
              outcome: expected,
            });
          }
        } finally {
          await Promise.all([redis.cleanup(), embedded.close()]);
        }
      }),
      // Each run opens a Redis connection and a Lua VM: 50 runs keep this under a few seconds
      // alone, and the timeout leaves room for a loaded CI machine.
      { numRuns: 50 },
    );
  }, 120_000);
});

function describeStep(step: Step): string {
  return step.kind === 'call'
    ? step.argv.join(' ')
    : `${step.script.name} [${step.keys.join(' ')}] [${step.args.join(' ')}]`;
}
