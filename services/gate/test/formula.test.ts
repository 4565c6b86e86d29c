import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { compileFormula, FormulaError, flatCost } from '../src/domain/formula.ts';

type Dims = Record<string, string | number>;

/** Whole units -> micro-units. */
const u = (units: number) => BigInt(units) * 1_000_000n;

const cost = (source: string, units: bigint = 0n, dims: Dims = {}) =>
  compileFormula(source).cost(units, dims);

function compileError(source: string): FormulaError {
  try {
    compileFormula(source);
  } catch (error) {
    expect(error).toBeInstanceOf(FormulaError);
    return error as FormulaError;
  }
  throw new Error(`expected ${source} not to compile`);
}

function costError(source: string, units: bigint, dims: Dims): FormulaError {
  const formula = compileFormula(source);
  try {
    formula.cost(units, dims);
  } catch (error) {
    expect(error).toBeInstanceOf(FormulaError);
    return error as FormulaError;
  }
  throw new Error(`expected ${source} to fail`);
}

describe('compileFormula: examples', () => {
  it('prices tokens with decimal weights', () => {
    const formula = compileFormula('1.1*input_tokens + 5*output_tokens');
    expect(formula.source).toBe('1.1*input_tokens + 5*output_tokens');
    expect(formula.dimensions).toEqual(['input_tokens', 'output_tokens']);
    // 1100 + 1000 credits
    expect(formula.cost(0n, { input_tokens: 1000, output_tokens: 200 })).toBe(2_100_000_000n);
    // Numeric strings work like numbers: 1320 + 15 credits.
    expect(formula.cost(0n, { input_tokens: '1200', output_tokens: '3' })).toBe(1_335_000_000n);
    expect(formula.cost(0n, { input_tokens: 1, output_tokens: 0 })).toBe(1_100_000n);
  });

  it('switches rate on a string dimension with a ternary', () => {
    const formula = compileFormula('model == "gpt-5" ? units * 0.01 : units * 0.002');
    expect(formula.dimensions).toEqual(['model']);
    expect(formula.cost(1_500_000n, { model: 'gpt-5' })).toBe(15_000n);
    expect(formula.cost(1_500_000n, { model: 'gpt-4o' })).toBe(3_000n);
    expect(formula.cost(0n, { model: 'gpt-5' })).toBe(0n);
  });

  it('supports the other string comparisons and != ', () => {
    expect(cost('tier != "free" ? 2 : 1', 0n, { tier: 'pro' })).toBe(2_000_000n);
    expect(cost('tier != "free" ? 2 : 1', 0n, { tier: 'free' })).toBe(1_000_000n);
    expect(cost('region < "m" ? 1 : 2', 0n, { region: 'eu' })).toBe(1_000_000n);
    expect(cost('region >= "m" ? 1 : 2', 0n, { region: 'eu' })).toBe(2_000_000n);
  });

  it('reads dimensions bare, as dimensions.x and as dimensions["x"]', () => {
    const formula = compileFormula('a + dimensions.b + dimensions["c-d"] + dimensions.a');
    expect(formula.dimensions).toEqual(['a', 'b', 'c-d']);
    expect(formula.cost(0n, { a: 1, b: 2, 'c-d': '3' })).toBe(7_000_000n);
    // `units` and `dimensions` are reserved names; such dimensions are reached through dimensions.
    expect(cost('dimensions.units * units', u(2), { units: 3 })).toBe(6_000_000n);
  });

  it('is exact where binary floating point is not', () => {
    expect(0.1 * 3 + 0.2 * 3).not.toBe(0.9);
    expect(cost('0.1 * units + 0.2 * units', u(3))).toBe(900_000n);
    expect(cost('0.1 + 0.2 == 0.3 ? 1 : 0')).toBe(1_000_000n);
    expect(cost('x + y == 0.3 ? 1 : 0', 0n, { x: 0.1, y: 0.2 })).toBe(1_000_000n);
    expect(cost('x * 3 == 0.3 ? 1 : 0', 0n, { x: '0.1' })).toBe(1_000_000n);
    // 1.005 is 1.00499999999999989... as a double; here it is exactly 1.005.
    expect(cost('1.005 * units * 0.001', u(1))).toBe(1005n);
    expect(cost('units * 1.1', 3_000_001n)).toBe(3_300_001n);
  });

  it('rounds half away from zero at the sixth decimal', () => {
    expect(cost('0.0000005')).toBe(1n);
    expect(cost('0.000000499999999999')).toBe(0n);
    expect(cost('0.0000015')).toBe(2n);
    // Half-even would give 2 here.
    expect(cost('0.0000025')).toBe(3n);
    expect(cost('1.0000005')).toBe(1_000_001n);
    expect(cost('units * 0.5', 1n)).toBe(1n);
    expect(cost('units * 0.4999', 1n)).toBe(0n);
    // 1 micro-unit at 0.002 per unit is 0.002 micro-credits.
    expect(cost('units * 0.002', 1n)).toBe(0n);
    expect(cost('units * 0.002', 250n)).toBe(1n);
    expect(cost('units * 0.002', 249n)).toBe(0n);
  });

  it('divides to 18 digits, rounding half away from zero', () => {
    expect(cost('units / 3', u(1))).toBe(333_333n);
    expect(cost('2 / 3')).toBe(666_667n);
    expect(cost('1 / 3 * 3')).toBe(1_000_000n);
    // 2/3 is 0.666666666666666667 at 18 digits; times 10^6 that is 666666.666666666667 credits.
    expect(cost('2 / 3 * 1000000')).toBe(666_666_666_667n);
    expect(cost('7 / 2')).toBe(3_500_000n);
    expect(cost('units / x', u(10), { x: 4 })).toBe(2_500_000n);
    expect(cost('units / -x * -1', u(10), { x: 4 })).toBe(2_500_000n);
    expect(cost('1 / 0.000000000000000003 / 1000000000000000000')).toBe(333_333n);
  });

  it('supports % on whole numbers', () => {
    expect(cost('input_tokens % 1000', 0n, { input_tokens: 12_345 })).toBe(345_000_000n);
    expect(cost('x % y', 0n, { x: '10', y: 3 })).toBe(1_000_000n);
    expect(cost('-7 % 3 + 2')).toBe(1_000_000n);
    expect(cost('7.0 % 2')).toBe(1_000_000n);
  });

  it('supports unary minus, parentheses and boolean logic', () => {
    expect(cost('-(-units)', u(2))).toBe(2_000_000n);
    expect(cost('(units + 1) * 2', u(2))).toBe(6_000_000n);
    expect(cost('10 - units - 1', u(2))).toBe(7_000_000n);
    expect(cost('x > 1 && y > 1 ? 1 : 2', 0n, { x: 2, y: 2 })).toBe(1_000_000n);
    expect(cost('x > 1 && y > 1 ? 1 : 2', 0n, { x: 2, y: 0 })).toBe(2_000_000n);
    expect(cost('x > 1 || y > 1 ? 1 : 2', 0n, { x: 0, y: 2 })).toBe(1_000_000n);
    expect(cost('!(x > 1) ? 1 : 2', 0n, { x: 0 })).toBe(1_000_000n);
    expect(cost('(x > 1) == true ? 1 : 2', 0n, { x: 5 })).toBe(1_000_000n);
    expect(cost('x <= 1 ? 1 : x >= 3 ? 3 : 2', 0n, { x: 2 })).toBe(2_000_000n);
    expect(cost('true ? 4 : 5')).toBe(4_000_000n);
  });

  it('compares two dimensions as numbers when both are numeric, else as strings', () => {
    const formula = compileFormula('a > b ? 1 : 2');
    expect(formula.cost(0n, { a: '10', b: 9 })).toBe(1_000_000n);
    expect(formula.cost(0n, { a: 'b', b: 'a' })).toBe(1_000_000n);
    expect(cost('a == b ? 1 : 2', 0n, { a: '1.50', b: 1.5 })).toBe(1_000_000n);
    expect(() => formula.cost(0n, { a: 'x', b: 1 })).toThrow(/cannot compare dimension values "x" and 1/);
    // A ternary of dimensions is still a dimension.
    expect(cost('(p > 0 ? a : b) * 2', 0n, { p: 1, a: 3, b: 4 })).toBe(6_000_000n);
  });

  it('reads JS numbers by their shortest decimal text', () => {
    expect(cost('x * 3', 0n, { x: 0.1 })).toBe(300_000n);
    expect(cost('x / 100000000000000000000', 0n, { x: 1e20 })).toBe(1_000_000n);
    expect(cost('x * 1000000', 0n, { x: 0.000001 })).toBe(1_000_000n);
    expect(cost('x', 0n, { x: -0 })).toBe(0n);
    expect(cost('x + 1', 0n, { x: '-0.5' })).toBe(500_000n);
    expect(cost('x', 0n, { x: '0.100000000000000000000000' })).toBe(100_000n);
  });

  it('supports min, max, ceil, floor and round', () => {
    expect(cost('max(1, units * 0.002)', u(100))).toBe(1_000_000n);
    expect(cost('max(1, units * 0.002)', u(1000))).toBe(2_000_000n);
    expect(cost('min(5, x, y)', 0n, { x: 3, y: '4' })).toBe(3_000_000n);
    expect(cost('min(5, x, y, 9)', 0n, { x: 6, y: '4' })).toBe(4_000_000n);
    expect(cost('max(x, y, 2)', 0n, { x: 6, y: '4' })).toBe(6_000_000n);
    expect(cost('min(units)', u(7))).toBe(7_000_000n);
    expect(cost('ceil(units)', 1_200_000n)).toBe(2_000_000n);
    expect(cost('ceil(units)', 2_000_000n)).toBe(2_000_000n);
    expect(cost('ceil(-1.5) + 5')).toBe(4_000_000n);
    expect(cost('floor(units)', 1_700_000n)).toBe(1_000_000n);
    expect(cost('floor(-1.5) + 5')).toBe(3_000_000n);
    expect(cost('round(2.5)')).toBe(3_000_000n);
    expect(cost('round(2.4999999)')).toBe(2_000_000n);
    expect(cost('round(-2.5) + 10')).toBe(7_000_000n);
    expect(cost('round(-2.4) + 10')).toBe(8_000_000n);
    expect(cost('ceil(input_tokens / 1000) * 0.5', 0n, { input_tokens: 1001 })).toBe(1_000_000n);
  });

  it('has() tells whether a dimension is present and guards its use', () => {
    const formula = compileFormula('has(dimensions.cached) ? units - cached * 0.5 : units');
    expect(formula.dimensions).toEqual(['cached']);
    expect(formula.cost(u(10), { cached: 4 })).toBe(8_000_000n);
    expect(formula.cost(u(10), {})).toBe(10_000_000n);
    expect(cost('has(dimensions.x) && x > 5 ? 2 : 1', 0n, {})).toBe(1_000_000n);
    expect(cost('has(dimensions.x) && x > 5 ? 2 : 1', 0n, { x: 6 })).toBe(2_000_000n);
    expect(cost('!has(dimensions.x) ? 3 : 1', 0n, { y: 1 })).toBe(3_000_000n);
    // Inherited properties are not dimensions.
    expect(cost('has(dimensions.toString) ? 1 : 2')).toBe(2_000_000n);
  });

  it('reads number literals exactly, including exponents, hex and unsigned', () => {
    expect(cost('1.5e-3 * units', u(1))).toBe(1_500n);
    expect(cost('2E2')).toBe(200_000_000n);
    expect(cost('0x10 + 2u')).toBe(18_000_000n);
    expect(cost('1.0000000000000000000')).toBe(1_000_000n);
    expect(cost('123456789012345678901234567890 * 0 + 1')).toBe(1_000_000n);
  });

  it('allows a cost of exactly 2^53 micro-credits', () => {
    expect(cost('9007199254.740992')).toBe(2n ** 53n);
  });
});

describe('compileFormula: errors', () => {
  it('reports syntax errors with a column', () => {
    const error = compileError('units +');
    expect(error.name).toBe('FormulaError');
    expect(error).toBeInstanceOf(Error);
    expect(error.message).toMatch(/^syntax error: .* \(at column 8\)$/);
    expect(error.column).toBe(8);
    expect(compileError('units * (2').message).toMatch(/syntax error/);
    expect(compileError('').message).toMatch(/syntax error/);
    expect(compileError('units @ 2').message).toMatch(/syntax error: Unexpected character/);
    expect(compileError('1 +\n 2 +').message).toMatch(/\(at line 2, column 5\)$/);
  });

  it('names unsupported constructs and where they are', () => {
    expect(compileError('min([1, 2])').message).toMatch(/^lists are not supported in credit formulas/);
    expect(compileError('units * max([1])').column).toBe(13);
    expect(compileError('{"a": 1}["a"]').message).toMatch(/indexing is only supported on dimensions/);
    expect(compileError('size({"a": 1})').message).toMatch(/unknown function size\(\)/);
    expect(compileError('max({"a": 1})').message).toMatch(/maps are not supported/);
    expect(compileError('"a" in ["a"] ? 1 : 2').message).toMatch(/'in' operator is not supported/);
    expect(compileError('model.size()').message).toMatch(/method calls \(\.size\(\)\) are not supported/);
    expect(compileError('x == null ? 1 : 2').message).toMatch(/null is not supported/);
    expect(compileError("b'abc' == x ? 1 : 2").message).toMatch(/bytes are not supported/);
    expect(compileError('request.tokens').message).toMatch(/field access is only supported on dimensions/);
    expect(compileError('dimensions.a.b').message).toMatch(/field access is only supported on dimensions/);
    expect(compileError('dimensions').message).toMatch(/dimensions needs a name/);
    expect(compileError('dimensions[x]').message).toMatch(/needs a string literal name/);
    expect(compileError('1e-19').message).toMatch(/cannot be represented exactly/);
  });

  it('rejects unknown functions and bad arguments', () => {
    const error = compileError('units + pow(2, 3)');
    expect(error.message).toMatch(/^unknown function pow\(\) \(supported: .*\) \(at column 9\)$/);
    expect(error.column).toBe(9);
    expect(compileError('int(units)').message).toMatch(/unknown function int\(\)/);
    expect(compileError('ceil(1, 2)').message).toMatch(/ceil\(\) takes exactly one argument/);
    expect(compileError('round()').message).toMatch(/round\(\) takes exactly one argument/);
    expect(compileError('min()').message).toMatch(/min\(\) needs at least one argument/);
    expect(compileError('max(1, "a")').message).toMatch(/max\(\) needs a number, got a string/);
    expect(compileError('has(x) ? 1 : 2').message).toMatch(/has\(\) takes one dimension/);
    expect(compileError('has(dimensions["x"]) ? 1 : 2').message).toMatch(/has\(\) takes one dimension/);
  });

  it('rejects type errors at compile time', () => {
    expect(compileError('"a"').message).toMatch(/a formula must produce a number, got a string/);
    expect(compileError('units > 1').message).toMatch(/must produce a number, got a boolean/);
    expect(compileError('units + "a"').message).toMatch(/operator \+ needs a number, got a string/);
    expect(compileError('units + "a"').column).toBe(9);
    expect(compileError('-"a"').message).toMatch(/unary - needs a number/);
    expect(compileError('units == "a" ? 1 : 2').message).toMatch(/cannot compare a number with a string/);
    expect(compileError('true < false ? 1 : 2').message).toMatch(/cannot compare a boolean with a boolean/);
    expect(compileError('x ? 1 : 2').message).toMatch(/needs a boolean; compare the dimension/);
    expect(compileError('units ? 1 : 2').message).toMatch(/needs a boolean, got a number/);
    expect(compileError('!units ? 1 : 2').message).toMatch(/! needs a boolean/);
    expect(compileError('units && true ? 1 : 2').message).toMatch(/&& needs a boolean/);
    expect(compileError('x > 1 ? 1 : "a"').message).toMatch(/branches of \?: differ: a number and a string/);
    expect(compileError('x > 1 ? x : "a"').message).toMatch(/must produce a number, got a string/);
  });

  it('rejects constant division by zero and % on fractions at compile time', () => {
    expect(compileError('units / 0').message).toMatch(/^division by zero \(at column 1\)$/);
    expect(compileError('units / (1 - 1)').message).toMatch(/division by zero/);
    expect(compileError('units % 0').message).toMatch(/modulo by zero/);
    expect(compileError('units % 2.5').message).toMatch(/% needs whole numbers/);
    expect(compileError('1 + 7.5 % 2').message).toMatch(/^% needs whole numbers \(at column 5\)$/);
  });

  it('rejects a formula longer than 1000 characters', () => {
    const ok = `units${' '.repeat(995)}`;
    expect(ok.length).toBe(1000);
    expect(compileFormula(ok).cost(u(1), {})).toBe(1_000_000n);
    expect(compileError(`${ok} `).message).toMatch(/formula is too long \(1001 characters, at most 1000\)/);
  });

  it('rejects an AST deeper than 64', () => {
    // units + 1 + 1 ... is left-nested: n additions make a tree n + 1 deep.
    expect(cost(`units${' + 1'.repeat(63)}`, 0n)).toBe(63_000_000n);
    expect(compileError(`units${' + 1'.repeat(64)}`).message).toMatch(
      /nested too deeply \(at most 64 levels\)/,
    );
    expect(cost(`${'-'.repeat(62)}units`, u(1))).toBe(1_000_000n);
    expect(compileError(`${'-'.repeat(64)}units`).message).toMatch(/nested too deeply/);
    expect(compileError(`${'('.repeat(300)}1${')'.repeat(300)}`).message).toMatch(/nested too deeply/);
  });

  it('reports a missing dimension by name', () => {
    const formula = compileFormula('1.1*input_tokens + 5*output_tokens');
    expect(() => formula.cost(0n, { input_tokens: 1 })).toThrow(FormulaError);
    expect(() => formula.cost(0n, { input_tokens: 1 })).toThrow(/dimension "output_tokens" is missing/);
    expect(costError('model == "a" ? 1 : 2', 0n, {}).message).toMatch(/dimension "model" is missing/);
    expect(costError('dimensions.constructor', 0n, {}).message).toMatch(/"constructor" is missing/);
    expect(costError('a > b ? 1 : 2', 0n, { a: 1 }).message).toMatch(/"b" is missing/);
  });

  it('reports a non-numeric dimension', () => {
    const bad: (string | number)[] = [
      'abc',
      '',
      ' 12',
      '12 ',
      '+1',
      '1e3',
      '1.',
      '.5',
      '0x10',
      '1,5',
      '0.1234567890123456789',
      '9'.repeat(65),
      Number.NaN,
      Number.POSITIVE_INFINITY,
      1e21,
      1e-7,
    ];
    for (const x of bad)
      expect(() => cost('x * 2', 0n, { x }), String(x)).toThrow(
        /dimension "x" is not a plain decimal number/,
      );
    expect(costError('model == "5" ? 1 : 2', 0n, { model: 5 }).message).toMatch(
      /dimension "model" must be a string, got 5/,
    );
    const untyped = { x: true } as unknown as Dims;
    expect(costError('x', 0n, untyped).message).toMatch(/dimension "x" must be a number, got boolean/);
  });

  it('reports division by zero and bad % while evaluating', () => {
    expect(costError('units / x', u(1), { x: 0 }).message).toMatch(/^division by zero \(at column 1\)$/);
    expect(costError('1 + units / (x - 1)', u(1), { x: '1.0' }).message).toMatch(/division by zero/);
    expect(costError('x % y', 0n, { x: 5, y: 0 }).message).toMatch(/modulo by zero/);
    expect(costError('x % 2', 0n, { x: 1.5 }).message).toMatch(/% needs whole numbers/);
  });

  it('reports a negative result, even a tiny one', () => {
    expect(costError('units - 5', u(1), {}).message).toMatch(/formula result is negative \(-4\)/);
    expect(costError('-0.0000001', 0n, {}).message).toMatch(/negative \(-0.0000001\)/);
    expect(cost('units - 5', u(5))).toBe(0n);
  });

  it('reports a cost above 2^53 micro-credits', () => {
    expect(costError('9007199254.740993', 0n, {}).message).toMatch(/cost too large/);
    expect(costError('units * 10000000000', u(1), {}).message).toMatch(/cost too large/);
  });

  it('rejects negative units', () => {
    expect(costError('units', -1n, {}).message).toMatch(/units must be a non-negative bigint/);
  });
});

describe('flatCost', () => {
  it('multiplies a decimal rate by micro-units', () => {
    expect(flatCost('0.002', 1_500_000n)).toBe(3_000n);
    expect(flatCost('0.002', 0n)).toBe(0n);
    expect(flatCost('1', 1n)).toBe(1n);
    expect(flatCost('2.5', u(3))).toBe(7_500_000n);
    expect(flatCost('0', u(1000))).toBe(0n);
    expect(flatCost('10.000000', u(1))).toBe(10_000_000n);
  });

  it('rounds half away from zero to a whole micro-credit', () => {
    expect(flatCost('0.000001', 500_000n)).toBe(1n);
    expect(flatCost('0.000001', 499_999n)).toBe(0n);
    expect(flatCost('0.002', 250n)).toBe(1n);
    expect(flatCost('0.002', 249n)).toBe(0n);
    expect(flatCost('0.000003', 1_500_000n)).toBe(5n);
  });

  it('rejects malformed rates', () => {
    for (const rate of ['', '-1', '+1', '1e3', '0.0000001', ' 1', '1 ', '1.', '.5', 'abc', '1,5', '0x10'])
      expect(() => flatCost(rate, 1n), rate).toThrow(/flat rate must be a non-negative decimal/);
  });

  it('rejects negative units and costs above 2^53 micro-credits', () => {
    expect(() => flatCost('1', -1n)).toThrow(/units must be a non-negative bigint/);
    expect(flatCost('1', 2n ** 53n)).toBe(2n ** 53n);
    expect(() => flatCost('1', 2n ** 53n + 1n)).toThrow(/cost too large/);
  });
});

describe('properties', () => {
  const digits = (max: number) =>
    fc.array(fc.integer({ min: 0, max: 9 }), { maxLength: max }).map((ds) => ds.join(''));
  /** A non-negative decimal as text, with its integer mantissa and fractional digit count. */
  const decimal = (maxWhole: bigint, maxFraction: number) =>
    fc.tuple(fc.bigInt({ min: 0n, max: maxWhole }), digits(maxFraction)).map(([whole, fraction]) => ({
      text: fraction ? `${whole}.${fraction}` : `${whole}`,
      mantissa: BigInt(`${whole}${fraction}`),
      scale: 10n ** BigInt(fraction.length),
    }));

  /** n / d (both non-negative) rounded half up. */
  const roundHalfUp = (n: bigint, d: bigint) => {
    const q = n / d;
    return 2n * (n % d) >= d ? q + 1n : q;
  };

  it('a * units + b matches an independent exact computation', () => {
    fc.assert(
      fc.property(
        // At most 12 fractional digits in a keeps a * units exact at 18 digits.
        decimal(10n ** 4n, 12),
        decimal(10n ** 6n, 18),
        fc.bigInt({ min: 0n, max: 10n ** 9n }),
        (a, b, units) => {
          // micro-credits = a * units + b * 10^6, over the common denominator a.scale * b.scale.
          const numerator = a.mantissa * units * b.scale + b.mantissa * 1_000_000n * a.scale;
          const expected = roundHalfUp(numerator, a.scale * b.scale);
          expect(compileFormula(`${a.text} * units + ${b.text}`).cost(units, {})).toBe(expected);
        },
      ),
      { numRuns: 500 },
    );
  });

  it('flatCost(r, u) equals compileFormula("r * units").cost(u, {})', () => {
    fc.assert(
      fc.property(decimal(10n ** 6n, 6), fc.bigInt({ min: 0n, max: 10n ** 9n }), (rate, units) => {
        expect(flatCost(rate.text, units)).toBe(compileFormula(`${rate.text} * units`).cost(units, {}));
      }),
      { numRuns: 500 },
    );
  });

  it('a numeric dimension costs the same as a JS number and as its decimal text', () => {
    const formula = compileFormula('x * 0.37 + units');
    fc.assert(
      fc.property(
        // Doubles whose shortest text is a plain decimal of at most 18 fractional digits.
        fc.double({ min: 0, max: 1e9, noNaN: true }).filter((x) => /^\d+(\.\d{1,18})?$/.test(String(x))),
        fc.bigInt({ min: 0n, max: 10n ** 9n }),
        (x, units) => {
          expect(formula.cost(units, { x })).toBe(formula.cost(units, { x: String(x) }));
        },
      ),
    );
  });
});
