import { createHash, randomBytes } from 'node:crypto';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import { AppError } from './errors.ts';

/** `admin` is configuration and implies every other scope. */
export const scopes = ['admin', 'decide', 'ingest', 'read'] as const;
export type Scope = (typeof scopes)[number];

export interface Principal {
  keyId: string;
  tenant: string;
  scopes: readonly Scope[];
}

/** Where keys live. Only hashes are stored; the key itself is shown once, when created. */
export interface ApiKeyStore {
  findByHash(hash: string): Promise<Principal | null>;
}

export function hashApiKey(key: string): string {
  return createHash('sha256').update(key).digest('hex');
}

export function generateApiKey(): string {
  return `allot_${randomBytes(24).toString('base64url')}`;
}

/** Keys known at boot (ALLOT_API_KEY); it keeps hashes only. */
export class StaticApiKeyStore implements ApiKeyStore {
  readonly #byHash = new Map<string, Principal>();
  constructor(entries: readonly { key: string; principal: Principal }[]) {
    for (const { key, principal } of entries) this.#byHash.set(hashApiKey(key), principal);
  }
  async findByHash(hash: string): Promise<Principal | null> {
    return this.#byHash.get(hash) ?? null;
  }
}

/** The tenant is the API key's, never a value from the request. */
export function tenantOf(request: FastifyRequest): string {
  const tenant = request.principal?.tenant;
  if (!tenant) throw new AppError('unauthorized', 'missing API key');
  return tenant;
}

/** Who made a change, for audit logs: the key's id, never the key. */
export function actorOf(request: FastifyRequest): string {
  return `key:${request.principal?.keyId ?? 'unknown'}`;
}

export function hasScope(principal: Principal, needed: Scope): boolean {
  return principal.scopes.includes('admin') || principal.scopes.includes(needed);
}

declare module 'fastify' {
  interface FastifyContextConfig {
    /** The scope a route needs; `public` skips authentication. Routes that say nothing need `admin`. */
    auth?: Scope | 'public';
  }
  interface FastifyRequest {
    principal: Principal | null;
  }
}

/** The key in `Authorization: Bearer <key>`; 401 without one. */
export function bearerToken(request: FastifyRequest): string {
  const match = /^Bearer\s+(\S+)\s*$/i.exec(request.headers.authorization ?? '');
  if (!match?.[1]) throw new AppError('unauthorized', 'missing API key: send Authorization: Bearer <key>');
  return match[1];
}

/** The key a request carries and whom it belongs to; 401 without a valid one. */
export async function authenticate(
  keys: ApiKeyStore,
  request: FastifyRequest,
): Promise<{ token: string; principal: Principal }> {
  const token = bearerToken(request);
  const principal = await keys.findByHash(hashApiKey(token));
  if (!principal) throw new AppError('unauthorized', 'invalid API key');
  return { token, principal };
}

/** Authenticates every route by its `config.auth`; 401 without a valid key, 403 without the scope. */
export const authPlugin = fp(
  async (app: FastifyInstance, opts: { keys: ApiKeyStore }) => {
    app.decorateRequest('principal', null);
    app.addHook('onRequest', async (request) => {
      const needed = request.routeOptions.config.auth ?? 'admin';
      if (needed === 'public' || request.is404) return;
      const { principal } = await authenticate(opts.keys, request);
      if (!hasScope(principal, needed))
        throw new AppError('forbidden', `this API key lacks the ${needed} scope`);
      request.principal = principal;
    });
  },
  { name: 'allot-auth', fastify: '5.x' },
);
