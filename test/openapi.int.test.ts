/**
 * The OpenAPI document is generated from the route schemas: every route of the public contract
 * (test/fixtures/api-contract.md, a copy of the shared API.md) is in it with its method, and
 * /docs renders it.
 */
import { existsSync, readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type AllotRig, openAllot } from './support/allot-app.ts';

const CONTRACT = readFileSync(new URL('./fixtures/api-contract.md', import.meta.url), 'utf8');

/** `PUT /v1/features/{key}` and the like, as the contract writes them. */
function contractRoutes(): { method: string; path: string }[] {
  const found = new Map<string, { method: string; path: string }>();
  for (const m of CONTRACT.matchAll(
    /`(GET|PUT|POST|DELETE) (\/[^`\s]+)`(?: \/ `(GET|PUT|POST|DELETE) (\/[^`\s]+)`)?/g,
  )) {
    for (const [method, path] of [
      [m[1], m[2]],
      [m[3], m[4]],
    ]) {
      if (!method || !path) continue;
      const clean = path.replace(/\?.*$/, '').replace(/\|.*$/, '');
      found.set(`${method} ${clean}`, { method, path: clean });
    }
  }
  // `.../entitlements/{feature}` is written relative to the route before it.
  return [...found.values()].filter((r) => !r.path.includes('...'));
}

describe('the OpenAPI document', () => {
  let rig: AllotRig;
  beforeAll(async () => {
    rig = await openAllot('embedded');
  });
  afterAll(() => rig.close());

  it('checks against the contract as it is: the copy matches the shared API.md where it is at hand', () => {
    const shared = new URL('../../shared/API.md', import.meta.url);
    if (existsSync(shared)) expect(readFileSync(shared, 'utf8')).toBe(CONTRACT);
  });

  it('has every route of the public contract, and /docs shows it', async () => {
    const res = await rig.app.inject({ method: 'GET', url: '/openapi.json' });
    expect(res.statusCode).toBe(200);
    const doc = JSON.parse(res.body) as { paths: Record<string, Record<string, unknown>> };
    const routes = contractRoutes();
    expect(routes.length).toBeGreaterThan(15);
    const missing = routes.filter((r) => {
      // OpenAPI writes parameters as {name}; the names may differ from the contract's.
      const shape = r.path.replace(/\{[^}]+\}/g, '{}');
      return !Object.entries(doc.paths).some(
        ([path, ops]) => path.replace(/\{[^}]+\}/g, '{}') === shape && r.method.toLowerCase() in ops,
      );
    });
    expect(missing).toEqual([]);
    const docs = await rig.app.inject({ method: 'GET', url: '/docs/' });
    expect(docs.statusCode).toBe(200);
    expect(docs.body).toContain('swagger');
  });
});
