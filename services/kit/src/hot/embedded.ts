/**
 * The embedded hot state: Redis's keyspace semantics in process (keyspace.ts) and the *same
 * Lua source* as production, run in a Lua VM (wasmoon: Lua 5.4 compiled to WebAssembly).
 *
 * Redis runs Lua 5.1, so a script must stay inside what both read the same way; script.ts
 * lists the rules and rejects 5.4-only syntax on both adapters, lua-prelude.ts gives scripts
 * Redis's environment (read-only globals, `redis.*`, `cjson`, 5.1 library names).
 *
 * Atomicity: a command or a whole script runs synchronously, Lua and keyspace alike, inside one
 * turn of the event loop, so nothing can interleave with it; there is no lock because there is
 * nothing to wait for. Calls therefore also apply in the order they are made, as Redis applies
 * one connection's commands. Time is frozen for the length of a script, as on Redis.
 *
 * Values cross the JS/Lua boundary by reading and writing the Lua stack directly, so types are
 * exact: integer replies become Lua integers, nil bulk replies `false`, status replies
 * `{ok = ...}`, errors `{err = ...}`; and back, a script's return value converts as Redis
 * converts it (numbers truncate to integers, tables become arrays up to the first nil, `true` is
 * 1, `false` and nil are null).
 */
import { createHash } from 'node:crypto';
import {
  decorateFunction,
  LUA_REGISTRYINDEX,
  type LuaEngine,
  LuaFactory,
  LuaRawResult,
  type LuaThread,
  type LuaWasm,
} from 'wasmoon';
import { CommandError, Keyspace, type KeyspaceReply, Status } from './keyspace.ts';
import { LUA_PRELUDE } from './lua-prelude.ts';
import { type HotArg, type HotReply, HotReplyError, type HotScript, type HotState } from './port.ts';
import { formatDouble, hotArgToString, luaNumberToInteger, singleLine } from './reply.ts';
import { assertOneHashTag, type PreparedScript, ScriptCatalog } from './script.ts';

export interface EmbeddedHotStateOptions {
  /** Prepended to every key, as the Redis adapter does, so scripts see the same KEYS. */
  readonly prefix?: string;
  /** Milliseconds since the epoch; tests inject one to move time without sleeping. */
  readonly clock?: () => number;
  /** A script running longer is aborted with an error (Redis would answer BUSY meanwhile). */
  readonly scriptTimeLimitMs?: number;
}

// Lua type tags (lua.h).
const T_NIL = 0;
const T_BOOLEAN = 1;
const T_NUMBER = 3;
const T_STRING = 4;
const T_TABLE = 5;
/** Redis refuses to convert deeper replies too (a table that contains itself, say). */
const MAX_REPLY_DEPTH = 100;
const SWEEP_INTERVAL_MS = 1000;
const LUA_MASKCOUNT = 8;
/** How many VM instructions run between two looks at the clock for the script time limit. */
const HOOK_INSTRUCTIONS = 10_000;

/** Raw emscripten exports: exact, length-delimited strings and the time-limit hook. */
interface RawLuaModule {
  readonly HEAPU8: Uint8Array;
  readonly HEAPU32: Uint32Array;
  addFunction(fn: (L: number, debug: number) => void, signature: string): number;
  removeFunction(pointer: number): void;
  _malloc(size: number): number;
  _free(pointer: number): void;
  _lua_tolstring(L: number, index: number, lengthPointer: number): number;
  _lua_pushlstring(L: number, pointer: number, length: number): number;
}

let factory: LuaFactory | undefined;

export class EmbeddedHotState implements HotState {
  readonly kind = 'embedded' as const;
  private readonly keyspace: Keyspace;
  /** Prepended to every key this adapter touches. */
  readonly prefix: string;
  private readonly scripts = new ScriptCatalog();
  private readonly compiled = new Set<string>();
  private readonly vm: LuaBridge;
  private readonly sweeper: NodeJS.Timeout;
  private closed = false;

  private constructor(engine: LuaEngine, options: EmbeddedHotStateOptions) {
    this.prefix = options.prefix ?? '';
    this.keyspace = new Keyspace(options.clock === undefined ? {} : { clock: options.clock });
    this.vm = new LuaBridge(engine, this.keyspace, options.scriptTimeLimitMs ?? 5000);
    this.sweeper = setInterval(() => this.keyspace.sweepExpired(), SWEEP_INTERVAL_MS);
    this.sweeper.unref();
  }

  static async open(options: EmbeddedHotStateOptions = {}): Promise<EmbeddedHotState> {
    factory ??= new LuaFactory();
    const engine = await factory.createEngine({ injectObjects: false, enableProxy: false });
    return new EmbeddedHotState(engine, options);
  }

  // No `await` in run() or call(): each runs to completion synchronously, which is the atomicity.
  async run(script: HotScript, keys: readonly string[], args: readonly HotArg[]): Promise<HotReply> {
    this.assertOpen();
    const prepared = this.scripts.prepare(script);
    assertOneHashTag(prepared, keys);
    this.compile(prepared);
    const fullKeys = keys.map((key) => this.prefix + key);
    const argv = args.map(hotArgToString);
    return this.keyspace.atomically(() => this.vm.run(prepared.sha, fullKeys, argv));
  }

  async call(command: string, ...args: HotArg[]): Promise<HotReply> {
    this.assertOpen();
    const argv = [command, ...args.map(hotArgToString)];
    for (const i of this.keyspace.keyPositions(argv)) argv[i] = this.prefix + argv[i];
    try {
      return toHotReply(this.keyspace.exec(argv, 'client'));
    } catch (error) {
      if (error instanceof CommandError) throw new HotReplyError(error.message);
      throw error;
    }
  }

  async ping(): Promise<void> {
    this.assertOpen();
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.sweeper);
    this.vm.close();
  }

  private compile(script: PreparedScript): void {
    if (this.compiled.has(script.sha)) return;
    this.vm.compile(script);
    this.compiled.add(script.sha);
  }

  private assertOpen(): void {
    if (this.closed) throw new Error('the embedded hot state is closed');
  }
}

function toHotReply(reply: KeyspaceReply): HotReply {
  if (reply instanceof Status) return reply.value;
  if (Array.isArray(reply)) return reply.map(toHotReply);
  return reply;
}

/** One Lua state, the prelude loaded, and the stack-level conversions both ways. */
class LuaBridge {
  private readonly L: number;
  private readonly lua: LuaWasm;
  private readonly raw: RawLuaModule;
  private readonly lengthPointer: number;
  private readonly hookPointer: number;
  /** When the running script must stop; infinite between scripts. */
  private deadline = Number.POSITIVE_INFINITY;
  private scratch = { pointer: 0, size: 0 };
  private readonly encoder = new TextEncoder();
  private readonly decoder = new TextDecoder();

  constructor(
    private readonly engine: LuaEngine,
    private readonly keyspace: Keyspace,
    private readonly timeLimitMs: number,
  ) {
    this.L = engine.global.address;
    this.lua = engine.global.lua;
    this.raw = this.lua.module as unknown as RawLuaModule;
    this.lengthPointer = this.raw._malloc(4);
    const raw = { receiveThread: true, receiveArgsQuantity: true };
    engine.global.set('__hot_call', decorateFunction(this.dispatch(true), raw));
    engine.global.set('__hot_pcall', decorateFunction(this.dispatch(false), raw));
    engine.global.set('__hot_sha1hex', (text: string) => createHash('sha1').update(text).digest('hex'));
    engine.global.set('__hot_cfunction', decorateFunction(this.asCFunction, raw));
    engine.global.set('__hot_expired', () => Date.now() > this.deadline);
    this.lua.lua_pushlightuserdata(this.L, null);
    this.lua.lua_setglobal(this.L, '__hot_null');
    engine.doStringSync(LUA_PRELUDE);
    // One count hook for the life of the VM (wasmoon's own timeout re-registers a function each
    // time it is set); it raises inside the script, whose handler turns it into an error reply.
    this.hookPointer = this.raw.addFunction((L) => {
      if (Date.now() <= this.deadline) return;
      this.pushString(`script exceeded the embedded time limit of ${this.timeLimitMs} ms`, L);
      this.lua.lua_error(L);
    }, 'vii');
    this.lua.lua_sethook(this.L, this.hookPointer, LUA_MASKCOUNT, HOOK_INSTRUCTIONS);
  }

  compile(script: PreparedScript): void {
    const { L, lua } = this;
    const base = lua.lua_gettop(L);
    try {
      lua.lua_getglobal(L, '__hot_compile');
      this.pushString(script.sha);
      this.pushString(script.lua);
      this.call(2, 1);
      if (lua.lua_type(L, -1) === T_STRING) {
        throw new HotReplyError(`ERR Error compiling script (new function): ${this.readString(-1)}`);
      }
    } finally {
      lua.lua_settop(L, base);
    }
  }

  run(sha: string, keys: readonly string[], argv: readonly string[]): HotReply {
    const { L, lua } = this;
    const base = lua.lua_gettop(L);
    try {
      lua.lua_getglobal(L, '__hot_run');
      this.pushString(sha);
      this.pushStringArray(keys);
      this.pushStringArray(argv);
      this.deadline = Date.now() + this.timeLimitMs;
      this.call(3, 2);
      if (lua.lua_toboolean(L, -2)) return this.toReply(lua.lua_absindex(L, -1), 0);
      throw this.scriptError(sha, lua.lua_absindex(L, -1));
    } finally {
      this.deadline = Number.POSITIVE_INFINITY;
      lua.lua_settop(L, base);
    }
  }

  close(): void {
    this.lua.lua_sethook(this.L, null, 0, 0);
    this.raw.removeFunction(this.hookPointer);
    this.raw._free(this.lengthPointer);
    if (this.scratch.size > 0) this.raw._free(this.scratch.pointer);
    this.engine.global.close();
  }

  /**
   * `redis.call` (raising) and `redis.pcall` (returning the error table). They are C functions
   * to Lua, as on Redis, so `return redis.call(...)` keeps the script's frame on the stack (a
   * tail call to a Lua function would replace it) and the error names the script's line.
   */
  private dispatch(raise: boolean): (thread: LuaThread, argc: number) => LuaRawResult {
    return (thread, argc) => {
      const L = thread.address;
      let reply: KeyspaceReply;
      try {
        reply = this.keyspace.exec(this.readCommand(L, argc), 'script');
      } catch (error) {
        const message =
          error instanceof CommandError || error instanceof HotReplyError
            ? error.message
            : `ERR embedded hot state failure: ${error instanceof Error ? error.message : String(error)}`;
        this.pushErrorTable(L, message);
        // lua_error unwinds to the script's protected call and does not return.
        return new LuaRawResult(raise ? this.lua.lua_error(L) : 1);
      }
      this.pushReply(L, reply);
      return new LuaRawResult(1);
    };
  }

  /**
   * Wraps a Lua function (on the stack) in a C function. The prelude's library functions that
   * raise (`cjson.*`) go through it so they sit on the stack as Redis's C functions do: a
   * script's `return cjson.decode(x)` then keeps its own frame, and the error its line.
   */
  private readonly asCFunction = (thread: LuaThread): LuaRawResult => {
    const L = thread.address;
    const { lua } = this;
    const ref = lua.luaL_ref(L, LUA_REGISTRYINDEX);
    const trampoline = (inner: LuaThread, argc: number): LuaRawResult => {
      const IL = inner.address;
      lua.lua_rawgeti(IL, LUA_REGISTRYINDEX, BigInt(ref));
      lua.lua_rotate(IL, 1, 1);
      lua.lua_callk(IL, argc, -1, 0, null);
      return new LuaRawResult(lua.lua_gettop(IL));
    };
    thread.pushValue(decorateFunction(trampoline, { receiveThread: true, receiveArgsQuantity: true }));
    return new LuaRawResult(1);
  };

  private readCommand(L: number, argc: number): string[] {
    if (argc === 0)
      throw new HotReplyError('ERR Please specify at least one argument for this redis lib call');
    const argv: string[] = [];
    for (let i = 1; i <= argc; i++) {
      const type = this.lua.lua_type(L, i);
      if (type === T_STRING) argv.push(this.readString(i, L));
      else if (type === T_NUMBER) argv.push(this.readNumberArgument(L, i));
      else throw new HotReplyError('ERR Lua redis lib command arguments must be strings or integers');
    }
    return argv;
  }

  /** Redis formats a number argument with %.17g; an integer prints as itself. */
  private readNumberArgument(L: number, index: number): string {
    if (this.lua.lua_isinteger(L, index)) return this.lua.lua_tointegerx(L, index, null).toString();
    return formatDouble(this.lua.lua_tonumberx(L, index, null));
  }

  private pushReply(L: number, reply: KeyspaceReply): void {
    const { lua } = this;
    if (reply === null) lua.lua_pushboolean(L, 0);
    else if (typeof reply === 'number') {
      if (Number.isSafeInteger(reply)) lua.lua_pushinteger(L, BigInt(reply));
      else lua.lua_pushnumber(L, reply);
    } else if (typeof reply === 'string') this.pushString(reply, L);
    else if (reply instanceof Status) {
      lua.lua_createtable(L, 0, 1);
      this.pushString(reply.value, L);
      lua.lua_setfield(L, -2, 'ok');
    } else {
      lua.lua_createtable(L, reply.length, 0);
      reply.forEach((item, i) => {
        this.pushReply(L, item);
        lua.lua_rawseti(L, -2, BigInt(i + 1));
      });
    }
  }

  private pushErrorTable(L: number, message: string): void {
    this.lua.lua_createtable(L, 0, 1);
    this.pushString(message, L);
    this.lua.lua_setfield(L, -2, 'err');
  }

  /** A script's return value, converted as Redis converts a Lua value to a reply. */
  private toReply(index: number, depth: number): HotReply {
    const { L, lua } = this;
    switch (lua.lua_type(L, index)) {
      case T_NUMBER:
        return lua.lua_isinteger(L, index)
          ? luaNumberToInteger(Number(lua.lua_tointegerx(L, index, null)))
          : luaNumberToInteger(lua.lua_tonumberx(L, index, null));
      case T_STRING:
        return this.readString(index);
      case T_BOOLEAN:
        return lua.lua_toboolean(L, index) ? 1 : null;
      case T_TABLE:
        return this.tableToReply(index, depth);
      default:
        // nil, functions, userdata (cjson.null included): Redis answers nil.
        return null;
    }
  }

  private tableToReply(index: number, depth: number): HotReply {
    const { L, lua } = this;
    if (depth >= MAX_REPLY_DEPTH) throw new HotReplyError('ERR reached lua stack limit');
    const top = lua.lua_gettop(L);
    try {
      if (this.rawField(index, 'err') === T_STRING) throw new HotReplyError(singleLine(this.readString(-1)));
      lua.lua_settop(L, top);
      if (this.rawField(index, 'ok') === T_STRING) return singleLine(this.readString(-1));
      lua.lua_settop(L, top);
      const items: HotReply[] = [];
      for (let i = 1; ; i++) {
        if (lua.lua_rawgeti(L, index, BigInt(i)) === T_NIL) break;
        items.push(this.toReply(lua.lua_gettop(L), depth + 1));
        lua.lua_settop(L, top);
      }
      return items;
    } finally {
      lua.lua_settop(L, top);
    }
  }

  /** Pushes `t[name]` without metamethods (a script may return a read-only proxy). */
  private rawField(index: number, name: string): number {
    this.pushString(name);
    return this.lua.lua_rawget(this.L, index);
  }

  /** The handler's `{err, line}` as Redis words an error raised by a script. */
  private scriptError(sha: string, index: number): HotReplyError {
    const { L, lua } = this;
    lua.lua_getfield(L, index, 'err');
    const message = lua.lua_type(L, -1) === T_STRING ? this.readString(-1) : 'ERR unknown script error';
    const hasLine = lua.lua_getfield(L, index, 'line') === T_NUMBER;
    const line = hasLine ? Number(lua.lua_tointegerx(L, -1, null)) : undefined;
    const text = line === undefined ? message : `${message} script: ${sha}, on @user_script:${line}.`;
    return new HotReplyError(singleLine(text));
  }

  /** lua_call under a protected call: only the prelude's own failures land here. */
  private call(nargs: number, nresults: number): void {
    const status = this.lua.lua_pcallk(this.L, nargs, nresults, 0, 0, null);
    if (status !== 0) {
      const detail = this.lua.lua_type(this.L, -1) === T_STRING ? this.readString(-1) : `status ${status}`;
      throw new Error(`embedded Lua VM failure: ${detail}`);
    }
  }

  private pushStringArray(values: readonly string[]): void {
    this.lua.lua_createtable(this.L, values.length, 0);
    values.forEach((value, i) => {
      this.pushString(value);
      this.lua.lua_rawseti(this.L, -2, BigInt(i + 1));
    });
  }

  /** Length-delimited, so NUL bytes survive; text is UTF-8 on the Lua side. */
  private pushString(value: string, L = this.L): void {
    const capacity = value.length * 3;
    if (capacity > this.scratch.size) {
      if (this.scratch.size > 0) this.raw._free(this.scratch.pointer);
      const size = Math.max(capacity, 256);
      this.scratch = { pointer: this.raw._malloc(size), size };
    }
    const { pointer, size } = this.scratch;
    const { written } = this.encoder.encodeInto(value, this.raw.HEAPU8.subarray(pointer, pointer + size));
    this.raw._lua_pushlstring(L, pointer, written);
  }

  private readString(index: number, L = this.L): string {
    const pointer = this.raw._lua_tolstring(L, index, this.lengthPointer);
    const length = this.raw.HEAPU32[this.lengthPointer >>> 2]!;
    return this.decoder.decode(this.raw.HEAPU8.subarray(pointer, pointer + length));
  }
}
