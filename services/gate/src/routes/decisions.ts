/**
 * `POST /v1/decisions` (and `/batch`), `POST /v1/reservations/{id}/settle` and `/release`: the
 * hot path. Every answer, allow or deny, is 200 with the decision; 503 when the hot state
 * cannot decide and the policy is fail-closed.
 */
import { decisions } from '@allot/contracts';
import { type AllotApp, tenantOf } from '@allot/kit';
import { z } from 'zod';
import type { GateEngine } from '../engine.ts';

export function decisionRoutes(app: AllotApp, { engine }: { engine: GateEngine }): void {
  app.post(
    '/v1/decisions',
    {
      config: { auth: 'decide' },
      schema: {
        tags: ['decisions'],
        summary: 'Decide what a request may do, and reserve for it',
        description:
          'Blocks, entitlement, rate and concurrency limits, budgets, then credits: the first that fails denies. ' +
          'On allow, the estimate is held on every matching budget and the credit pool until settled, released or expired.',
        body: decisions.decisionRequest,
        response: { 200: decisions.decision },
      },
    },
    async (request) => engine.decide(tenantOf(request), request.body),
  );

  app.post(
    '/v1/decisions/batch',
    {
      config: { auth: 'decide' },
      schema: {
        tags: ['decisions'],
        summary: 'Several decisions, each decided on its own',
        body: decisions.decisionBatch,
        response: {
          200: z.object({
            decisions: z.array(
              z.union([
                decisions.decision,
                z.object({ error: z.object({ code: z.string(), message: z.string() }) }),
              ]),
            ),
          }),
        },
      },
    },
    async (request) => {
      const tenant = tenantOf(request);
      const answers = await Promise.all(
        request.body.decisions.map((one) =>
          engine.decide(tenant, one).catch((error: unknown) => {
            const e = error as { code?: string; message?: string };
            return { error: { code: e.code ?? 'internal', message: e.message ?? 'failed' } };
          }),
        ),
      );
      return { decisions: answers };
    },
  );

  const reservationParams = z.object({ id: z.string().min(4).max(1024) });

  app.post(
    '/v1/reservations/:id/settle',
    {
      config: { auth: 'decide' },
      schema: {
        tags: ['decisions'],
        summary: 'Commit the actual usage of a reservation',
        description:
          'The cost is recomputed from the rate with the actual units (and dimensions); what was held and not used goes back. ' +
          'Usage above the reservation is charged if the balance allows it, otherwise recorded as overage.',
        params: reservationParams,
        // No body at all (settle as reserved) is fine too.
        body: decisions.settleBody.nullish(),
        response: { 200: decisions.settlement },
      },
    },
    async (request) => {
      const body = request.body ?? {};
      return engine.settle(tenantOf(request), request.params.id, {
        ...(body.units === undefined ? {} : { units: body.units }),
        ...(body.dimensions === undefined ? {} : { dimensions: body.dimensions }),
      });
    },
  );

  app.post(
    '/v1/reservations/:id/release',
    {
      config: { auth: 'decide' },
      schema: {
        tags: ['decisions'],
        summary: 'Give a whole reservation back',
        params: reservationParams,
        body: decisions.releaseBody.nullish(),
        response: { 200: decisions.settlement },
      },
    },
    async (request) => engine.release(tenantOf(request), request.params.id),
  );
}
