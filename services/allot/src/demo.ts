/**
 * A small demo on an empty store, so a newcomer sees a real decision in the first minute: a
 * plan with metered tokens and a context-size setting, two customers with credits, and at
 * acme a team (t1) with a user (u1) and an agent (a7), a monthly team budget and a per-agent
 * daily budget. Written through the public routes, as a user would.
 */
import type { AllotApp } from '@allot/kit';

export async function loadDemo(app: AllotApp, apiKey: string): Promise<boolean> {
  const call = async (method: 'PUT' | 'POST' | 'GET', url: string, payload?: unknown) => {
    const res = await app.inject({
      method,
      url,
      headers: { authorization: `Bearer ${apiKey}` },
      ...(payload === undefined ? {} : { payload: payload as object }),
    });
    if (res.statusCode >= 300)
      throw new Error(`demo: ${method} ${url} answered ${res.statusCode}: ${res.body}`);
    return JSON.parse(res.body) as Record<string, unknown>;
  };
  const existing = (await call('GET', '/v1/customers')) as { items: unknown[] };
  if (existing.items.length > 0) return false;

  await call('PUT', '/v1/credit-types/credits', { name: 'Credits' });
  await call('PUT', '/v1/features/llm-tokens', { name: 'LLM tokens', type: 'metered', unit: 'token' });
  await call('PUT', '/v1/features/max-context', { name: 'Context window', type: 'numeric', unit: 'token' });
  await call('PUT', '/v1/plans/pro', {
    name: 'Pro',
    entitlements: [{ feature: 'llm-tokens' }, { feature: 'max-context', value: 128000 }],
    creditRates: [{ feature: 'llm-tokens', creditType: 'credits', rate: '0.002' }],
  });
  for (const [id, name, credits] of [
    ['acme', 'Acme Corp', '1000'],
    ['globex', 'Globex', '250'],
  ] as const) {
    await call('PUT', `/v1/customers/${id}`, { name });
    await call('PUT', `/v1/customers/${id}/subscription`, { plan: 'pro' });
    await call('POST', `/v1/customers/${id}/grants`, {
      creditType: 'credits',
      amount: credits,
      category: 'paid',
      idempotencyKey: `demo-grant-${id}`,
    });
  }
  await call('PUT', '/v1/customers/acme/entities/t1', { type: 'team', name: 'Research' });
  await call('PUT', '/v1/customers/acme/entities/u1', { type: 'user', parentId: 't1' });
  await call('PUT', '/v1/customers/acme/entities/a7', { type: 'agent', parentId: 'u1' });
  await call('PUT', '/v1/budgets/acme-team-t1', {
    customerId: 'acme',
    scope: { team: 't1' },
    metric: 'credits',
    period: 'month',
    limit: '100',
    name: 'Research team, monthly',
  });
  await call('PUT', '/v1/budgets/acme-per-agent', {
    customerId: 'acme',
    scope: { agent: '*' },
    metric: 'credits',
    period: 'day',
    limit: '20',
    name: 'Each agent, daily',
  });
  return true;
}

/** The command the start banner prints: a decision for agent a7 of acme. `apiKey` may be `$ALLOT_API_KEY`. */
export function demoCurl(url: string, apiKey: string): string {
  const body = JSON.stringify({
    customerId: 'acme',
    feature: 'llm-tokens',
    units: 1200,
    dimensions: { agent: 'a7', model: 'gpt-5' },
  });
  return `curl -s ${url}/v1/decisions -H "authorization: Bearer ${apiKey}" -H 'content-type: application/json' -d '${body}'`;
}
