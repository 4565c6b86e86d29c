/**
 * Money is an integer count of micro-units (10^-6 of a credit), held as a bigint. It crosses
 * JSON as a decimal string ("2.4") and Redis/Lua as an integer string ("2400000").
 * Lua on Redis computes in doubles, so every amount and every pool total stays below 2^53
 * micro-units (about 9 billion credits); `MAX_MICROS` enforces it at the edge.
 */
export const MICROS_PER_UNIT = 1_000_000n;
export const MAX_MICROS = 2n ** 53n - 1n;

const decimalPattern = /^(-?)(\d{1,16})(?:\.(\d{1,6}))?$/;

export class AmountError extends Error {
  override readonly name = 'AmountError';
}

/** "2.4" or 2.4 -> 2400000n. At most 6 fractional digits; no exponents, no floats beyond what JSON gave. */
export function parseAmount(value: string | number): bigint {
  const text = typeof value === 'number' ? numberToText(value) : value.trim();
  const match = decimalPattern.exec(text);
  if (!match)
    throw new AmountError(
      `expected a decimal with at most 6 fractional digits, got ${JSON.stringify(value)}`,
    );
  const [, sign, whole, fraction = ''] = match;
  const micros = BigInt(whole!) * MICROS_PER_UNIT + BigInt(fraction.padEnd(6, '0'));
  const signed = sign === '-' ? -micros : micros;
  if (signed > MAX_MICROS || signed < -MAX_MICROS) throw new AmountError(`amount ${text} is too large`);
  return signed;
}

function numberToText(value: number): string {
  if (!Number.isFinite(value)) throw new AmountError(`expected a finite number, got ${value}`);
  // JSON numbers arrive as doubles; their shortest round-trip text is what the caller wrote.
  const text = String(value);
  if (/e/i.test(text)) throw new AmountError(`write ${value} as a decimal string`);
  return text;
}

/** 2400000n -> "2.4"; 0n -> "0". */
export function formatAmount(micros: bigint): string {
  const negative = micros < 0n;
  const abs = negative ? -micros : micros;
  const whole = abs / MICROS_PER_UNIT;
  const fraction = (abs % MICROS_PER_UNIT).toString().padStart(6, '0').replace(/0+$/, '');
  return `${negative ? '-' : ''}${whole}${fraction ? `.${fraction}` : ''}`;
}

export function minBig(a: bigint, b: bigint): bigint {
  return a < b ? a : b;
}
