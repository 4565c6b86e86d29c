/**
 * The embedded adapter's keyspace: an in-process map with Redis 7.0 semantics for the commands
 * Allot's hot-path scripts use. Same replies, same error texts, same order of checks (argument
 * errors before WRONGTYPE, as Redis parses before it looks the key up), lazy expiry with Redis's
 * rule (a key is gone once `now > expiresAt`), empty hashes/sets/sorted sets deleted.
 *
 * Synchronous on purpose: a command (or a whole script, see embedded.ts) runs to completion in
 * one turn of the event loop, which is what makes it atomic.
 *
 * Differences from Redis, by design: values are text (UTF-8, as the JS side sees them); hash
 * field order is insertion order (what Redis does for small hashes); set order is numeric for
 * all-integer sets (Redis's intset) and insertion order otherwise (Redis: hash order, i.e.
 * arbitrary); DBSIZE counts only live keys; doubles print as Redis 7.0 prints them (%.17g).
 */
import { formatDouble } from './reply.ts';

/** A status reply (`+OK`): inside Lua it becomes `{ok = 'OK'}`, outside a plain string. */
export class Status {
  constructor(readonly value: string) {}
}

export type KeyspaceReply = null | number | string | Status | KeyspaceReply[];

/** Where a command came from: scripts get Redis's script-specific arity and lookup messages. */
export type CommandOrigin = 'client' | 'script';

export class CommandError extends Error {
  override readonly name = 'CommandError';
}

type Entry =
  | { type: 'string'; value: string; expiresAt: number | undefined }
  | { type: 'hash'; value: Map<string, string>; expiresAt: number | undefined }
  | { type: 'set'; value: IntsetAwareSet; expiresAt: number | undefined }
  | { type: 'zset'; value: SortedSet; expiresAt: number | undefined };

type KeySpec = 'first' | 'all' | 'none';

interface CommandSpec {
  /** Redis arity: n means exactly n words (name included), -n at least n. */
  readonly arity: number;
  readonly keys: KeySpec;
  readonly run: (ks: Keyspace, args: readonly string[]) => KeyspaceReply;
}

const OK = new Status('OK');
const WRONGTYPE = 'WRONGTYPE Operation against a key holding the wrong kind of value';
const NOT_INTEGER = 'ERR value is not an integer or out of range';
const NOT_FLOAT = 'ERR value is not a valid float';
const RANGE_NOT_FLOAT = 'ERR min or max is not a float';
const OVERFLOW = 'ERR increment or decrement would overflow';
const SYNTAX = 'ERR syntax error';
const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;
const INTSET_MAX_ENTRIES = 512;
const EXPIRE_OPTIONS = new Set(['EX', 'PX', 'EXAT', 'PXAT']);

/** Redis's string2ll: no sign but '-', no leading zeros, no spaces, int64 range. */
export function parseInt64(text: string): bigint | undefined {
  if (!/^(0|-?[1-9][0-9]{0,18})$/.test(text)) return undefined;
  const value = BigInt(text);
  return value < INT64_MIN || value > INT64_MAX ? undefined : value;
}

function intArg(text: string): bigint {
  const value = parseInt64(text);
  if (value === undefined) throw new CommandError(NOT_INTEGER);
  return value;
}

/** Redis accepts what strtod accepts minus spaces and NaN; this covers the decimal forms and inf. */
function parseDouble(text: string): number | undefined {
  if (/^[+-]?(inf|infinity)$/i.test(text)) return text.startsWith('-') ? -Infinity : Infinity;
  if (!/^[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?$/.test(text)) return undefined;
  return Number(text);
}

interface ScoreBound {
  readonly value: number;
  readonly exclusive: boolean;
}

function parseBound(text: string): ScoreBound {
  const exclusive = text.startsWith('(');
  const value = parseDouble(exclusive ? text.slice(1) : text);
  if (value === undefined) throw new CommandError(RANGE_NOT_FLOAT);
  return { value, exclusive };
}

function aboveMin(score: number, min: ScoreBound): boolean {
  return min.exclusive ? score > min.value : score >= min.value;
}

function belowMax(score: number, max: ScoreBound): boolean {
  return max.exclusive ? score < max.value : score <= max.value;
}

interface ZEntry {
  readonly member: string;
  readonly score: number;
}

function compareZ(a: ZEntry, b: ZEntry): number {
  if (a.score !== b.score) return a.score < b.score ? -1 : 1;
  if (a.member === b.member) return 0;
  return a.member < b.member ? -1 : 1;
}

/** Members ordered by (score, member); binary search over a sorted array, fine at hot-state sizes. */
class SortedSet {
  readonly scores = new Map<string, number>();
  readonly entries: ZEntry[] = [];

  get size(): number {
    return this.entries.length;
  }

  /** Returns true when the member is new. */
  set(member: string, score: number): boolean {
    const previous = this.scores.get(member);
    if (previous !== undefined) {
      if (previous === score) return false;
      this.entries.splice(this.indexOf({ member, score: previous }), 1);
    }
    const entry = { member, score };
    this.entries.splice(
      this.lowerBound((e) => compareZ(e, entry) < 0),
      0,
      entry,
    );
    this.scores.set(member, score);
    return previous === undefined;
  }

  delete(member: string): boolean {
    const score = this.scores.get(member);
    if (score === undefined) return false;
    this.entries.splice(this.indexOf({ member, score }), 1);
    this.scores.delete(member);
    return true;
  }

  /** Index range [from, to) of the members whose score is within the bounds. */
  rangeByScore(min: ScoreBound, max: ScoreBound): [number, number] {
    const from = this.lowerBound((e) => !aboveMin(e.score, min));
    let to = from;
    while (to < this.entries.length && belowMax(this.entries[to]!.score, max)) to++;
    return [from, to];
  }

  private indexOf(entry: ZEntry): number {
    return this.lowerBound((e) => compareZ(e, entry) < 0);
  }

  /** First index whose entry does not satisfy `before`; entries satisfying it form a prefix. */
  private lowerBound(before: (e: ZEntry) => boolean): number {
    let lo = 0;
    let hi = this.entries.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (before(this.entries[mid]!)) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }
}

/** A set that lists its members like Redis: ascending while it would be an intset. */
class IntsetAwareSet {
  readonly members = new Set<string>();
  private intset = true;

  add(member: string): boolean {
    if (this.members.has(member)) return false;
    this.members.add(member);
    if (this.intset && (parseInt64(member) === undefined || this.members.size > INTSET_MAX_ENTRIES)) {
      this.intset = false;
    }
    return true;
  }

  list(): string[] {
    const all = [...this.members];
    if (!this.intset) return all;
    return all.sort((a, b) => {
      const d = BigInt(a) - BigInt(b);
      return d < 0n ? -1 : d > 0n ? 1 : 0;
    });
  }
}

export interface KeyspaceOptions {
  /** Milliseconds since the epoch; injectable so tests can move time. */
  readonly clock?: () => number;
}

export class Keyspace {
  private readonly data = new Map<string, Entry>();
  private readonly clock: () => number;
  /** Redis freezes time for the length of a script; so does `frozen`. */
  private frozen: number | undefined;

  constructor(options: KeyspaceOptions = {}) {
    this.clock = options.clock ?? Date.now;
  }

  now(): number {
    return this.frozen ?? this.clock();
  }

  /** Runs `body` with the clock frozen at its start, as Redis does for a script. */
  atomically<T>(body: () => T): T {
    if (this.frozen !== undefined) return body();
    this.frozen = this.clock();
    try {
      return body();
    } finally {
      this.frozen = undefined;
    }
  }

  /** Positions of the key arguments in `argv` (the command name at 0), for key prefixing. */
  keyPositions(argv: readonly string[]): number[] {
    const spec = COMMANDS.get(argv[0]?.toLowerCase() ?? '');
    if (spec === undefined || spec.keys === 'none' || argv.length < 2) return [];
    if (spec.keys === 'first') return [1];
    return argv.map((_, i) => i).filter((i) => i > 0);
  }

  exec(argv: readonly string[], origin: CommandOrigin): KeyspaceReply {
    const name = argv[0]?.toLowerCase() ?? '';
    const spec = COMMANDS.get(name);
    if (spec === undefined) {
      throw new CommandError(`ERR command '${argv[0] ?? ''}' is not supported by the embedded hot state`);
    }
    if ((spec.arity > 0 && argv.length !== spec.arity) || argv.length < -spec.arity) {
      throw new CommandError(
        origin === 'script'
          ? 'ERR Wrong number of args calling Redis command from script'
          : `ERR wrong number of arguments for '${name}' command`,
      );
    }
    return spec.run(this, argv);
  }

  /** Removes expired keys; lookups already hide them, this only bounds memory. */
  sweepExpired(limit = 1000): number {
    const now = this.now();
    let removed = 0;
    for (const [key, entry] of this.data) {
      if (removed >= limit) break;
      if (entry.expiresAt !== undefined && now > entry.expiresAt) {
        this.data.delete(key);
        removed++;
      }
    }
    return removed;
  }

  // -- lookups -----------------------------------------------------------------------------

  lookup(key: string): Entry | undefined {
    const entry = this.data.get(key);
    if (entry === undefined) return undefined;
    if (entry.expiresAt !== undefined && this.now() > entry.expiresAt) {
      this.data.delete(key);
      return undefined;
    }
    return entry;
  }

  lookupTyped<T extends Entry['type']>(key: string, type: T): Extract<Entry, { type: T }> | undefined {
    const entry = this.lookup(key);
    if (entry === undefined) return undefined;
    if (entry.type !== type) throw new CommandError(WRONGTYPE);
    return entry as Extract<Entry, { type: T }>;
  }

  hashForWrite(key: string): Extract<Entry, { type: 'hash' }> {
    const found = this.lookupTyped(key, 'hash');
    if (found !== undefined) return found;
    const entry = { type: 'hash' as const, value: new Map<string, string>(), expiresAt: undefined };
    this.data.set(key, entry);
    return entry;
  }

  setForWrite(key: string): Extract<Entry, { type: 'set' }> {
    const found = this.lookupTyped(key, 'set');
    if (found !== undefined) return found;
    const entry = { type: 'set' as const, value: new IntsetAwareSet(), expiresAt: undefined };
    this.data.set(key, entry);
    return entry;
  }

  zsetForWrite(key: string): Extract<Entry, { type: 'zset' }> {
    const found = this.lookupTyped(key, 'zset');
    if (found !== undefined) return found;
    const entry = { type: 'zset' as const, value: new SortedSet(), expiresAt: undefined };
    this.data.set(key, entry);
    return entry;
  }

  setString(key: string, value: string, expiresAt: number | undefined): void {
    this.data.set(key, { type: 'string', value, expiresAt });
  }

  delete(key: string): boolean {
    return this.lookup(key) !== undefined && this.data.delete(key);
  }

  /** Redis deletes a hash, set or sorted set when its last element goes. */
  deleteIfEmpty(key: string, size: number): void {
    if (size === 0) this.data.delete(key);
  }

  liveKeyCount(): number {
    this.sweepExpired(Number.POSITIVE_INFINITY);
    return this.data.size;
  }

  flush(): void {
    this.data.clear();
  }
}

// -- commands --------------------------------------------------------------------------------

function incrementString(ks: Keyspace, key: string, by: bigint): number {
  const entry = ks.lookupTyped(key, 'string');
  let current = 0n;
  if (entry !== undefined) {
    const parsed = parseInt64(entry.value);
    if (parsed === undefined) throw new CommandError(NOT_INTEGER);
    current = parsed;
  }
  const next = current + by;
  if (next < INT64_MIN || next > INT64_MAX) throw new CommandError(OVERFLOW);
  ks.setString(key, next.toString(), entry?.expiresAt);
  return Number(next);
}

function setCommand(ks: Keyspace, args: readonly string[]): KeyspaceReply {
  const [, key = '', value = ''] = args;
  let nx = false;
  let xx = false;
  let get = false;
  let keepTtl = false;
  let expire: { option: string; text: string } | undefined;
  for (let j = 3; j < args.length; j++) {
    const opt = args[j]!.toUpperCase();
    const next = args[j + 1];
    if (opt === 'NX' && !xx) nx = true;
    else if (opt === 'XX' && !nx) xx = true;
    else if (opt === 'GET') get = true;
    else if (opt === 'KEEPTTL' && expire === undefined) keepTtl = true;
    else if (
      EXPIRE_OPTIONS.has(opt) &&
      !keepTtl &&
      // Redis lets one expiry option repeat (the last wins) but not mix with another one.
      (expire === undefined || expire.option === opt) &&
      next !== undefined
    ) {
      expire = { option: opt, text: next };
      j++;
    } else throw new CommandError(SYNTAX);
  }
  let expiresAt: number | undefined;
  if (expire !== undefined) {
    const seconds = expire.option.startsWith('E');
    const amount = intArg(expire.text);
    if (amount <= 0n || (seconds && amount > INT64_MAX / 1000n)) {
      throw new CommandError("ERR invalid expire time in 'set' command");
    }
    let at = seconds ? amount * 1000n : amount;
    if (!expire.option.endsWith('AT')) at += BigInt(ks.now());
    if (at <= 0n || at > INT64_MAX) throw new CommandError("ERR invalid expire time in 'set' command");
    expiresAt = Number(at);
  }
  let previous: string | null = null;
  if (get) previous = ks.lookupTyped(key, 'string')?.value ?? null;
  const existing = ks.lookup(key);
  if ((nx && existing !== undefined) || (xx && existing === undefined)) return get ? previous : null;
  ks.setString(key, value, keepTtl ? existing?.expiresAt : expiresAt);
  return get ? previous : OK;
}

function expireCommand(ks: Keyspace, args: readonly string[], unit: 's' | 'ms'): KeyspaceReply {
  const [name = '', key = '', amountText = ''] = args;
  let nx = false;
  let xx = false;
  let gt = false;
  let lt = false;
  for (const raw of args.slice(3)) {
    const opt = raw.toUpperCase();
    if (opt === 'NX') nx = true;
    else if (opt === 'XX') xx = true;
    else if (opt === 'GT') gt = true;
    else if (opt === 'LT') lt = true;
    else throw new CommandError(`ERR Unsupported option ${raw}`);
  }
  if (nx && (xx || gt || lt)) {
    throw new CommandError('ERR NX and XX, GT or LT options at the same time are not compatible');
  }
  if (gt && lt) throw new CommandError('ERR GT and LT options at the same time are not compatible');
  let when = intArg(amountText);
  const invalid = `ERR invalid expire time in '${name.toLowerCase()}' command`;
  if (unit === 's') {
    if (when > INT64_MAX / 1000n || when < INT64_MIN / 1000n) throw new CommandError(invalid);
    when *= 1000n;
  }
  const now = BigInt(ks.now());
  if (when > INT64_MAX - now) throw new CommandError(invalid);
  when += now;
  const entry = ks.lookup(key);
  if (entry === undefined) return 0;
  const current = entry.expiresAt === undefined ? undefined : BigInt(entry.expiresAt);
  if (nx && current !== undefined) return 0;
  if (xx && current === undefined) return 0;
  if (gt && (current === undefined || when <= current)) return 0;
  if (lt && current !== undefined && when >= current) return 0;
  if (when <= now) ks.delete(key);
  else entry.expiresAt = Number(when);
  return 1;
}

function ttlCommand(ks: Keyspace, key: string, unit: 's' | 'ms'): number {
  const entry = ks.lookup(key);
  if (entry === undefined) return -2;
  if (entry.expiresAt === undefined) return -1;
  const ttl = Math.max(0, entry.expiresAt - ks.now());
  return unit === 'ms' ? ttl : Math.floor((ttl + 500) / 1000);
}

function zaddCommand(ks: Keyspace, args: readonly string[]): KeyspaceReply {
  const key = args[1]!;
  let j = 2;
  const flags = new Set<string>();
  while (j < args.length && ['NX', 'XX', 'GT', 'LT', 'CH', 'INCR'].includes(args[j]!.toUpperCase())) {
    flags.add(args[j]!.toUpperCase());
    j++;
  }
  const pairs = args.length - j;
  if (pairs === 0 || pairs % 2 === 1) throw new CommandError(SYNTAX);
  const nx = flags.has('NX');
  const xx = flags.has('XX');
  const gt = flags.has('GT');
  const lt = flags.has('LT');
  if (nx && xx) throw new CommandError('ERR XX and NX options at the same time are not compatible');
  if ((gt && nx) || (lt && nx) || (gt && lt)) {
    throw new CommandError('ERR GT, LT, and/or NX options at the same time are not compatible');
  }
  const incr = flags.has('INCR');
  if (incr && pairs > 2) throw new CommandError('ERR INCR option supports a single increment-element pair');
  const updates: ZEntry[] = [];
  for (let k = j; k < args.length; k += 2) {
    const score = parseDouble(args[k]!);
    if (score === undefined) throw new CommandError(NOT_FLOAT);
    updates.push({ score, member: args[k + 1]! });
  }
  const existing = ks.lookupTyped(key, 'zset');
  if (existing === undefined && xx) return incr ? null : 0;
  const zset = (existing ?? ks.zsetForWrite(key)).value;
  let added = 0;
  let changed = 0;
  let incrResult: number | null = null;
  for (const { member, score } of updates) {
    const current = zset.scores.get(member);
    if (current === undefined) {
      if (xx) continue;
      if (Number.isNaN(score)) throw new CommandError('ERR resulting score is not a number (NaN)');
      zset.set(member, score);
      added++;
      incrResult = score;
      continue;
    }
    if (nx) continue;
    const next = incr ? current + score : score;
    if (Number.isNaN(next)) throw new CommandError('ERR resulting score is not a number (NaN)');
    if ((gt && next <= current) || (lt && next >= current)) continue;
    incrResult = next;
    if (next !== current) {
      zset.set(member, next);
      changed++;
    }
  }
  ks.deleteIfEmpty(key, zset.size);
  if (incr) return incrResult === null ? null : formatDouble(incrResult);
  return flags.has('CH') ? added + changed : added;
}

function withScores(entries: readonly ZEntry[], scores: boolean): string[] {
  return scores ? entries.flatMap((e) => [e.member, formatDouble(e.score)]) : entries.map((e) => e.member);
}

function zrangeByScoreCommand(ks: Keyspace, args: readonly string[]): KeyspaceReply {
  let scores = false;
  let offset = 0;
  let count = -1;
  for (let j = 4; j < args.length; j++) {
    const opt = args[j]!.toUpperCase();
    if (opt === 'WITHSCORES') scores = true;
    else if (opt === 'LIMIT' && args.length - j - 1 >= 2) {
      offset = Number(intArg(args[j + 1]!));
      count = Number(intArg(args[j + 2]!));
      j += 2;
    } else throw new CommandError(SYNTAX);
  }
  const min = parseBound(args[2]!);
  const max = parseBound(args[3]!);
  const zset = ks.lookupTyped(args[1]!, 'zset')?.value;
  if (zset === undefined || offset < 0) return [];
  const [from, to] = zset.rangeByScore(min, max);
  const start = from + offset;
  const end = count < 0 ? to : Math.min(to, start + count);
  return withScores(zset.entries.slice(start, Math.max(start, end)), scores);
}

function zrangeCommand(ks: Keyspace, args: readonly string[]): KeyspaceReply {
  let scores = false;
  for (const raw of args.slice(4)) {
    const opt = raw.toUpperCase();
    if (opt === 'WITHSCORES') scores = true;
    else if (['BYSCORE', 'BYLEX', 'REV', 'LIMIT'].includes(opt)) {
      throw new CommandError(
        `ERR ZRANGE ${opt} is not supported by the embedded hot state; use ZRANGEBYSCORE or rank ranges`,
      );
    } else throw new CommandError(SYNTAX);
  }
  let start = Number(intArg(args[2]!));
  let stop = Number(intArg(args[3]!));
  const zset = ks.lookupTyped(args[1]!, 'zset')?.value;
  if (zset === undefined) return [];
  const size = zset.size;
  if (start < 0) start = Math.max(0, size + start);
  if (stop < 0) stop = size + stop;
  if (start > stop || start >= size) return [];
  return withScores(zset.entries.slice(start, Math.min(stop, size - 1) + 1), scores);
}

function hash(ks: Keyspace, key: string): Map<string, string> | undefined {
  return ks.lookupTyped(key, 'hash')?.value;
}

const COMMANDS = new Map<string, CommandSpec>([
  // strings
  ['get', { arity: 2, keys: 'first', run: (ks, a) => ks.lookupTyped(a[1]!, 'string')?.value ?? null }],
  ['set', { arity: -3, keys: 'first', run: setCommand }],
  ['incr', { arity: 2, keys: 'first', run: (ks, a) => incrementString(ks, a[1]!, 1n) }],
  ['decr', { arity: 2, keys: 'first', run: (ks, a) => incrementString(ks, a[1]!, -1n) }],
  ['incrby', { arity: 3, keys: 'first', run: (ks, a) => incrementString(ks, a[1]!, intArg(a[2]!)) }],
  [
    'decrby',
    {
      arity: 3,
      keys: 'first',
      run: (ks, a) => {
        const by = intArg(a[2]!);
        if (by === INT64_MIN) throw new CommandError('ERR decrement would overflow');
        return incrementString(ks, a[1]!, -by);
      },
    },
  ],
  [
    'mget',
    {
      arity: -2,
      keys: 'all',
      run: (ks, a) =>
        a.slice(1).map((key) => {
          const entry = ks.lookup(key);
          return entry?.type === 'string' ? entry.value : null;
        }),
    },
  ],
  // keys
  ['del', { arity: -2, keys: 'all', run: (ks, a) => a.slice(1).filter((key) => ks.delete(key)).length }],
  [
    'exists',
    {
      arity: -2,
      keys: 'all',
      run: (ks, a) => a.slice(1).filter((key) => ks.lookup(key) !== undefined).length,
    },
  ],
  ['expire', { arity: -3, keys: 'first', run: (ks, a) => expireCommand(ks, a, 's') }],
  ['pexpire', { arity: -3, keys: 'first', run: (ks, a) => expireCommand(ks, a, 'ms') }],
  ['ttl', { arity: 2, keys: 'first', run: (ks, a) => ttlCommand(ks, a[1]!, 's') }],
  ['pttl', { arity: 2, keys: 'first', run: (ks, a) => ttlCommand(ks, a[1]!, 'ms') }],
  [
    'persist',
    {
      arity: 2,
      keys: 'first',
      run: (ks, a) => {
        const entry = ks.lookup(a[1]!);
        if (entry?.expiresAt === undefined) return 0;
        entry.expiresAt = undefined;
        return 1;
      },
    },
  ],
  ['type', { arity: 2, keys: 'first', run: (ks, a) => new Status(ks.lookup(a[1]!)?.type ?? 'none') }],
  // hashes
  ['hget', { arity: 3, keys: 'first', run: (ks, a) => hash(ks, a[1]!)?.get(a[2]!) ?? null }],
  [
    'hset',
    {
      arity: -4,
      keys: 'first',
      run: (ks, a) => {
        if (a.length % 2 === 1) throw new CommandError("ERR wrong number of arguments for 'hset' command");
        const fields = ks.hashForWrite(a[1]!).value;
        let created = 0;
        for (let j = 2; j < a.length; j += 2) {
          if (!fields.has(a[j]!)) created++;
          fields.set(a[j]!, a[j + 1]!);
        }
        return created;
      },
    },
  ],
  [
    'hsetnx',
    {
      arity: 4,
      keys: 'first',
      run: (ks, a) => {
        const fields = ks.hashForWrite(a[1]!).value;
        if (fields.has(a[2]!)) return 0;
        fields.set(a[2]!, a[3]!);
        return 1;
      },
    },
  ],
  [
    'hdel',
    {
      arity: -3,
      keys: 'first',
      run: (ks, a) => {
        const fields = hash(ks, a[1]!);
        if (fields === undefined) return 0;
        const removed = a.slice(2).filter((field) => fields.delete(field)).length;
        ks.deleteIfEmpty(a[1]!, fields.size);
        return removed;
      },
    },
  ],
  ['hgetall', { arity: 2, keys: 'first', run: (ks, a) => [...(hash(ks, a[1]!) ?? [])].flat() }],
  [
    'hincrby',
    {
      arity: 4,
      keys: 'first',
      run: (ks, a) => {
        const by = intArg(a[3]!);
        const fields = ks.hashForWrite(a[1]!).value;
        const text = fields.get(a[2]!);
        let current = 0n;
        if (text !== undefined) {
          const parsed = parseInt64(text);
          if (parsed === undefined) throw new CommandError('ERR hash value is not an integer');
          current = parsed;
        }
        const next = current + by;
        if (next < INT64_MIN || next > INT64_MAX) {
          ks.deleteIfEmpty(a[1]!, fields.size);
          throw new CommandError(OVERFLOW);
        }
        fields.set(a[2]!, next.toString());
        return Number(next);
      },
    },
  ],
  [
    'hmget',
    {
      arity: -3,
      keys: 'first',
      run: (ks, a) => {
        const fields = hash(ks, a[1]!);
        return a.slice(2).map((field) => fields?.get(field) ?? null);
      },
    },
  ],
  ['hexists', { arity: 3, keys: 'first', run: (ks, a) => (hash(ks, a[1]!)?.has(a[2]!) ? 1 : 0) }],
  ['hlen', { arity: 2, keys: 'first', run: (ks, a) => hash(ks, a[1]!)?.size ?? 0 }],
  ['hkeys', { arity: 2, keys: 'first', run: (ks, a) => [...(hash(ks, a[1]!)?.keys() ?? [])] }],
  ['hvals', { arity: 2, keys: 'first', run: (ks, a) => [...(hash(ks, a[1]!)?.values() ?? [])] }],
  // sorted sets
  ['zadd', { arity: -4, keys: 'first', run: zaddCommand }],
  [
    'zrem',
    {
      arity: -3,
      keys: 'first',
      run: (ks, a) => {
        const zset = ks.lookupTyped(a[1]!, 'zset')?.value;
        if (zset === undefined) return 0;
        const removed = a.slice(2).filter((member) => zset.delete(member)).length;
        ks.deleteIfEmpty(a[1]!, zset.size);
        return removed;
      },
    },
  ],
  [
    'zscore',
    {
      arity: 3,
      keys: 'first',
      run: (ks, a) => {
        const score = ks.lookupTyped(a[1]!, 'zset')?.value.scores.get(a[2]!);
        return score === undefined ? null : formatDouble(score);
      },
    },
  ],
  ['zcard', { arity: 2, keys: 'first', run: (ks, a) => ks.lookupTyped(a[1]!, 'zset')?.value.size ?? 0 }],
  ['zrangebyscore', { arity: -4, keys: 'first', run: zrangeByScoreCommand }],
  ['zrange', { arity: -4, keys: 'first', run: zrangeCommand }],
  [
    'zcount',
    {
      arity: 4,
      keys: 'first',
      run: (ks, a) => {
        const min = parseBound(a[2]!);
        const max = parseBound(a[3]!);
        const zset = ks.lookupTyped(a[1]!, 'zset')?.value;
        if (zset === undefined) return 0;
        const [from, to] = zset.rangeByScore(min, max);
        return to - from;
      },
    },
  ],
  [
    'zremrangebyscore',
    {
      arity: 4,
      keys: 'first',
      run: (ks, a) => {
        const min = parseBound(a[2]!);
        const max = parseBound(a[3]!);
        const zset = ks.lookupTyped(a[1]!, 'zset')?.value;
        if (zset === undefined) return 0;
        const [from, to] = zset.rangeByScore(min, max);
        for (const { member } of zset.entries.slice(from, to)) zset.delete(member);
        ks.deleteIfEmpty(a[1]!, zset.size);
        return to - from;
      },
    },
  ],
  // sets
  [
    'sadd',
    {
      arity: -3,
      keys: 'first',
      run: (ks, a) => {
        const set = ks.setForWrite(a[1]!).value;
        return a.slice(2).filter((member) => set.add(member)).length;
      },
    },
  ],
  [
    'srem',
    {
      arity: -3,
      keys: 'first',
      run: (ks, a) => {
        const set = ks.lookupTyped(a[1]!, 'set')?.value;
        if (set === undefined) return 0;
        const removed = a.slice(2).filter((member) => set.members.delete(member)).length;
        ks.deleteIfEmpty(a[1]!, set.members.size);
        return removed;
      },
    },
  ],
  [
    'sismember',
    {
      arity: 3,
      keys: 'first',
      run: (ks, a) => (ks.lookupTyped(a[1]!, 'set')?.value.members.has(a[2]!) ? 1 : 0),
    },
  ],
  ['smembers', { arity: 2, keys: 'first', run: (ks, a) => ks.lookupTyped(a[1]!, 'set')?.value.list() ?? [] }],
  [
    'scard',
    { arity: 2, keys: 'first', run: (ks, a) => ks.lookupTyped(a[1]!, 'set')?.value.members.size ?? 0 },
  ],
  // server
  [
    'time',
    {
      arity: 1,
      keys: 'none',
      run: (ks) => {
        const ms = ks.now();
        return [String(Math.floor(ms / 1000)), String((ms % 1000) * 1000)];
      },
    },
  ],
  [
    'ping',
    {
      arity: -1,
      keys: 'none',
      run: (_ks, a) => {
        if (a.length > 2) throw new CommandError("ERR wrong number of arguments for 'ping' command");
        return a[1] ?? new Status('PONG');
      },
    },
  ],
  [
    'flushall',
    {
      arity: -1,
      keys: 'none',
      run: (ks, a) => {
        if (a.length > 2 || (a[1] !== undefined && !['ASYNC', 'SYNC'].includes(a[1].toUpperCase()))) {
          throw new CommandError(SYNTAX);
        }
        ks.flush();
        return OK;
      },
    },
  ],
  ['dbsize', { arity: 1, keys: 'none', run: (ks) => ks.liveKeyCount() }],
]);
