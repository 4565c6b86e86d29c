/** `PUT/GET/DELETE /v1/meters/{slug}` and `GET /v1/meters`: meters as configuration documents. */
import { config, id } from '@allot/contracts';
import type { AllotApp } from '@allot/kit';
import { type ConfigReplica, type ConfigStore, documentRoutes } from '@allot/kit/config-store';
import { z } from 'zod';

export function meterRoutes(app: AllotApp, options: { store: ConfigStore; replica: ConfigReplica }): void {
  documentRoutes(app, {
    store: options.store,
    replica: options.replica,
    kind: 'meter',
    tag: 'metering',
    noun: 'meter',
    path: '/v1/meters/:slug',
    params: z.object({ slug: id }),
    docId: (p) => p.slug,
    paramsOf: (slug) => ({ slug }),
    body: config.meterBody,
    check: (_tenant, _params, body) => config.meterProblem(body),
    list: { path: '/v1/meters' },
  });
}
