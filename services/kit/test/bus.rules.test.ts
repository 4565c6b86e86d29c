import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { assertSubject, Namespace, subjectMatches, subjectsOverlap } from '../src/bus/rules.ts';

describe('subjectMatches', () => {
  it.each([
    ['a.b', 'a.b', true],
    ['a.*', 'a.b', true],
    ['a.*', 'a.b.c', false],
    ['a.>', 'a.b.c', true],
    ['a.>', 'a', false],
    ['*.b', 'a.b', true],
    ['>', 'a', true],
    ['a.b', 'a', false],
    ['a', 'a.b', false],
  ])('%s against %s: %s', (pattern, subject, expected) => {
    expect(subjectMatches(pattern, subject)).toBe(expected);
  });
});

describe('subjectsOverlap', () => {
  const token = fc.constantFrom('a', 'b', '*');
  const pattern = fc
    .tuple(fc.array(token, { minLength: 1, maxLength: 3 }), fc.boolean())
    .map(([tokens, tail]) => [...tokens, ...(tail ? ['>'] : [])].join('.'));
  // Every literal subject of up to 4 tokens over {a, b, c}: enough to witness any overlap above.
  const literals: string[] = [];
  const grow = (prefix: string[]): void => {
    if (prefix.length > 0) literals.push(prefix.join('.'));
    if (prefix.length < 4) for (const t of ['a', 'b', 'c']) grow([...prefix, t]);
  };
  grow([]);

  it('is true exactly when some subject matches both patterns', () => {
    fc.assert(
      fc.property(pattern, pattern, (x, y) => {
        const witness = literals.some((s) => subjectMatches(x, s) && subjectMatches(y, s));
        expect(subjectsOverlap(x, y)).toBe(witness);
        expect(subjectsOverlap(y, x)).toBe(witness);
      }),
    );
  });
});

describe('assertSubject', () => {
  it('accepts wildcards only where allowed and `>` only last', () => {
    expect(() => assertSubject('a.*.c', 'allowed')).not.toThrow();
    expect(() => assertSubject('a.>', 'allowed')).not.toThrow();
    expect(() => assertSubject('a.>.c', 'allowed')).toThrow(/invalid subject/);
    expect(() => assertSubject('a.*', 'forbidden')).toThrow(/invalid subject/);
    expect(() => assertSubject('a..b', 'allowed')).toThrow(/invalid subject/);
    expect(() => assertSubject('a b', 'allowed')).toThrow(/invalid subject/);
    expect(() => assertSubject('a*b', 'allowed')).toThrow(/invalid subject/);
  });
});

describe('Namespace', () => {
  it('prefixes names with `_` and subjects with `.`, and strips them back', () => {
    const ns = new Namespace('t_abc');
    expect(ns.name('CREDITS')).toBe('t_abc_CREDITS');
    expect(ns.portName('t_abc_CREDITS')).toBe('CREDITS');
    expect(ns.subject('credits.hold')).toBe('t_abc.credits.hold');
    expect(ns.portSubject('t_abc.credits.hold')).toBe('credits.hold');
  });

  it('is the identity without a prefix', () => {
    const ns = new Namespace(undefined);
    expect([ns.name('S'), ns.subject('a.b'), ns.portName('S'), ns.portSubject('a.b')]).toEqual([
      'S',
      'a.b',
      'S',
      'a.b',
    ]);
  });

  it('refuses a prefix that cannot be part of a stream name', () => {
    expect(() => new Namespace('a.b')).toThrow(/invalid prefix name/);
  });
});
