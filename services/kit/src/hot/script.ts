/**
 * What both adapters check before a script first runs: one source per name, and Lua that runs
 * the same on Redis (Lua 5.1) and in the embedded VM (wasmoon, Lua 5.4).
 *
 * The embedded VM is a newer Lua, so it accepts things Redis refuses or reads differently. The
 * syntax that only 5.4 knows is rejected here, on both adapters, so a script cannot pass the
 * embedded suite and then fail to compile on Redis:
 * - integer division `//`, bitwise operators `& | ~ << >>`, `goto` and `::labels::`,
 *   `<const>` / `<close>` attributes.
 * What a parser cannot see, and the scripts must avoid by habit (the equivalence test finds them):
 * - number formatting: 5.4 prints an integral float as `5.0` (`tostring(10/2)`, `'x' .. 10/2`)
 *   where 5.1 prints `5`. Keep numbers integers (`math.floor(a / b)`), and pass numbers to
 *   `redis.call` rather than concatenating them;
 * - negative zero: on 5.1 `-x` with x = 0 is the double -0, which `redis.call` sends as "-0" and
 *   Redis refuses as an integer; 5.4 integers have no -0. Write `0 - x`;
 * - integers above 2^53: 5.1 numbers are doubles and lose precision, 5.4 integers do not (and
 *   wrap at 2^63 instead of going to infinity). Money is in micro-units well below 2^53;
 * - `string.format('%d', 3.5)` raises in 5.4 and truncates in 5.1;
 * - library differences: use `unpack` (5.1; the embedded VM aliases it), never `table.unpack`,
 *   `table.pack`, `math.tointeger`, `utf8`, `string.pack`; `bit`, `struct` and `cmsgpack` exist
 *   only on Redis;
 * - table iteration order (`pairs`, and so the key order of `cjson.encode` objects) differs;
 * - `pcall(redis.call, ...)` hands back the error string on Redis 7.0 but the error table on 7.2+;
 *   use `redis.pcall`, which returns `{err = ...}` everywhere;
 * - runtime error texts differ (5.1: "attempt to perform arithmetic on local 'x' (a nil value)",
 *   5.4: "... on a nil value (local 'x')"): validate inputs and answer with `redis.error_reply`
 *   rather than letting Lua raise;
 * - never `error()` with a table lacking a string `err` field: it crashes Redis 7.0.x.
 */
import { createHash } from 'node:crypto';
import type { HotScript } from './port.ts';

export interface PreparedScript {
  readonly name: string;
  readonly lua: string;
  /** SHA-1 of the source, as Redis computes it for EVALSHA and error messages. */
  readonly sha: string;
}

/** One entry per script name; a second, different source under the same name is a bug. */
export class ScriptCatalog {
  private readonly byName = new Map<string, PreparedScript>();

  prepare(script: HotScript): PreparedScript {
    const known = this.byName.get(script.name);
    if (known !== undefined) {
      if (known.lua !== script.lua) {
        throw new Error(`hot script '${script.name}' is defined twice with different sources`);
      }
      return known;
    }
    assertPortableLua(script);
    const prepared: PreparedScript = {
      name: script.name,
      lua: script.lua,
      sha: createHash('sha1').update(script.lua).digest('hex'),
    };
    this.byName.set(script.name, prepared);
    return prepared;
  }
}

/**
 * Throws unless every key hashes to one Redis Cluster slot: the same hash tag (`{...}`, see
 * `hotKey`), or a single key. Checked on both adapters, so a script that would fail with
 * CROSSSLOT on a cluster fails in development too.
 */
export function assertOneHashTag(script: PreparedScript, keys: readonly string[]): void {
  const first = keys[0];
  if (first === undefined) return;
  const tag = hashTag(first);
  const stray = keys.find((key) => hashTag(key) !== tag);
  if (stray !== undefined) {
    throw new Error(
      `hot script '${script.name}' got keys '${first}' and '${stray}' in different cluster slots; give every key one hash tag, as hotKey() does`,
    );
  }
}

/** What Redis Cluster hashes: the text inside the first non-empty `{...}`, else the whole key. */
export function hashTag(key: string): string {
  const open = key.indexOf('{');
  if (open === -1) return key;
  const close = key.indexOf('}', open + 1);
  return close === -1 || close === open + 1 ? key : key.slice(open + 1, close);
}

/** Throws when a script uses syntax that Lua 5.4 accepts but Redis's Lua 5.1 does not. */
export function assertPortableLua(script: HotScript): void {
  const found = findLua54Syntax(script.lua);
  if (found !== undefined) {
    throw new Error(
      `hot script '${script.name}' uses ${found.what} at line ${found.line}, which Redis's Lua 5.1 does not support`,
    );
  }
}

interface Lua54Syntax {
  readonly what: string;
  readonly line: number;
}

/** A small lexer: skips strings and comments, then looks for 5.4-only tokens. */
export function findLua54Syntax(source: string): Lua54Syntax | undefined {
  let line = 1;
  let i = 0;
  const n = source.length;
  while (i < n) {
    const c = source[i]!;
    if (c === '\n') {
      line++;
      i++;
      continue;
    }
    if (c === '-' && source[i + 1] === '-') {
      const long = longBracketLevel(source, i + 2);
      if (long !== undefined) {
        const end = skipLongBracket(source, i + 2, long);
        line += countNewlines(source, i, end);
        i = end;
      } else {
        while (i < n && source[i] !== '\n') i++;
      }
      continue;
    }
    if (c === '[') {
      const long = longBracketLevel(source, i);
      if (long !== undefined) {
        const end = skipLongBracket(source, i, long);
        line += countNewlines(source, i, end);
        i = end;
        continue;
      }
    }
    if (c === '"' || c === "'") {
      i++;
      while (i < n && source[i] !== c) {
        if (source[i] === '\\') i++;
        if (source[i] === '\n') line++;
        i++;
      }
      i++;
      continue;
    }
    const two = source.slice(i, i + 2);
    if (two === '//') return { what: "integer division '//'", line };
    if (two === '::') return { what: "a goto label '::'", line };
    if (two === '<<' || two === '>>') return { what: `the bitwise operator '${two}'`, line };
    if (two === '~=' || two === '==' || two === '<=' || two === '>=') {
      i += 2;
      continue;
    }
    if (c === '&' || c === '|' || c === '~') return { what: `the bitwise operator '${c}'`, line };
    if (c === '<' && /^<\s*(const|close)\s*>/.test(source.slice(i, i + 12))) {
      return { what: 'a variable attribute (<const>/<close>)', line };
    }
    if (/[A-Za-z_]/.test(c)) {
      let j = i + 1;
      while (j < n && /[A-Za-z0-9_]/.test(source[j]!)) j++;
      if (source.slice(i, j) === 'goto') return { what: "'goto'", line };
      i = j;
      continue;
    }
    i++;
  }
  return undefined;
}

/** `[[`, `[=[`, ... at `at`: the number of `=`; otherwise undefined. */
function longBracketLevel(source: string, at: number): number | undefined {
  if (source[at] !== '[') return undefined;
  let j = at + 1;
  while (source[j] === '=') j++;
  return source[j] === '[' ? j - at - 1 : undefined;
}

function skipLongBracket(source: string, at: number, level: number): number {
  const close = `]${'='.repeat(level)}]`;
  const end = source.indexOf(close, at + level + 2);
  return end === -1 ? source.length : end + close.length;
}

function countNewlines(source: string, from: number, to: number): number {
  let count = 0;
  for (let k = from; k < to; k++) if (source[k] === '\n') count++;
  return count;
}
