import { describe, expect, it } from 'vitest';
import { CommandError, Keyspace, Status } from '../src/hot/keyspace.ts';
import { HotReplyError } from '../src/hot/port.ts';
import { parseRedisUrl, redactUrl } from '../src/hot/redis.ts';
import { formatDouble, hotArgToString, luaNumberToInteger, normaliseReply } from '../src/hot/reply.ts';
import { findLua54Syntax, hashTag } from '../src/hot/script.ts';

describe('hot-state reply conversion', () => {
  it('prints doubles as C printf %.17g does (Redis 7.0)', () => {
    expect(formatDouble(0.1)).toBe('0.10000000000000001');
    expect(formatDouble(2.5)).toBe('2.5');
    expect(formatDouble(3)).toBe('3');
    expect(formatDouble(-0)).toBe('-0');
    expect(formatDouble(1e20)).toBe('1e+20');
    expect(formatDouble(1e16)).toBe('10000000000000000');
    expect(formatDouble(1e17)).toBe('1e+17');
    expect(formatDouble(0.0001)).toBe('0.0001');
    expect(formatDouble(0.00001)).toBe('1.0000000000000001e-05');
    expect(formatDouble(-1 / 3)).toBe('-0.33333333333333331');
    expect(formatDouble(Number.POSITIVE_INFINITY)).toBe('inf');
    expect(formatDouble(Number.NEGATIVE_INFINITY)).toBe('-inf');
  });

  it('truncates Lua numbers toward zero, and answers INT64_MIN outside int64 as x86 Redis does', () => {
    expect(luaNumberToInteger(3.7)).toBe(3);
    expect(luaNumberToInteger(-3.7)).toBe(-3);
    expect(luaNumberToInteger(-0.5)).toBe(0);
    expect(Object.is(luaNumberToInteger(-0.5), 0)).toBe(true);
    expect(luaNumberToInteger(1e300)).toBe(-(2 ** 63));
    expect(luaNumberToInteger(Number.NaN)).toBe(-(2 ** 63));
  });

  it('normalises ioredis replies: buffers to strings, nested errors to a rejection', () => {
    expect(normaliseReply([Buffer.from('a'), 1, null, ['b', [Buffer.from('é')]]])).toEqual([
      'a',
      1,
      null,
      ['b', ['é']],
    ]);
    expect(normaliseReply(undefined)).toBeNull();
    expect(() => normaliseReply(['ok', new Error('ERR nested')])).toThrow(HotReplyError);
  });

  it('encodes arguments as Redis sees them and refuses non-finite numbers', () => {
    expect(hotArgToString(42)).toBe('42');
    expect(hotArgToString(-1.5)).toBe('-1.5');
    expect(hotArgToString(9007199254740993n)).toBe('9007199254740993');
    expect(hotArgToString('x')).toBe('x');
    expect(() => hotArgToString(Number.NaN)).toThrow(RangeError);
    expect(() => hotArgToString(Number.POSITIVE_INFINITY)).toThrow(RangeError);
  });
});

describe('Lua portability check', () => {
  it('finds the syntax only Lua 5.4 accepts', () => {
    expect(findLua54Syntax('return 7 // 2')).toEqual({ what: "integer division '//'", line: 1 });
    expect(findLua54Syntax('local a = 1\nreturn a & 3')?.line).toBe(2);
    expect(findLua54Syntax('return 1 << 2')?.what).toBe("the bitwise operator '<<'");
    expect(findLua54Syntax('return ~1')?.what).toBe("the bitwise operator '~'");
    expect(findLua54Syntax('goto done\n::done::')?.what).toBe("'goto'");
    expect(findLua54Syntax('local x <const> = 1')?.what).toBe('a variable attribute (<const>/<close>)');
  });

  it('ignores strings, comments and the operators 5.1 has', () => {
    const lua = `-- a // comment & more
--[==[ block
  comment with // and | ]==]
local s = 'a // b' .. "c & d" .. [[e | f]]
if 1 ~= 2 and 3 <= 4 and 5 >= 4 and 6 == 6 then return #s end`;
    expect(findLua54Syntax(lua)).toBeUndefined();
  });
});

describe('hash tags', () => {
  it('takes the first non-empty {...} as Redis Cluster does', () => {
    expect(hashTag('{acme:cus_1}:pool')).toBe('acme:cus_1');
    expect(hashTag('plain')).toBe('plain');
    expect(hashTag('{}x{y}')).toBe('{}x{y}');
    expect(hashTag('a{b}{c}')).toBe('b');
    expect(hashTag('a{b')).toBe('a{b');
  });
});

describe('Redis URLs', () => {
  it('accepts redis:// and rediss:// with an optional database number', () => {
    expect(parseRedisUrl('redis://127.0.0.1:6379').port).toBe('6379');
    expect(parseRedisUrl('rediss://user:pw@cache.example:6380/2').protocol).toBe('rediss:');
  });

  it('names the problem and masks the password', () => {
    expect(() => parseRedisUrl('127.0.0.1:6379')).toThrow(/^invalid Redis URL: 127\.0\.0\.1:6379/);
    expect(() => parseRedisUrl('redis://u:hunter2@h:1/abc')).toThrow(
      'invalid Redis URL: redis://u:***@h:1/abc',
    );
    expect(redactUrl('redis://:hunter2@h:1')).toBe('redis://:***@h:1');
    expect(redactUrl('redis://h:1')).toBe('redis://h:1');
  });
});

describe('Keyspace expiry', () => {
  it('keeps a key through its deadline and drops it just after, as Redis does', () => {
    let now = 1_000_000;
    const ks = new Keyspace({ clock: () => now });
    expect(ks.exec(['SET', 'k', 'v', 'PX', '100'], 'client')).toBeInstanceOf(Status);
    now += 100;
    expect(ks.exec(['GET', 'k'], 'client')).toBe('v');
    expect(ks.exec(['PTTL', 'k'], 'client')).toBe(0);
    now += 1;
    expect(ks.exec(['GET', 'k'], 'client')).toBeNull();
    expect(ks.exec(['EXISTS', 'k'], 'client')).toBe(0);
  });

  it('rounds TTL to the nearest second and freezes time inside an atomic block', () => {
    let now = 0;
    const ks = new Keyspace({ clock: () => now });
    ks.exec(['SET', 'k', 'v', 'PX', '1499'], 'client');
    expect(ks.exec(['TTL', 'k'], 'client')).toBe(1);
    now = 1000;
    expect(ks.exec(['TTL', 'k'], 'client')).toBe(0);
    const seen = ks.atomically(() => {
      now = 5000;
      return ks.exec(['GET', 'k'], 'script');
    });
    expect(seen).toBe('v');
    expect(ks.exec(['GET', 'k'], 'client')).toBeNull();
  });

  it('sweeps expired keys so an idle keyspace does not grow', () => {
    let now = 0;
    const ks = new Keyspace({ clock: () => now });
    for (let i = 0; i < 10; i++) ks.exec(['SET', `k${i}`, 'v', 'PX', '10'], 'client');
    ks.exec(['SET', 'kept', 'v'], 'client');
    now = 11;
    expect(ks.sweepExpired()).toBe(10);
    expect(ks.exec(['DBSIZE'], 'client')).toBe(1);
  });

  it('words arity errors for scripts as Redis does', () => {
    const ks = new Keyspace();
    expect(() => ks.exec(['GET'], 'client')).toThrow(
      new CommandError("ERR wrong number of arguments for 'get' command"),
    );
    expect(() => ks.exec(['GET'], 'script')).toThrow(
      new CommandError('ERR Wrong number of args calling Redis command from script'),
    );
  });
});
