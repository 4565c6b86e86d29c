/**
 * Exact decimals for pre-aggregating a batch in the worker: a value is an integer and a scale
 * (digits after the point). Sums and comparisons never go through binary floating point, so
 * what the worker adds up is what PostgreSQL's `numeric` would have.
 */
export interface Decimal {
  n: bigint;
  /** Digits after the point, >= 0. */
  s: number;
}

const FORM = /^(-?)(\d+)(?:\.(\d+))?(?:[eE]([+-]?\d+))?$/;

/** Parses the decimal text a meter reads (`12`, `-0.5`, `1.5e3`); throws on anything else. */
export function parseDecimal(text: string): Decimal {
  const m = FORM.exec(text);
  if (!m) throw new Error(`not a decimal: ${text}`);
  const fraction = m[3] ?? '';
  let n = BigInt(`${m[2]}${fraction}`);
  let s = fraction.length - Number(m[4] ?? 0);
  if (s < 0) {
    n *= 10n ** BigInt(-s);
    s = 0;
  }
  return { n: m[1] === '-' ? -n : n, s };
}

function align(a: Decimal, b: Decimal): [bigint, bigint, number] {
  if (a.s === b.s) return [a.n, b.n, a.s];
  if (a.s < b.s) return [a.n * 10n ** BigInt(b.s - a.s), b.n, b.s];
  return [a.n, b.n * 10n ** BigInt(a.s - b.s), a.s];
}

export function addDecimal(a: Decimal, b: Decimal): Decimal {
  const [x, y, s] = align(a, b);
  return { n: x + y, s };
}

export function compareDecimal(a: Decimal, b: Decimal): number {
  const [x, y] = align(a, b);
  return x < y ? -1 : x > y ? 1 : 0;
}

export function formatDecimal(d: Decimal): string {
  if (d.s === 0) return d.n.toString();
  const negative = d.n < 0n;
  const digits = (negative ? -d.n : d.n).toString().padStart(d.s + 1, '0');
  const text = `${digits.slice(0, -d.s)}.${digits.slice(-d.s)}`;
  return negative ? `-${text}` : text;
}
