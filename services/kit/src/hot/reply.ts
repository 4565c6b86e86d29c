/**
 * Pure conversions shared by both hot-state adapters: how arguments are encoded on the way
 * in and how replies are normalised on the way out, so the two answer byte for byte alike.
 */
import { type HotArg, type HotReply, HotReplyError } from './port.ts';

/** Arguments travel as strings, the way Redis sees them. Non-finite numbers are a caller bug. */
export function hotArgToString(arg: HotArg): string {
  if (typeof arg === 'string') return arg;
  if (typeof arg === 'bigint') return arg.toString();
  if (!Number.isFinite(arg)) throw new RangeError(`hot-state argument must be a finite number, got ${arg}`);
  return String(arg);
}

/**
 * An ioredis reply (RESP2) in the port's shape: bulk strings (Buffer or string) become strings,
 * integers stay numbers, nil stays null. An error nested inside an array (a script returning
 * `{ {err = ...} }`) rejects the whole call, as the embedded adapter does.
 */
export function normaliseReply(raw: unknown): HotReply {
  if (raw === null || raw === undefined) return null;
  if (typeof raw === 'string' || typeof raw === 'number') return raw;
  if (Buffer.isBuffer(raw)) return raw.toString('utf8');
  if (Array.isArray(raw)) return raw.map(normaliseReply);
  if (raw instanceof Error) throw new HotReplyError(raw.message);
  if (typeof raw === 'bigint') return Number(raw);
  throw new TypeError(`unexpected hot-state reply of type ${typeof raw}`);
}

const INT64_LIMIT = 2 ** 63;

/**
 * A Lua number returned from a script becomes an integer reply by C truncation toward zero.
 * Out of int64 range (and NaN) the cast is undefined in C; x86-64 Redis answers INT64_MIN.
 */
export function luaNumberToInteger(n: number): number {
  if (Number.isNaN(n) || n >= INT64_LIMIT || n < -INT64_LIMIT) return -INT64_LIMIT;
  return Math.trunc(n) || 0;
}

/**
 * C's `%.17g`: how Redis 7.0 prints a double (ZSCORE, WITHSCORES, a non-integer Lua number
 * passed to `redis.call`). Redis 7.2+ prints the shortest round-trip form instead (`0.1` rather
 * than `0.10000000000000001`); integral values print the same on both, which is one more reason
 * scores and amounts stay integers.
 */
export function formatDouble(n: number): string {
  if (Number.isNaN(n)) return 'nan';
  if (n === Number.POSITIVE_INFINITY) return 'inf';
  if (n === Number.NEGATIVE_INFINITY) return '-inf';
  if (n === 0) return Object.is(n, -0) ? '-0' : '0';
  const [mantissa = '', exponentText = '0'] = n.toExponential(16).split('e');
  const exponent = Number(exponentText);
  if (exponent < -4 || exponent >= 17) {
    const digits = stripTrailingZeros(mantissa);
    const sign = exponent < 0 ? '-' : '+';
    return `${digits}e${sign}${String(Math.abs(exponent)).padStart(2, '0')}`;
  }
  return stripTrailingZeros(n.toFixed(16 - exponent));
}

function stripTrailingZeros(decimal: string): string {
  if (!decimal.includes('.')) return decimal;
  return decimal.replace(/\.?0+$/, '');
}

/** Redis replaces CR and LF in status and error replies it builds from a script with spaces. */
export function singleLine(text: string): string {
  return text.replace(/[\r\n]/g, ' ');
}
