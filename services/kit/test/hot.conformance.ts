/**
 * The HotState conformance suite: every adapter passes it unchanged, replies and error texts
 * included, which is what lets the gate's scripts be developed on the embedded adapter and run
 * on Redis. Each test gets a fresh adapter (a new key prefix on Redis).
 */
import { createHash } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { HotReplyError, type HotScript, type HotState, hotKey } from '../src/hot/index.ts';

export interface OpenedHotState {
  hot: HotState;
  /** The key prefix the adapter applies (scripts see it in KEYS). */
  prefix: string;
  cleanup: () => Promise<void>;
  /** Drops the server's script cache (SCRIPT FLUSH); only where there is one. */
  flushScripts?: () => Promise<void>;
}

const WRONGTYPE = 'WRONGTYPE Operation against a key holding the wrong kind of value';
const NOT_INTEGER = 'ERR value is not an integer or out of range';

function sha1(text: string): string {
  return createHash('sha1').update(text).digest('hex');
}

function script(name: string, lua: string): HotScript {
  return { name, lua };
}

/** The error Redis sends for a script that raised at `line`. */
function raisedAt(lua: string, message: string, line: number): string {
  return `${message} script: ${sha1(lua)}, on @user_script:${line}.`;
}

async function expectReplyError(pending: Promise<unknown>, message: string): Promise<void> {
  const error = await pending.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(HotReplyError);
  expect((error as Error).message).toBe(message);
}

/** Reserve against a balance: check, then hold, in one script. The gate's core move. */
export const reserveScript = script(
  'conformance.reserve',
  `local balance = tonumber(redis.call('HGET', KEYS[1], 'balance') or '0')
local held = tonumber(redis.call('HGET', KEYS[1], 'held') or '0')
local amount = tonumber(ARGV[2])
if balance - held < amount then
  return {0, balance - held}
end
redis.call('HINCRBY', KEYS[1], 'held', amount)
redis.call('HSET', KEYS[2], ARGV[1], amount)
return {1, balance - held - amount}
`,
);

export function hotConformance(name: string, open: () => Promise<OpenedHotState>): void {
  describe(`HotState conformance: ${name}`, () => {
    let opened: OpenedHotState;
    let hot: HotState;
    const call = (command: string, ...args: (string | number | bigint)[]) => hot.call(command, ...args);
    const run = (s: HotScript, keys: string[] = [], args: (string | number | bigint)[] = []) =>
      hot.run(s, keys, args);

    beforeEach(async () => {
      opened = await open();
      hot = opened.hot;
    });
    afterEach(() => opened.cleanup());

    describe('strings', () => {
      it('gets, sets and reports a missing key as null', async () => {
        expect(await call('GET', 'k')).toBeNull();
        expect(await call('SET', 'k', 'v')).toBe('OK');
        expect(await call('GET', 'k')).toBe('v');
        expect(await call('SET', 'n', 42)).toBe('OK');
        expect(await call('GET', 'n')).toBe('42');
        expect(await call('SET', 'b', 9007199254740993n)).toBe('OK');
        expect(await call('GET', 'b')).toBe('9007199254740993');
        expect(await call('MGET', 'k', 'missing', 'n')).toEqual(['v', null, '42']);
      });

      it('honours NX, XX and GET', async () => {
        expect(await call('SET', 'k', 'a', 'XX')).toBeNull();
        expect(await call('SET', 'k', 'a', 'NX')).toBe('OK');
        expect(await call('SET', 'k', 'b', 'NX')).toBeNull();
        expect(await call('SET', 'k', 'b', 'XX')).toBe('OK');
        expect(await call('SET', 'k', 'c', 'GET')).toBe('b');
        expect(await call('SET', 'k', 'd', 'NX', 'GET')).toBe('c');
        expect(await call('GET', 'k')).toBe('c');
        expect(await call('SET', 'fresh', 'x', 'GET')).toBeNull();
      });

      it('sets a TTL with PX and EX, keeps it with KEEPTTL, clears it on a plain SET', async () => {
        await call('SET', 'k', 'v', 'PX', 60_000);
        expect(await call('PTTL', 'k')).toBeGreaterThan(59_000);
        await call('SET', 'k', 'w', 'KEEPTTL');
        expect(await call('PTTL', 'k')).toBeGreaterThan(59_000);
        await call('SET', 'k', 'v', 'EX', 100);
        expect(await call('TTL', 'k')).toBe(100);
        await call('SET', 'k', 'v');
        expect(await call('TTL', 'k')).toBe(-1);
      });

      it('rejects bad SET options with Redis errors', async () => {
        await expectReplyError(call('SET', 'k', 'v', 'NX', 'XX'), 'ERR syntax error');
        await expectReplyError(call('SET', 'k', 'v', 'EX', 10, 'PX', 10), 'ERR syntax error');
        await expectReplyError(call('SET', 'k', 'v', 'KEEPTTL', 'EX', 5), 'ERR syntax error');
        await expectReplyError(call('SET', 'k', 'v', 'PX'), 'ERR syntax error');
        await expectReplyError(call('SET', 'k', 'v', 'EX', 0), "ERR invalid expire time in 'set' command");
        await expectReplyError(call('SET', 'k', 'v', 'PX', -5), "ERR invalid expire time in 'set' command");
        await expectReplyError(call('SET', 'k', 'v', 'EX', 'soon'), NOT_INTEGER);
        await expectReplyError(call('SET', 'k'), "ERR wrong number of arguments for 'set' command");
      });

      it('counts with INCR, INCRBY, DECR and DECRBY, keeping the TTL', async () => {
        expect(await call('INCR', 'c')).toBe(1);
        expect(await call('INCRBY', 'c', 10)).toBe(11);
        expect(await call('DECRBY', 'c', 20)).toBe(-9);
        expect(await call('DECR', 'c')).toBe(-10);
        expect(await call('GET', 'c')).toBe('-10');
        await call('PEXPIRE', 'c', 60_000);
        await call('INCR', 'c');
        expect(await call('PTTL', 'c')).toBeGreaterThan(59_000);
      });

      it('refuses to count what is not an int64', async () => {
        for (const value of ['abc', '1.5', ' 1', '+1', '01', '-0', '']) {
          await call('SET', 'c', value);
          await expectReplyError(call('INCR', 'c'), NOT_INTEGER);
        }
        await expectReplyError(call('INCRBY', 'c', '1.5'), NOT_INTEGER);
        await call('SET', 'c', '9223372036854775807');
        await expectReplyError(call('INCR', 'c'), 'ERR increment or decrement would overflow');
        await call('SET', 'c', '-9223372036854775808');
        await expectReplyError(call('DECR', 'c'), 'ERR increment or decrement would overflow');
        await expectReplyError(call('DECRBY', 'c', '-9223372036854775808'), 'ERR decrement would overflow');
      });
    });

    describe('keys', () => {
      it('deletes and counts keys of any type', async () => {
        await call('SET', 'a', '1');
        await call('HSET', 'b', 'f', '1');
        await call('ZADD', 'c', 1, 'm');
        await call('SADD', 'd', 'm');
        expect(await call('EXISTS', 'a', 'a', 'b', 'missing')).toBe(3);
        expect(await call('DEL', 'a', 'a', 'b', 'missing')).toBe(2);
        expect(await call('EXISTS', 'a', 'b', 'c', 'd')).toBe(2);
      });

      it('names the type, or none', async () => {
        await call('SET', 's', '1');
        await call('HSET', 'h', 'f', '1');
        await call('ZADD', 'z', 1, 'm');
        await call('SADD', 'set', 'm');
        const types = await Promise.all(['s', 'h', 'z', 'set', 'missing'].map((k) => call('TYPE', k)));
        expect(types).toEqual(['string', 'hash', 'zset', 'set', 'none']);
      });

      it('expires with EXPIRE and PEXPIRE, reports TTL and PTTL, and persists', async () => {
        expect(await call('PTTL', 'k')).toBe(-2);
        expect(await call('TTL', 'k')).toBe(-2);
        expect(await call('EXPIRE', 'k', 10)).toBe(0);
        await call('SET', 'k', 'v');
        expect(await call('PTTL', 'k')).toBe(-1);
        expect(await call('EXPIRE', 'k', 10)).toBe(1);
        expect(await call('TTL', 'k')).toBe(10);
        expect(await call('PEXPIRE', 'k', 20_000)).toBe(1);
        const pttl = await call('PTTL', 'k');
        expect(pttl).toBeGreaterThan(19_000);
        expect(pttl).toBeLessThanOrEqual(20_000);
        expect(await call('PERSIST', 'k')).toBe(1);
        expect(await call('PERSIST', 'k')).toBe(0);
        expect(await call('TTL', 'k')).toBe(-1);
      });

      it('applies EXPIRE NX, XX, GT and LT like Redis', async () => {
        await call('SET', 'k', 'v');
        expect(await call('EXPIRE', 'k', 100, 'XX')).toBe(0);
        expect(await call('EXPIRE', 'k', 100, 'GT')).toBe(0);
        expect(await call('EXPIRE', 'k', 100, 'NX')).toBe(1);
        expect(await call('EXPIRE', 'k', 200, 'NX')).toBe(0);
        expect(await call('EXPIRE', 'k', 50, 'GT')).toBe(0);
        expect(await call('EXPIRE', 'k', 200, 'GT')).toBe(1);
        expect(await call('EXPIRE', 'k', 300, 'LT')).toBe(0);
        expect(await call('EXPIRE', 'k', 150, 'LT', 'XX')).toBe(1);
        expect(await call('TTL', 'k')).toBe(150);
        await expectReplyError(
          call('EXPIRE', 'k', 1, 'NX', 'XX'),
          'ERR NX and XX, GT or LT options at the same time are not compatible',
        );
        await expectReplyError(
          call('EXPIRE', 'k', 1, 'GT', 'LT'),
          'ERR GT and LT options at the same time are not compatible',
        );
        await expectReplyError(call('EXPIRE', 'k', 1, 'SOON'), 'ERR Unsupported option SOON');
        await expectReplyError(call('EXPIRE', 'k', 'later'), NOT_INTEGER);
      });

      it('deletes a key given a TTL in the past', async () => {
        await call('SET', 'k', 'v');
        expect(await call('PEXPIRE', 'k', -1)).toBe(1);
        expect(await call('EXISTS', 'k')).toBe(0);
        await call('SET', 'k', 'v');
        expect(await call('EXPIRE', 'k', 0)).toBe(1);
        expect(await call('GET', 'k')).toBeNull();
      });

      it('makes a key with a PX deadline vanish once it passes', async () => {
        await call('SET', 's', 'v', 'PX', 40);
        await call('HSET', 'h', 'f', 'v');
        await call('PEXPIRE', 'h', 40);
        await call('ZADD', 'z', 1, 'm');
        await call('PEXPIRE', 'z', 40);
        await sleep(120);
        expect(await call('GET', 's')).toBeNull();
        expect(await call('HGETALL', 'h')).toEqual([]);
        expect(await call('EXISTS', 's', 'h', 'z')).toBe(0);
        expect(await call('PTTL', 's')).toBe(-2);
        expect(await call('TYPE', 'z')).toBe('none');
        // A script sees the same.
        expect(
          await run(script('conformance.expired', "return redis.call('GET', KEYS[1])"), ['s']),
        ).toBeNull();
        // And a new value under the key starts without a TTL.
        expect(await call('INCR', 's')).toBe(1);
        expect(await call('TTL', 's')).toBe(-1);
      });
    });

    describe('hashes', () => {
      it('sets, reads and deletes fields', async () => {
        expect(await call('HSET', 'h', 'a', '1', 'b', '2')).toBe(2);
        expect(await call('HSET', 'h', 'a', '10', 'c', '3')).toBe(1);
        expect(await call('HGET', 'h', 'a')).toBe('10');
        expect(await call('HGET', 'h', 'missing')).toBeNull();
        expect(await call('HSETNX', 'h', 'a', 'x')).toBe(0);
        expect(await call('HSETNX', 'h', 'd', '4')).toBe(1);
        expect(await call('HGETALL', 'h')).toEqual(['a', '10', 'b', '2', 'c', '3', 'd', '4']);
        expect(await call('HKEYS', 'h')).toEqual(['a', 'b', 'c', 'd']);
        expect(await call('HVALS', 'h')).toEqual(['10', '2', '3', '4']);
        expect(await call('HMGET', 'h', 'b', 'missing', 'd')).toEqual(['2', null, '4']);
        expect(await call('HEXISTS', 'h', 'b')).toBe(1);
        expect(await call('HEXISTS', 'h', 'z')).toBe(0);
        expect(await call('HLEN', 'h')).toBe(4);
        expect(await call('HDEL', 'h', 'a', 'b', 'missing')).toBe(2);
        expect(await call('HLEN', 'h')).toBe(2);
      });

      it('answers for a missing hash as for an empty one, and deletes a hash emptied', async () => {
        expect(await call('HGETALL', 'none')).toEqual([]);
        expect(await call('HMGET', 'none', 'a', 'b')).toEqual([null, null]);
        expect(await call('HLEN', 'none')).toBe(0);
        expect(await call('HDEL', 'none', 'a')).toBe(0);
        await call('HSET', 'h', 'a', '1');
        await call('HDEL', 'h', 'a');
        expect(await call('EXISTS', 'h')).toBe(0);
      });

      it('counts with HINCRBY and refuses non-integers', async () => {
        expect(await call('HINCRBY', 'h', 'n', 5)).toBe(5);
        expect(await call('HINCRBY', 'h', 'n', -7)).toBe(-2);
        await call('HSET', 'h', 's', 'abc');
        await expectReplyError(call('HINCRBY', 'h', 's', 1), 'ERR hash value is not an integer');
        await expectReplyError(call('HINCRBY', 'h', 'n', 'x'), NOT_INTEGER);
        await call('HSET', 'h', 'max', '9223372036854775807');
        await expectReplyError(call('HINCRBY', 'h', 'max', 1), 'ERR increment or decrement would overflow');
      });

      it('rejects an odd field list', async () => {
        await expectReplyError(
          call('HSET', 'h', 'a', '1', 'b'),
          "ERR wrong number of arguments for 'hset' command",
        );
        await expectReplyError(call('HSET', 'h', 'a'), "ERR wrong number of arguments for 'hset' command");
      });
    });

    describe('sorted sets', () => {
      beforeEach(async () => {
        await call('ZADD', 'z', 1, 'a', 2, 'b', 2, 'c', 3, 'd', 10, 'e');
      });

      it('adds, scores, counts and removes members', async () => {
        expect(await call('ZCARD', 'z')).toBe(5);
        expect(await call('ZSCORE', 'z', 'e')).toBe('10');
        expect(await call('ZSCORE', 'z', 'missing')).toBeNull();
        expect(await call('ZADD', 'z', 5, 'a', 6, 'f')).toBe(1);
        expect(await call('ZADD', 'z', 'CH', 7, 'a', 6, 'f', 1, 'g')).toBe(2);
        expect(await call('ZREM', 'z', 'a', 'g', 'missing')).toBe(2);
        expect(await call('ZCARD', 'z')).toBe(5);
        expect(await call('ZADD', 'z', '-inf', 'low', '+inf', 'high')).toBe(2);
        expect(await call('ZSCORE', 'z', 'low')).toBe('-inf');
        expect(await call('ZSCORE', 'z', 'high')).toBe('inf');
      });

      it('applies NX, XX, GT, LT and INCR', async () => {
        expect(await call('ZADD', 'z', 'NX', 100, 'a', 4, 'new')).toBe(1);
        expect(await call('ZSCORE', 'z', 'a')).toBe('1');
        expect(await call('ZADD', 'z', 'XX', 100, 'a', 4, 'other')).toBe(0);
        expect(await call('ZSCORE', 'z', 'a')).toBe('100');
        expect(await call('ZSCORE', 'z', 'other')).toBeNull();
        expect(await call('ZADD', 'z', 'GT', 'CH', 50, 'a', 20, 'b')).toBe(1);
        expect(await call('ZADD', 'z', 'LT', 'CH', 50, 'a', 30, 'b')).toBe(1);
        expect(await call('ZSCORE', 'z', 'a')).toBe('50');
        expect(await call('ZADD', 'z', 'INCR', 5, 'a')).toBe('55');
        expect(await call('ZADD', 'z', 'INCR', 'NX', 5, 'a')).toBeNull();
        expect(await call('ZADD', 'z', 'INCR', 'XX', 1, 'nobody')).toBeNull();
        expect(await call('ZADD', 'missing', 'XX', 1, 'm')).toBe(0);
        expect(await call('EXISTS', 'missing')).toBe(0);
      });

      it('rejects bad ZADD arguments with Redis errors', async () => {
        await expectReplyError(call('ZADD', 'z', 'abc', 'm'), 'ERR value is not a valid float');
        await expectReplyError(
          call('ZADD', 'z', 'NX', 'XX', 1, 'm'),
          'ERR XX and NX options at the same time are not compatible',
        );
        await expectReplyError(
          call('ZADD', 'z', 'GT', 'NX', 1, 'm'),
          'ERR GT, LT, and/or NX options at the same time are not compatible',
        );
        await expectReplyError(
          call('ZADD', 'z', 'INCR', 1, 'a', 2, 'b'),
          'ERR INCR option supports a single increment-element pair',
        );
        await expectReplyError(call('ZADD', 'z', 'NX', 1), 'ERR syntax error');
      });

      it('ranges by score with exclusive bounds, infinities, WITHSCORES and LIMIT', async () => {
        expect(await call('ZRANGEBYSCORE', 'z', 2, 3)).toEqual(['b', 'c', 'd']);
        expect(await call('ZRANGEBYSCORE', 'z', '(2', 3)).toEqual(['d']);
        expect(await call('ZRANGEBYSCORE', 'z', '-inf', '(3')).toEqual(['a', 'b', 'c']);
        expect(await call('ZRANGEBYSCORE', 'z', 3, '+inf', 'WITHSCORES')).toEqual(['d', '3', 'e', '10']);
        expect(await call('ZRANGEBYSCORE', 'z', '-inf', '+inf', 'LIMIT', 1, 2)).toEqual(['b', 'c']);
        expect(await call('ZRANGEBYSCORE', 'z', '-inf', '+inf', 'LIMIT', 3, -1)).toEqual(['d', 'e']);
        expect(await call('ZRANGEBYSCORE', 'z', '-inf', '+inf', 'WITHSCORES', 'LIMIT', 4, 10)).toEqual([
          'e',
          '10',
        ]);
        expect(await call('ZRANGEBYSCORE', 'z', 5, 1)).toEqual([]);
        expect(await call('ZRANGEBYSCORE', 'missing', '-inf', '+inf')).toEqual([]);
        await expectReplyError(call('ZRANGEBYSCORE', 'z', 'low', 1), 'ERR min or max is not a float');
        await expectReplyError(call('ZRANGEBYSCORE', 'z', 0, 1, 'LIMIT', 0), 'ERR syntax error');
        await expectReplyError(call('ZRANGEBYSCORE', 'z', 0, 1, 'LIMIT', 'a', 'b'), NOT_INTEGER);
      });

      it('counts and removes by score', async () => {
        expect(await call('ZCOUNT', 'z', 2, '+inf')).toBe(4);
        expect(await call('ZCOUNT', 'z', '(2', '(10')).toBe(1);
        expect(await call('ZREMRANGEBYSCORE', 'z', '-inf', 2)).toBe(3);
        expect(await call('ZRANGEBYSCORE', 'z', '-inf', '+inf')).toEqual(['d', 'e']);
        expect(await call('ZREMRANGEBYSCORE', 'z', '-inf', '+inf')).toBe(2);
        expect(await call('EXISTS', 'z')).toBe(0);
        await expectReplyError(call('ZCOUNT', 'z', 'a', 'b'), 'ERR min or max is not a float');
      });

      it('ranges by rank with negative indexes', async () => {
        expect(await call('ZRANGE', 'z', 0, -1)).toEqual(['a', 'b', 'c', 'd', 'e']);
        expect(await call('ZRANGE', 'z', -2, -1, 'WITHSCORES')).toEqual(['d', '3', 'e', '10']);
        expect(await call('ZRANGE', 'z', 1, 2)).toEqual(['b', 'c']);
        expect(await call('ZRANGE', 'z', 3, 100)).toEqual(['d', 'e']);
        expect(await call('ZRANGE', 'z', 4, 2)).toEqual([]);
        expect(await call('ZRANGE', 'z', -100, 0)).toEqual(['a']);
        await expectReplyError(call('ZRANGE', 'z', 0, 'x'), NOT_INTEGER);
      });
    });

    describe('sets', () => {
      it('adds, tests, lists, counts and removes members', async () => {
        expect(await call('SADD', 's', 'b', 'a', 'c', 'a')).toBe(3);
        expect(await call('SADD', 's', 'a', 'd')).toBe(1);
        expect(await call('SISMEMBER', 's', 'a')).toBe(1);
        expect(await call('SISMEMBER', 's', 'z')).toBe(0);
        expect(await call('SCARD', 's')).toBe(4);
        // Set order is Redis's business (hash order); compare as sets.
        expect(((await call('SMEMBERS', 's')) as string[]).sort()).toEqual(['a', 'b', 'c', 'd']);
        expect(await call('SREM', 's', 'a', 'z')).toBe(1);
        expect(await call('SREM', 's', 'b', 'c', 'd')).toBe(3);
        expect(await call('EXISTS', 's')).toBe(0);
        expect(await call('SMEMBERS', 's')).toEqual([]);
      });

      it('lists an all-integer set in numeric order, as Redis does for an intset', async () => {
        await call('SADD', 's', 10, 3, -1, 2);
        expect(await call('SMEMBERS', 's')).toEqual(['-1', '2', '3', '10']);
      });
    });

    describe('type errors', () => {
      it('answers WRONGTYPE for an operation on the wrong kind of value', async () => {
        await call('SET', 's', 'v');
        await call('HSET', 'h', 'f', 'v');
        for (const [command, ...args] of [
          ['HGET', 's', 'f'],
          ['HSET', 's', 'f', 'v'],
          ['ZADD', 's', 1, 'm'],
          ['SADD', 's', 'm'],
          ['ZRANGEBYSCORE', 's', 0, 1],
          ['GET', 'h'],
          ['INCR', 'h'],
          ['SET', 'h', 'v', 'GET'],
          ['SMEMBERS', 'h'],
        ] as const) {
          await expectReplyError(call(command, ...args), WRONGTYPE);
        }
        // SET without GET overwrites whatever was there; MGET answers null for a non-string.
        expect(await call('MGET', 's', 'h')).toEqual(['v', null]);
        expect(await call('SET', 'h', 'v')).toBe('OK');
        expect(await call('TYPE', 'h')).toBe('string');
      });

      it('checks arguments before the type, as Redis parses before it looks the key up', async () => {
        await call('HSET', 'h', 'f', 'v');
        await expectReplyError(call('INCRBY', 'h', 'x'), NOT_INTEGER);
        await expectReplyError(call('ZADD', 'h', 'x', 'm'), 'ERR value is not a valid float');
        await expectReplyError(call('ZCOUNT', 'h', 'x', 1), 'ERR min or max is not a float');
      });
    });

    describe('server', () => {
      it('answers PING, TIME and ping()', async () => {
        expect(await call('PING')).toBe('PONG');
        expect(await call('PING', 'hello')).toBe('hello');
        await hot.ping();
        const time = (await call('TIME')) as [string, string];
        expect(time).toHaveLength(2);
        expect(Math.abs(Number(time[0]) - Date.now() / 1000)).toBeLessThan(60);
        expect(Number(time[1])).toBeLessThan(1_000_000);
      });

      it.runIf(name.toLowerCase().includes('embedded'))('counts and flushes its keys', async () => {
        await call('SET', 'a', '1');
        await call('HSET', 'b', 'f', '1');
        await call('SET', 'gone', '1', 'PX', 1);
        await sleep(5);
        expect(await call('DBSIZE')).toBe(2);
        expect(await call('FLUSHALL')).toBe('OK');
        expect(await call('DBSIZE')).toBe(0);
      });
    });

    describe('scripts: replies', () => {
      const reply = (lua: string) => run(script(`conformance.reply.${sha1(lua)}`, lua));

      it('converts Lua values as Redis does', async () => {
        expect(await reply("return {1, 2.7, -3.7, 'x', {4, {5, {}}}, nil, 6}")).toEqual([
          1,
          2,
          -3,
          'x',
          [4, [5, []]],
        ]);
        expect(await reply('return 3.7')).toBe(3);
        expect(await reply('return -3.7')).toBe(-3);
        expect(await reply("return '3.7'")).toBe('3.7');
        expect(await reply('return {true, false, 1}')).toEqual([1, null, 1]);
        expect(await reply('return true')).toBe(1);
        expect(await reply('return false')).toBeNull();
        expect(await reply('return nil')).toBeNull();
        expect(await reply('return')).toBeNull();
        expect(await reply('return {a = 1, b = 2}')).toEqual([]);
        expect(await reply('return {1, 2, a = 3}')).toEqual([1, 2]);
        // Exact below 2^53; ioredis 6 mis-parses integer replies within ~60 of 2^53 (its decoder
        // computes number * 10 + byte - 48 left to right), so money stays far below that.
        expect(await reply('return 1125899906842625')).toBe(1125899906842625);
      });

      it('turns status and error tables into a status string and a rejection', async () => {
        expect(await reply("return redis.status_reply('FINE')")).toBe('FINE');
        expect(await reply("return {ok = 'ALSO'}")).toBe('ALSO');
        await expectReplyError(reply("return redis.error_reply('MYCODE went wrong')"), 'MYCODE went wrong');
        await expectReplyError(reply("return redis.error_reply('-DASH stripped')"), 'DASH stripped');
        await expectReplyError(reply("return {err = 'raw table'}"), 'raw table');
        await expectReplyError(reply("return {ok = 'x', err = 'err wins'}"), 'err wins');
        expect(await reply('return {err = 5}')).toEqual([]);
      });

      it('hands Redis replies to Lua typed as Redis does', async () => {
        const lua = `redis.call('SET', KEYS[1], '12')
local n = redis.call('INCR', KEYS[1])
local s = redis.call('GET', KEYS[1])
local missing = redis.call('GET', KEYS[2])
local status = redis.call('SET', KEYS[1], 'x')
local list = redis.call('HMGET', KEYS[3], 'a', 'b')
return {type(n), n + 1, type(s), s .. '', tostring(missing), type(status), status.ok, #list, tostring(list[1])}`;
        expect(await run(script('conformance.types', lua), ['{c}:n', '{c}:missing', '{c}:h'])).toEqual([
          'number',
          14,
          'string',
          '13',
          'false',
          'table',
          'OK',
          2,
          'false',
        ]);
      });

      it('passes KEYS with the prefix and ARGV as strings', async () => {
        const lua = 'return {KEYS[1], #KEYS, ARGV[1], type(ARGV[2]), ARGV[2], ARGV[3], #ARGV}';
        expect(await run(script('conformance.argv', lua), ['k'], ['a', 42, 9007199254740993n])).toEqual([
          `${opened.prefix}k`,
          1,
          'a',
          'string',
          '42',
          '9007199254740993',
          3,
        ]);
      });

      it('passes integer Lua numbers to redis.call as integers, others as %.17g', async () => {
        const lua = `redis.call('SET', KEYS[1], 7)
redis.call('SET', KEYS[2], 10 / 4)
redis.call('SET', KEYS[3], math.floor(10 / 4))
return redis.call('MGET', KEYS[1], KEYS[2], KEYS[3])`;
        expect(await run(script('conformance.numbers', lua), ['{c}:a', '{c}:b', '{c}:c'])).toEqual([
          '7',
          '2.5',
          '2',
        ]);
      });

      it('encodes and decodes JSON with cjson', async () => {
        const lua = `local t = cjson.decode(ARGV[1])
return {cjson.encode({t.a, t.b[2], 'a/b', true}), type(t.n), tostring(t.n == cjson.null), t.a + 1}`;
        expect(await run(script('conformance.cjson', lua), [], ['{"a":1,"b":[1,2.5],"n":null}'])).toEqual([
          '[1,2.5,"a\\/b",true]',
          'userdata',
          'true',
          2,
        ]);
      });
    });

    describe('scripts: errors', () => {
      it('rejects with the same text for a failing redis.call, naming the line', async () => {
        const lua = `local x = 1
return redis.call('INCR', KEYS[1])`;
        await call('SET', 's', 'abc');
        await expectReplyError(run(script('conformance.incr', lua), ['s']), raisedAt(lua, NOT_INTEGER, 2));
        await call('HSET', 'h', 'f', 'v');
        await expectReplyError(run(script('conformance.incr', lua), ['h']), raisedAt(lua, WRONGTYPE, 2));
      });

      it('names the line inside a nested function', async () => {
        const lua = `local function bump(key)
  return redis.call('INCR', key)
end
return bump(KEYS[1])`;
        await call('SET', 's', 'abc');
        await expectReplyError(run(script('conformance.nested', lua), ['s']), raisedAt(lua, NOT_INTEGER, 2));
      });

      it('rejects for error() with a string, prefixing ERR and the position', async () => {
        const lua = "local a = 1\nerror('boom')";
        await expectReplyError(
          run(script('conformance.error', lua)),
          raisedAt(lua, 'ERR user_script:2: boom', 2),
        );
        const bare = "error('bare', 0)";
        await expectReplyError(run(script('conformance.error0', bare)), raisedAt(bare, 'ERR bare', 1));
      });

      it('rejects for error() with an error table, keeping its text', async () => {
        const lua = "error({err = 'LIMIT exceeded'})";
        await expectReplyError(run(script('conformance.errtable', lua)), raisedAt(lua, 'LIMIT exceeded', 1));
      });

      it('rejects for script mistakes the way Redis words them', async () => {
        const cases: [string, string][] = [
          [
            "return redis.call('GET', 'a', 'b')",
            'ERR Wrong number of args calling Redis command from script',
          ],
          ['return redis.call()', 'ERR Please specify at least one argument for this redis lib call'],
          [
            "return redis.call('SET', KEYS[1], {})",
            'ERR Lua redis lib command arguments must be strings or integers',
          ],
          ['x = 1', 'ERR user_script:1: Attempt to modify a readonly table'],
          [
            'return undefined_name',
            "ERR user_script:1: Script attempted to access nonexistent global variable 'undefined_name'",
          ],
          [
            'return os.time()',
            "ERR user_script:1: Script attempted to access nonexistent global variable 'os'",
          ],
          ['string.extra = 1', 'ERR user_script:1: Attempt to modify a readonly table'],
          [
            'return cjson.encode(function() end)',
            'ERR user_script:1: Cannot serialise function: type not supported',
          ],
          [
            "return cjson.decode('[1,2')",
            'ERR user_script:1: Expected comma or array end but found T_END at character 5',
          ],
        ];
        for (const [lua, message] of cases) {
          await expectReplyError(
            run(script(`conformance.mistake.${sha1(lua)}`, lua), ['k']),
            raisedAt(lua, message, 1),
          );
        }
      });

      it('catches errors with redis.pcall and pcall', async () => {
        await call('SET', 's', 'abc');
        const lua = `local caught = redis.pcall('INCR', KEYS[1])
local ok, message = pcall(redis.call, 'INCR', KEYS[1])
local ok2, raised = pcall(function() error({err = 'custom'}) end)
local ok3, text = pcall(function() error('plain') end)
return {type(caught), caught.err, tostring(ok), message, raised, text}`;
        expect(await run(script('conformance.pcall', lua), ['s'])).toEqual([
          'table',
          NOT_INTEGER,
          'false',
          NOT_INTEGER,
          'custom',
          'user_script:4: plain',
        ]);
      });

      it('returns a caught error table as an error reply', async () => {
        await call('SET', 's', 'abc');
        const lua = "return redis.pcall('INCR', KEYS[1])";
        await expectReplyError(run(script('conformance.pcall-return', lua), ['s']), NOT_INTEGER);
      });

      it('refuses Lua 5.4-only syntax on every adapter', async () => {
        const lua = 'return math.floor(7 / 2) + 7 // 2';
        await expect(run(script('conformance.floor-division', lua))).rejects.toThrow(
          "hot script 'conformance.floor-division' uses integer division '//' at line 1, which Redis's Lua 5.1 does not support",
        );
      });

      it('refuses a second, different source under a name already used', async () => {
        await run(script('conformance.twice', 'return 1'));
        await expect(run(script('conformance.twice', 'return 2'))).rejects.toThrow(
          "hot script 'conformance.twice' is defined twice with different sources",
        );
      });

      it('rejects for a script that does not compile', async () => {
        const error = await run(script('conformance.syntax', 'return (')).catch((e: unknown) => e);
        expect(error).toBeInstanceOf(HotReplyError);
        expect((error as Error).message).toMatch(
          /^ERR Error compiling script \(new function\): user_script:1: /,
        );
      });
    });

    describe('scripts: atomicity', () => {
      it('never overdraws a balance under 200 concurrent reservations', async () => {
        const pool = hotKey('acme', 'cus_1', 'pool');
        const holds = hotKey('acme', 'cus_1', 'holds');
        await call('HSET', pool, 'balance', 500, 'held', 0);
        const amounts = Array.from({ length: 200 }, (_, i) => 1 + ((i * 7) % 10));
        const replies = await Promise.all(
          amounts.map((amount, i) => run(reserveScript, [pool, holds], [`hold_${i}`, amount])),
        );
        const granted = replies.filter((r) => (r as number[])[0] === 1);
        const grantedTotal = amounts
          .filter((_, i) => (replies[i] as number[])[0] === 1)
          .reduce((a, b) => a + b, 0);
        expect(grantedTotal).toBeLessThanOrEqual(500);
        expect(grantedTotal).toBeGreaterThan(490);
        expect(await call('HGET', pool, 'held')).toBe(String(grantedTotal));
        expect(await call('HLEN', holds)).toBe(granted.length);
        // Every answer saw a consistent balance: what remained after it, never below zero.
        for (const r of replies) expect((r as number[])[1]).toBeGreaterThanOrEqual(0);
      });

      it('keeps applying a script after the server dropped its script cache', async (context) => {
        if (opened.flushScripts === undefined) return context.skip('no server-side script cache');
        const counter = script('conformance.counter', "return redis.call('INCR', KEYS[1])");
        expect(await run(counter, ['c'])).toBe(1);
        await opened.flushScripts();
        expect(await run(counter, ['c'])).toBe(2);
        await opened.flushScripts();
        const [a, b] = await Promise.all([run(counter, ['c']), run(counter, ['c'])]);
        expect([a, b].sort()).toEqual([3, 4]);
      });
    });

    describe('keys and prefixes', () => {
      it('formats hot keys with the customer hash tag first', () => {
        expect(hotKey('acme', 'cus_1', 'credits', 'pool')).toBe('{acme:cus_1}:credits:pool');
        expect(hotKey('acme', 'cus_1')).toBe('{acme:cus_1}');
      });

      it('refuses a script over keys in different cluster slots', async () => {
        const read = script('conformance.slots', "return redis.call('MGET', KEYS[1], KEYS[2])");
        expect(await run(read, [hotKey('acme', 'cus_1', 'a'), hotKey('acme', 'cus_1', 'b')])).toEqual([
          null,
          null,
        ]);
        expect(await run(read, ['{}a', '{}a'])).toEqual([null, null]);
        await expect(run(read, [hotKey('acme', 'cus_1', 'a'), hotKey('acme', 'cus_2', 'a')])).rejects.toThrow(
          "hot script 'conformance.slots' got keys '{acme:cus_1}:a' and '{acme:cus_2}:a' in different cluster slots",
        );
        await expect(run(read, ['a', 'b'])).rejects.toThrow(/in different cluster slots/);
      });

      it('isolates adapters under different prefixes', async () => {
        const other = await open();
        try {
          await call('SET', 'shared', 'mine');
          await other.hot.call('SET', 'shared', 'theirs');
          expect(await call('GET', 'shared')).toBe('mine');
          expect(await other.hot.call('GET', 'shared')).toBe('theirs');
          const read = script('conformance.read', "return redis.call('GET', KEYS[1])");
          expect(await other.hot.run(read, ['shared'], [])).toBe('theirs');
          expect(await run(read, ['shared'])).toBe('mine');
        } finally {
          await other.cleanup();
        }
      });
    });
  });
}
