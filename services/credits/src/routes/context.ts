import type { SqlStore } from '@allot/kit/sql';
import type { CreditsEngine } from '../engine.ts';

/** What every credits route is given. */
export interface CreditsRoutesOptions {
  sql: SqlStore;
  engine: CreditsEngine;
}

export { tenantOf } from '@allot/kit';

export const iso = (date: Date | null): string | null => (date === null ? null : date.toISOString());
