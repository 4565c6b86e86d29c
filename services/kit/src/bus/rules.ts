/**
 * Rules both bus adapters apply identically, so that they accept, reject and match exactly
 * the same things: names, subjects and their wildcards, the namespace (prefix) mapping,
 * revisions, and what happens when a subscriber's callback throws.
 */

/** Stream, durable, bucket and prefix names: a safe subset of what NATS allows. */
const NAME = /^[A-Za-z0-9_-]+$/;
/** KV keys, as the NATS KV client validates them. */
const KV_KEY = /^[-/=.\w]+$/;

export function assertName(kind: string, name: string): void {
  if (!NAME.test(name)) {
    throw new Error(`invalid ${kind} name '${name}': use letters, digits, '_' and '-'`);
  }
}

export function assertKvKey(key: string): void {
  if (key.startsWith('.') || key.endsWith('.') || !KV_KEY.test(key)) {
    throw new Error(`invalid key '${key}'`);
  }
}

/** KV compare-and-set revisions are stream sequences, so at least 1. */
export function assertRevision(revision: number): void {
  if (!Number.isSafeInteger(revision) || revision < 1) {
    throw new RangeError(`revision must be a positive integer, got ${revision}`);
  }
}

/** A subject is dot-separated non-empty tokens; `*` and a final `>` are wildcards. */
export function assertSubject(subject: string, wildcards: 'allowed' | 'forbidden'): void {
  const tokens = subject.split('.');
  const valid = tokens.every((token, i) => {
    if (token === '' || /\s/.test(token)) return false;
    if (token === '*' || token === '>')
      return wildcards === 'allowed' && (token === '*' || i === tokens.length - 1);
    return !token.includes('*') && !token.includes('>');
  });
  if (!valid) throw new Error(`invalid subject '${subject}'`);
}

/** True when the literal `subject` matches `pattern` (`*`: one token, `>`: one or more). */
export function subjectMatches(pattern: string, subject: string): boolean {
  const p = pattern.split('.');
  const s = subject.split('.');
  for (let i = 0; i < p.length; i++) {
    const token = p[i];
    if (token === '>') return s.length > i;
    if (i >= s.length) return false;
    if (token !== '*' && token !== s[i]) return false;
  }
  return p.length === s.length;
}

/** True when some literal subject matches both patterns (NATS refuses overlapping streams). */
export function subjectsOverlap(a: string, b: string): boolean {
  const x = a.split('.');
  const y = b.split('.');
  for (let i = 0; i < Math.max(x.length, y.length); i++) {
    const p = x[i];
    const q = y[i];
    if (p === '>' || q === '>') return p !== undefined && q !== undefined;
    if (p === undefined || q === undefined) return false;
    if (p !== '*' && q !== '*' && p !== q) return false;
  }
  return true;
}

/**
 * Maps port names to server names under an optional prefix, so that tenants and tests
 * sharing one server never see each other: with prefix `t_abc`, stream `CREDITS` is
 * `t_abc_CREDITS` (stream names cannot contain dots) and subject `credits.hold` is
 * `t_abc.credits.hold`. KV buckets map like streams.
 */
export class Namespace {
  readonly prefix: string | undefined;

  constructor(prefix: string | undefined) {
    if (prefix !== undefined) assertName('prefix', prefix);
    this.prefix = prefix;
  }

  name(portName: string): string {
    return this.prefix === undefined ? portName : `${this.prefix}_${portName}`;
  }

  portName(serverName: string): string {
    const head = `${this.prefix}_`;
    return this.prefix !== undefined && serverName.startsWith(head)
      ? serverName.slice(head.length)
      : serverName;
  }

  subject(portSubject: string): string {
    return this.prefix === undefined ? portSubject : `${this.prefix}.${portSubject}`;
  }

  portSubject(serverSubject: string): string {
    const head = `${this.prefix}.`;
    return this.prefix !== undefined && serverSubject.startsWith(head)
      ? serverSubject.slice(head.length)
      : serverSubject;
  }
}

/**
 * A throwing subscriber callback must not stop delivery to the others or end the
 * subscription; the error surfaces as an uncaught exception, like an EventEmitter listener's.
 */
export function reportHandlerError(err: unknown): void {
  queueMicrotask(() => {
    throw err;
  });
}
