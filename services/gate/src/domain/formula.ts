/**
 * Credit formulas: a CEL subset priced with exact decimals.
 *
 * cel-js only parses (so the syntax is real CEL); its evaluator computes in doubles, so the AST is
 * walked once into a tree of closures over bigints scaled by 10^18. Every number is the same exact
 * decimal type: there is no int/double split, so `7 / 2` is 3.5 and `1.1 * input_tokens` type-checks.
 * A dimension takes its type from where it is used: numeric next to numbers, a string next to strings.
 */
import { type ASTNode, parse } from '@marcbachmann/cel-js';

export class FormulaError extends Error {
  override readonly name = 'FormulaError';
  /** 1-based column (within its line) of the offending construct, when known. */
  readonly column: number | undefined;

  constructor(message: string, column?: number) {
    super(message);
    this.column = column;
  }
}

export interface CreditFormula {
  readonly source: string;
  /** Dimension names the formula reads (not including `units`). */
  readonly dimensions: readonly string[];
  /** The cost in micro-credits, rounded half away from zero to a whole micro-credit. Throws FormulaError on a negative or non-numeric result, a missing/non-numeric dimension, division by zero. */
  cost(units: bigint, dimensions: Readonly<Record<string, string | number>>): bigint;
}

const FRACTION_DIGITS = 18;
const SCALE = 10n ** 18n;
/** Micro-units (the `units` argument) to scaled decimals. */
const MICRO_TO_SCALED = 10n ** 12n;
const MAX_COST = 2n ** 53n;
const MAX_SOURCE_LENGTH = 1000;
const MAX_DEPTH = 64;
/** Longest numeric dimension text; bounds the BigInt parse on untrusted input. */
const MAX_NUMBER_TEXT = 64;
const ZEROS = '0'.repeat(FRACTION_DIGITS);

type Dims = Readonly<Record<string, string | number>>;
type Fn<T> = (units: bigint, dims: Dims) => T;

interface NumNode {
  readonly kind: 'num';
  readonly f: Fn<bigint>;
  /** The value when the subtree reads no variables (folded at compile time). */
  readonly k: bigint | undefined;
}
interface StrNode {
  readonly kind: 'str';
  readonly f: Fn<string>;
}
interface BoolNode {
  readonly kind: 'bool';
  readonly f: Fn<boolean>;
}
/** A dimension (or a ternary of dimensions): typed by its use. */
interface DynNode {
  readonly kind: 'dyn';
  readonly num: Fn<bigint>;
  readonly str: Fn<string>;
  readonly raw: Fn<string | number>;
}
type Typed = NumNode | StrNode | BoolNode | DynNode;

type Relation = '==' | '!=' | '<' | '<=' | '>' | '>=';
interface Where {
  error(message: string): FormulaError;
}

const EMPTY: Dims = Object.freeze({});

/** Parses and checks the supported subset once; throws FormulaError. Cache-friendly: call at configuration time. */
export function compileFormula(source: string): CreditFormula {
  if (typeof source !== 'string') throw new FormulaError('formula source must be a string');
  if (source.length > MAX_SOURCE_LENGTH)
    throw new FormulaError(`formula is too long (${source.length} characters, at most ${MAX_SOURCE_LENGTH})`);
  let ast: ASTNode;
  try {
    ast = parse(source).ast;
  } catch (error) {
    throw syntaxError(source, error);
  }
  const compiler = new Compiler(source);
  const root = compiler.compile(ast, 1);
  if (root.kind !== 'num' && root.kind !== 'dyn')
    throw compiler.error(`a formula must produce a number, got ${describe(root)}`, ast);
  const f = root.kind === 'num' ? root.f : root.num;
  return new CompiledFormula(source, Object.freeze([...compiler.dimensions]), f);
}

/** A flat rate (decimal text with at most 6 fractional digits, e.g. "0.002") times units (micro-units) -> micro-credits, rounded half away from zero. */
export function flatCost(rate: string, units: bigint): bigint {
  const perUnit = parseRate(rate);
  checkUnits(units);
  // (perUnit / 1e6 credits) * (units / 1e6) = perUnit * units / 1e6 micro-credits.
  const micros = divRound(perUnit * units, 1_000_000n);
  if (micros > MAX_COST) throw tooLarge();
  return micros;
}

class CompiledFormula implements CreditFormula {
  readonly source: string;
  readonly dimensions: readonly string[];
  readonly #f: Fn<bigint>;

  constructor(source: string, dimensions: readonly string[], f: Fn<bigint>) {
    this.source = source;
    this.dimensions = dimensions;
    this.#f = f;
  }

  cost(units: bigint, dimensions: Dims): bigint {
    checkUnits(units);
    const value = this.#f(units * MICRO_TO_SCALED, dimensions);
    // A negative formula is a pricing bug even when it would round to zero.
    if (value < 0n) throw new FormulaError(`formula result is negative (${formatScaled(value)})`);
    const micros = divRound(value, MICRO_TO_SCALED);
    if (micros > MAX_COST) throw tooLarge();
    return micros;
  }
}

class Compiler {
  readonly dimensions = new Set<string>();
  readonly #source: string;

  constructor(source: string) {
    this.#source = source;
  }

  error(message: string, node: { readonly pos: number }): FormulaError {
    return located(this.#source, message, node.pos);
  }

  compile(node: ASTNode, depth: number): Typed {
    if (depth > MAX_DEPTH) throw this.#tooDeep(node);
    const next = depth + 1;
    switch (node.op) {
      case 'value':
        return this.#literal(node);
      case 'id':
        return this.#identifier(node.args, node);
      case '.': {
        const [target, field] = node.args;
        if (next > MAX_DEPTH) throw this.#tooDeep(target);
        if (target.op === 'id' && target.args === 'dimensions') return this.#dimension(field);
        throw this.error('field access is only supported on dimensions (dimensions.name)', node);
      }
      case '[]': {
        const [target, key] = node.args;
        if (next > MAX_DEPTH) throw this.#tooDeep(key);
        if (target.op !== 'id' || target.args !== 'dimensions')
          throw this.error('indexing is only supported on dimensions (dimensions["name"])', node);
        if (key.op !== 'value' || typeof key.args !== 'string')
          throw this.error('dimensions[...] needs a string literal name', key);
        return this.#dimension(key.args);
      }
      case '+':
      case '-':
      case '*':
      case '/':
      case '%':
        return this.#arithmetic(node.op, node.args[0], node.args[1], node, next);
      case '==':
      case '!=':
      case '<':
      case '<=':
      case '>':
      case '>=':
        return this.#comparison(
          node.op,
          this.compile(node.args[0], next),
          this.compile(node.args[1], next),
          node,
        );
      case '&&':
      case '||': {
        const a = this.#asBool(this.compile(node.args[0], next), node.op, node.args[0]).f;
        const b = this.#asBool(this.compile(node.args[1], next), node.op, node.args[1]).f;
        const f: Fn<boolean> = node.op === '&&' ? (u, d) => a(u, d) && b(u, d) : (u, d) => a(u, d) || b(u, d);
        return { kind: 'bool', f };
      }
      case '!_': {
        const a = this.#asBool(this.compile(node.args, next), '!', node.args).f;
        return { kind: 'bool', f: (u, d) => !a(u, d) };
      }
      case '-_': {
        const a = this.#asNum(this.compile(node.args, next), 'unary -', node.args);
        const f = a.f;
        return this.#num((u, d) => -f(u, d), a.k !== undefined, node);
      }
      case '?:':
        return this.#ternary(node, next);
      case 'call':
        return this.#call(node.args[0], node.args[1], node, next);
      case 'rcall':
        throw this.error(`method calls (.${node.args[0]}()) are not supported in credit formulas`, node);
      case 'list':
        throw this.error('lists are not supported in credit formulas', node);
      case 'map':
        throw this.error('maps are not supported in credit formulas', node);
      case 'in':
        throw this.error("the 'in' operator is not supported in credit formulas", node);
      default:
        throw this.error(`'${node.op}' is not supported in credit formulas`, node);
    }
  }

  #tooDeep(node: { readonly pos: number }): FormulaError {
    return this.error(`formula is nested too deeply (at most ${MAX_DEPTH} levels)`, node);
  }

  #literal(node: Extract<ASTNode, { op: 'value' }>): Typed {
    const value = node.args;
    if (typeof value === 'string') return { kind: 'str', f: () => value };
    if (typeof value === 'boolean') return { kind: 'bool', f: () => value };
    if (value === null) throw this.error('null is not supported in credit formulas', node);
    if (value instanceof Uint8Array) throw this.error('bytes are not supported in credit formulas', node);
    // number, bigint or UnsignedInt: the library's value may be a double, so read the source text.
    const text = this.#source.slice(node.start, node.end);
    const k = parseLiteral(text);
    if (k === undefined)
      throw this.error(`number ${text} cannot be represented exactly (at most 18 fractional digits)`, node);
    return { kind: 'num', f: () => k, k };
  }

  #identifier(name: string, node: ASTNode): Typed {
    if (name === 'units') return { kind: 'num', f: (u) => u, k: undefined };
    if (name === 'dimensions')
      throw this.error('dimensions needs a name: dimensions.name or dimensions["name"]', node);
    return this.#dimension(name);
  }

  #dimension(name: string): DynNode {
    this.dimensions.add(name);
    return {
      kind: 'dyn',
      num: (_u, d) => {
        const v = d[name];
        if (typeof v === 'number' && Number.isSafeInteger(v)) return BigInt(v) * SCALE;
        return dimensionNumber(name, v, d);
      },
      str: (_u, d) => {
        const v = d[name];
        if (typeof v === 'string') return v;
        throw dimensionProblem(name, v, d, 'a string');
      },
      raw: (_u, d) => {
        const v = d[name];
        if (typeof v === 'string' || typeof v === 'number') return v;
        throw dimensionProblem(name, v, d, 'a number or a string');
      },
    };
  }

  /** Folds a subtree that reads no variables; its errors become compile errors. */
  #num(f: Fn<bigint>, constant: boolean, node: ASTNode): NumNode {
    if (!constant) return { kind: 'num', f, k: undefined };
    let k: bigint;
    try {
      k = f(0n, EMPTY);
    } catch (error) {
      if (error instanceof FormulaError)
        throw error.column === undefined ? this.error(error.message, node) : error;
      throw error;
    }
    return { kind: 'num', f: () => k, k };
  }

  #arithmetic(
    op: '+' | '-' | '*' | '/' | '%',
    left: ASTNode,
    right: ASTNode,
    node: ASTNode,
    next: number,
  ): NumNode {
    const a = this.#asNum(this.compile(left, next), `operator ${op}`, left);
    const b = this.#asNum(this.compile(right, next), `operator ${op}`, right);
    const fa = a.f;
    const fb = b.f;
    const constant = a.k !== undefined && b.k !== undefined;
    const where = this.#where(node);
    let f: Fn<bigint>;
    switch (op) {
      case '+':
        f = (u, d) => fa(u, d) + fb(u, d);
        break;
      case '-':
        f = (u, d) => fa(u, d) - fb(u, d);
        break;
      case '*':
        if (b.k !== undefined) f = scaleBy(fa, b.k, SCALE);
        else if (a.k !== undefined) f = scaleBy(fb, a.k, SCALE);
        else f = (u, d) => divRound(fa(u, d) * fb(u, d), SCALE);
        break;
      case '/':
        if (b.k === 0n) throw this.error('division by zero', node);
        if (b.k !== undefined) f = b.k > 0n ? scaleBy(fa, SCALE, b.k) : scaleBy(fa, -SCALE, -b.k);
        else
          f = (u, d) => {
            const x = fa(u, d);
            const y = fb(u, d);
            if (y === 0n) throw where.error('division by zero');
            return y > 0n ? divRound(x * SCALE, y) : divRound(-x * SCALE, -y);
          };
        break;
      case '%':
        if (b.k === 0n) throw this.error('modulo by zero', node);
        if (b.k !== undefined && b.k % SCALE !== 0n) throw this.error('% needs whole numbers', node);
        f = (u, d) => {
          const x = fa(u, d);
          const y = fb(u, d);
          if (x % SCALE !== 0n || y % SCALE !== 0n) throw where.error('% needs whole numbers');
          if (y === 0n) throw where.error('modulo by zero');
          // Scaled operands keep the scale: (X*S) % (Y*S) = (X % Y) * S, truncated like CEL.
          return x % y;
        };
        break;
    }
    return this.#num(f, constant, node);
  }

  #comparison(op: Relation, left: Typed, right: Typed, node: ASTNode): BoolNode {
    const lk = left.kind;
    const rk = right.kind;
    if ((lk === 'num' || rk === 'num') && lk !== 'str' && rk !== 'str' && lk !== 'bool' && rk !== 'bool')
      return { kind: 'bool', f: relation(op, numOf(left), numOf(right)) };
    if ((lk === 'str' || rk === 'str') && lk !== 'num' && rk !== 'num' && lk !== 'bool' && rk !== 'bool')
      return { kind: 'bool', f: relation(op, strOf(left), strOf(right)) };
    if (left.kind === 'bool' && right.kind === 'bool' && (op === '==' || op === '!=')) {
      const a = left.f;
      const b = right.f;
      return { kind: 'bool', f: op === '==' ? (u, d) => a(u, d) === b(u, d) : (u, d) => a(u, d) !== b(u, d) };
    }
    if (left.kind === 'dyn' && right.kind === 'dyn') {
      const a = left.raw;
      const b = right.raw;
      const test = ordering(op);
      const where = this.#where(node);
      return { kind: 'bool', f: (u, d) => test(compareDimensions(a(u, d), b(u, d), where)) };
    }
    throw this.error(`operator ${op} cannot compare ${describe(left)} with ${describe(right)}`, node);
  }

  #ternary(node: Extract<ASTNode, { op: '?:' }>, next: number): Typed {
    const [condNode, yesNode, noNode] = node.args;
    const cond = this.#asBool(this.compile(condNode, next), 'the ?: condition', condNode).f;
    const yes = this.compile(yesNode, next);
    const no = this.compile(noNode, next);
    if (yes.kind === 'dyn' && no.kind === 'dyn') {
      return {
        kind: 'dyn',
        num: pick(cond, yes.num, no.num),
        str: pick(cond, yes.str, no.str),
        raw: pick(cond, yes.raw, no.raw),
      };
    }
    const kind = yes.kind === 'dyn' ? no.kind : yes.kind;
    if ((yes.kind !== kind && yes.kind !== 'dyn') || (no.kind !== kind && no.kind !== 'dyn'))
      throw this.error(`the branches of ?: differ: ${describe(yes)} and ${describe(no)}`, node);
    if (kind === 'num') return { kind, f: pick(cond, numOf(yes), numOf(no)), k: undefined };
    if (kind === 'str') return { kind, f: pick(cond, strOf(yes), strOf(no)) };
    if (yes.kind === 'bool' && no.kind === 'bool') return { kind: 'bool', f: pick(cond, yes.f, no.f) };
    throw this.error('a dimension cannot be used as a boolean; compare it with a value', node);
  }

  #call(name: string, args: readonly ASTNode[], node: ASTNode, next: number): Typed {
    switch (name) {
      case 'has': {
        const arg = args[0];
        if (
          args.length !== 1 ||
          arg === undefined ||
          arg.op !== '.' ||
          arg.args[0].op !== 'id' ||
          arg.args[0].args !== 'dimensions'
        )
          throw this.error('has() takes one dimension: has(dimensions.name)', node);
        if (next + 1 > MAX_DEPTH) throw this.#tooDeep(arg);
        const dim = arg.args[1];
        this.dimensions.add(dim);
        return {
          kind: 'bool',
          f: (_u, d) => {
            const v = d[dim];
            return typeof v === 'number' || typeof v === 'string';
          },
        };
      }
      case 'min':
      case 'max': {
        if (args.length === 0) throw this.error(`${name}() needs at least one argument`, node);
        const nums = args.map((arg) => this.#asNum(this.compile(arg, next), `${name}()`, arg));
        const constant = nums.every((n) => n.k !== undefined);
        return this.#num(
          extremum(
            name,
            nums.map((n) => n.f),
          ),
          constant,
          node,
        );
      }
      case 'ceil':
      case 'floor':
      case 'round': {
        const arg = args[0];
        if (args.length !== 1 || arg === undefined)
          throw this.error(`${name}() takes exactly one argument`, node);
        const a = this.#asNum(this.compile(arg, next), `${name}()`, arg);
        const f = a.f;
        const whole = name === 'ceil' ? ceilScaled : name === 'floor' ? floorScaled : roundScaled;
        return this.#num((u, d) => whole(f(u, d)), a.k !== undefined, node);
      }
      default:
        throw this.error(`unknown function ${name}() (supported: min, max, ceil, floor, round, has)`, node);
    }
  }

  #asNum(t: Typed, what: string, node: ASTNode): NumNode {
    if (t.kind === 'num') return t;
    if (t.kind === 'dyn') return { kind: 'num', f: t.num, k: undefined };
    throw this.error(`${what} needs a number, got ${describe(t)}`, node);
  }

  #asBool(t: Typed, what: string, node: ASTNode): BoolNode {
    if (t.kind === 'bool') return t;
    if (t.kind === 'dyn')
      throw this.error(`${what} needs a boolean; compare the dimension with a value`, node);
    throw this.error(`${what} needs a boolean, got ${describe(t)}`, node);
  }

  /** Where an evaluation error points; the message is only built when one is thrown. */
  #where(node: ASTNode): Where {
    const source = this.#source;
    return { error: (message) => located(source, message, node.pos) };
  }
}

function describe(t: Typed): string {
  switch (t.kind) {
    case 'num':
      return 'a number';
    case 'str':
      return 'a string';
    case 'bool':
      return 'a boolean';
    case 'dyn':
      return 'a dimension';
  }
}

function numOf(t: Typed): Fn<bigint> {
  if (t.kind === 'num') return t.f;
  if (t.kind === 'dyn') return t.num;
  throw new Error(`unreachable: ${t.kind} is not numeric`);
}

function strOf(t: Typed): Fn<string> {
  if (t.kind === 'str') return t.f;
  if (t.kind === 'dyn') return t.str;
  throw new Error(`unreachable: ${t.kind} is not a string`);
}

function pick<T>(cond: Fn<boolean>, yes: Fn<T>, no: Fn<T>): Fn<T> {
  return (u, d) => (cond(u, d) ? yes(u, d) : no(u, d));
}

// String ordering is by UTF-16 code unit; it differs from CEL's code point order only past U+E000.
function relation<T extends bigint | string>(op: Relation, a: Fn<T>, b: Fn<T>): Fn<boolean> {
  switch (op) {
    case '==':
      return (u, d) => a(u, d) === b(u, d);
    case '!=':
      return (u, d) => a(u, d) !== b(u, d);
    case '<':
      return (u, d) => a(u, d) < b(u, d);
    case '<=':
      return (u, d) => a(u, d) <= b(u, d);
    case '>':
      return (u, d) => a(u, d) > b(u, d);
    case '>=':
      return (u, d) => a(u, d) >= b(u, d);
  }
}

function ordering(op: Relation): (c: number) => boolean {
  switch (op) {
    case '==':
      return (c) => c === 0;
    case '!=':
      return (c) => c !== 0;
    case '<':
      return (c) => c < 0;
    case '<=':
      return (c) => c <= 0;
    case '>':
      return (c) => c > 0;
    case '>=':
      return (c) => c >= 0;
  }
}

/** Two dimensions: numerically when both read as numbers, else as strings when both are strings. */
function compareDimensions(a: string | number, b: string | number, where: Where): number {
  const x = typeof a === 'number' ? numberValue(a) : parsePlainDecimal(a);
  const y = typeof b === 'number' ? numberValue(b) : parsePlainDecimal(b);
  if (x !== undefined && y !== undefined) return x < y ? -1 : x > y ? 1 : 0;
  if (typeof a === 'string' && typeof b === 'string') return a < b ? -1 : a > b ? 1 : 0;
  throw where.error(`cannot compare dimension values ${show(a)} and ${show(b)}`);
}

function extremum(name: 'min' | 'max', fs: readonly Fn<bigint>[]): Fn<bigint> {
  const [first, second] = fs;
  if (first === undefined) throw new Error('unreachable: extremum of nothing');
  if (second === undefined) return first;
  // Math.min/max would go through doubles; these stay on bigints.
  const better: (a: bigint, b: bigint) => boolean = name === 'min' ? (a, b) => a < b : (a, b) => a > b;
  if (fs.length === 2)
    return (u, d) => {
      const x = first(u, d);
      const y = second(u, d);
      return better(y, x) ? y : x;
    };
  return (u, d) => {
    let best = first(u, d);
    for (let i = 1; i < fs.length; i++) {
      const v = fs[i]!(u, d);
      if (better(v, best)) best = v;
    }
    return best;
  };
}

/** f * num / den rounded, with the ratio reduced at compile time (often to an exact integer multiply). */
function scaleBy(f: Fn<bigint>, num: bigint, den: bigint): Fn<bigint> {
  const g = gcd(num < 0n ? -num : num, den);
  const p = num / g;
  const q = den / g;
  if (q === 1n) return (u, d) => f(u, d) * p;
  return (u, d) => divRound(f(u, d) * p, q);
}

function gcd(a: bigint, b: bigint): bigint {
  while (b !== 0n) [a, b] = [b, a % b];
  return a === 0n ? 1n : a;
}

/** n / d rounded half away from zero; d > 0. */
function divRound(n: bigint, d: bigint): bigint {
  const q = n / d;
  const r = n % d;
  if (r === 0n) return q;
  if (r > 0n) return r * 2n >= d ? q + 1n : q;
  return -r * 2n >= d ? q - 1n : q;
}

function floorScaled(x: bigint): bigint {
  const r = x % SCALE;
  return r < 0n ? x - r - SCALE : x - r;
}

function ceilScaled(x: bigint): bigint {
  const r = x % SCALE;
  return r > 0n ? x - r + SCALE : x - r;
}

function roundScaled(x: bigint): bigint {
  const r = x % SCALE;
  if (r === 0n) return x;
  if (r > 0n) return r * 2n >= SCALE ? x - r + SCALE : x - r;
  return -r * 2n >= SCALE ? x - r - SCALE : x - r;
}

const LITERAL = /^(\d+)(?:\.(\d+))?(?:[eE]([+-]?\d+))?$/;

/** CEL number literal text -> scaled value, exactly; undefined when it needs more than 18 fractional digits. */
function parseLiteral(text: string): bigint | undefined {
  // CEL's unsigned suffix changes the type, not the value.
  const t = /[uU]$/.test(text) ? text.slice(0, -1) : text;
  if (/^0[xX][0-9a-fA-F]+$/.test(t)) return BigInt(t) * SCALE;
  const m = LITERAL.exec(t);
  if (!m) return undefined;
  const [, whole = '', fraction = '', exponent = '0'] = m;
  const e = Number(exponent);
  // The parser already refuses infinities; this bounds 10^n for tiny exponents such as 1e-999999.
  if (e > 400 || e < -1000) return undefined;
  const mantissa = BigInt(whole + fraction);
  const shift = FRACTION_DIGITS + e - fraction.length;
  if (shift >= 0) return mantissa * 10n ** BigInt(shift);
  const divisor = 10n ** BigInt(-shift);
  return mantissa % divisor === 0n ? mantissa / divisor : undefined;
}

/** "-12", "0.5" -> scaled value; undefined for anything else (signs other than '-', exponents, spaces). */
function parsePlainDecimal(s: string): bigint | undefined {
  const n = s.length;
  if (n === 0 || n > MAX_NUMBER_TEXT) return undefined;
  const negative = s.charCodeAt(0) === 45;
  const start = negative ? 1 : 0;
  let i = start;
  while (i < n && isDigit(s.charCodeAt(i))) i++;
  if (i === start) return undefined;
  let digits: string;
  if (i === n) {
    digits = s.slice(start) + ZEROS;
  } else {
    if (s.charCodeAt(i) !== 46 || i + 1 === n) return undefined;
    const point = i;
    for (i = point + 1; i < n; i++) if (!isDigit(s.charCodeAt(i))) return undefined;
    let end = n;
    while (end - point - 1 > FRACTION_DIGITS && s.charCodeAt(end - 1) === 48) end--;
    const fractionLength = end - point - 1;
    if (fractionLength > FRACTION_DIGITS) return undefined;
    digits = s.slice(start, point) + s.slice(point + 1, end) + ZEROS.slice(fractionLength);
  }
  const value = BigInt(digits);
  return negative ? -value : value;
}

function isDigit(code: number): boolean {
  return code >= 48 && code <= 57;
}

/** A JS number by its shortest round-trip text (what the caller wrote); exponent forms are refused. */
function numberValue(v: number): bigint | undefined {
  if (Number.isSafeInteger(v)) return BigInt(v) * SCALE;
  if (!Number.isFinite(v)) return undefined;
  const text = String(v);
  return text.includes('e') ? undefined : parsePlainDecimal(text);
}

function dimensionNumber(name: string, v: unknown, d: Dims): bigint {
  let value: bigint | undefined;
  if (typeof v === 'number') value = numberValue(v);
  else if (typeof v === 'string') value = parsePlainDecimal(v);
  else throw dimensionProblem(name, v, d, 'a number');
  if (value === undefined)
    throw new FormulaError(
      `dimension ${JSON.stringify(name)} is not a plain decimal number (at most 18 fractional digits): ${show(v)}`,
    );
  return value;
}

function dimensionProblem(name: string, v: unknown, d: Dims, wanted: string): FormulaError {
  const quoted = JSON.stringify(name);
  // Inherited properties (e.g. "constructor") count as missing.
  if (v === undefined || !Object.hasOwn(d, name))
    return new FormulaError(`dimension ${quoted} is missing (guard it with has() if it is optional)`);
  return new FormulaError(`dimension ${quoted} must be ${wanted}, got ${show(v)}`);
}

function show(v: unknown): string {
  if (typeof v === 'string') return JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}...` : v);
  if (typeof v === 'number') return String(v);
  return typeof v;
}

function parseRate(rate: string): bigint {
  const n = typeof rate === 'string' ? rate.length : 0;
  let i = 0;
  while (i < n && isDigit(rate.charCodeAt(i))) i++;
  const wholeEnd = i;
  let ok = wholeEnd > 0 && wholeEnd <= 16;
  let fraction = '';
  if (ok && i < n) {
    ok = rate.charCodeAt(i) === 46;
    for (i++; i < n && ok; i++) ok = isDigit(rate.charCodeAt(i));
    fraction = rate.slice(wholeEnd + 1);
    ok &&= fraction.length >= 1 && fraction.length <= 6;
  }
  if (!ok)
    throw new FormulaError(
      `a flat rate must be a non-negative decimal with at most 6 fractional digits, got ${show(rate)}`,
    );
  return BigInt(rate.slice(0, wholeEnd) + fraction.padEnd(6, '0'));
}

function checkUnits(units: bigint): void {
  if (typeof units !== 'bigint' || units < 0n)
    throw new FormulaError(`units must be a non-negative bigint count of micro-units, got ${String(units)}`);
}

function tooLarge(): FormulaError {
  return new FormulaError(`cost too large (more than 2^53 micro-credits)`);
}

function formatScaled(x: bigint): string {
  const negative = x < 0n;
  const abs = negative ? -x : x;
  const fraction = (abs % SCALE).toString().padStart(FRACTION_DIGITS, '0').replace(/0+$/, '');
  return `${negative ? '-' : ''}${abs / SCALE}${fraction ? `.${fraction}` : ''}`;
}

function position(source: string, offset: number): { line: number; column: number } {
  let line = 1;
  let lineStart = 0;
  for (let i = 0; i < offset && i < source.length; i++)
    if (source.charCodeAt(i) === 10) {
      line++;
      lineStart = i + 1;
    }
  return { line, column: offset - lineStart + 1 };
}

function located(source: string, message: string, offset: number): FormulaError {
  const { line, column } = position(source, offset);
  const where = line === 1 ? `column ${column}` : `line ${line}, column ${column}`;
  return new FormulaError(`${message} (at ${where})`, column);
}

function syntaxError(source: string, error: unknown): FormulaError {
  if (!(error instanceof Error)) return new FormulaError(`syntax error: ${String(error)}`);
  const e = error as Error & { summary?: unknown; range?: { start?: unknown } };
  const summary = typeof e.summary === 'string' ? e.summary : e.message;
  const message = /maxDepth/.test(summary)
    ? `formula is nested too deeply (at most ${MAX_DEPTH} levels)`
    : `syntax error: ${summary}`;
  const start = e.range?.start;
  return typeof start === 'number' ? located(source, message, start) : new FormulaError(message);
}
