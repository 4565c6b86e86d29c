import { AppError } from '@allot/kit';
import type { SqlStore } from '@allot/kit/sql';
import type { FastifyRequest } from 'fastify';
import type { CreditsEngine } from '../engine.ts';

/** What every credits route is given. */
export interface CreditsRoutesOptions {
  sql: SqlStore;
  engine: CreditsEngine;
}

/** The tenant is the API key's, never a value from the request. */
export function tenantOf(request: FastifyRequest): string {
  const tenant = request.principal?.tenant;
  if (!tenant) throw new AppError('unauthorized', 'missing API key');
  return tenant;
}

export const iso = (date: Date | null): string | null => (date === null ? null : date.toISOString());
