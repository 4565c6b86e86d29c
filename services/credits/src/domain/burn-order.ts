/**
 * The burn order of DESIGN.md: priority (lower first), then earliest expiry (none last), then
 * promotional before paid, then earliest effective, then earliest created, then id. Encoded
 * as one string per grant that sorts the same way byte by byte, so the Lua hot path (which
 * sorts strings) and TypeScript agree without re-implementing the rule.
 */
export interface BurnFields {
  id: string;
  priority: number;
  expiresAt: Date | null;
  category: 'paid' | 'promotional';
  effectiveAt: Date;
  createdAt: Date;
}

const pad = (n: number, width: number) => Math.trunc(n).toString().padStart(width, '0');
const NO_EXPIRY = '9'.repeat(15);

export function burnKey(grant: BurnFields): string {
  return [
    pad(grant.priority, 10),
    grant.expiresAt ? pad(grant.expiresAt.getTime(), 15) : NO_EXPIRY,
    grant.category === 'promotional' ? '0' : '1',
    pad(grant.effectiveAt.getTime(), 15),
    pad(grant.createdAt.getTime(), 15),
    grant.id,
  ].join('/');
}

export function burnOrder<G extends BurnFields>(grants: readonly G[]): G[] {
  return [...grants].sort((a, b) => {
    const ka = burnKey(a);
    const kb = burnKey(b);
    return ka < kb ? -1 : ka > kb ? 1 : 0;
  });
}

/** "<burnKey>|<effectiveMs>|<expiresMs or 0>": a grant as the hot path stores it. */
export function hotGrantMeta(grant: BurnFields): string {
  return `${burnKey(grant)}|${grant.effectiveAt.getTime()}|${grant.expiresAt ? grant.expiresAt.getTime() : 0}`;
}
