/**
 * The MCP tools: each is one call of Allot's public API, made with the agent's own key, so a
 * tool answers exactly what the route would (the same checks, idempotency and errors). Tools
 * are offered by the key's scopes: `decide` authorizes, settles and releases; `ingest` reports
 * usage; `read` checks entitlements, balances and budgets; `admin` has them all.
 */
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { z } from 'zod';

/** One API call; resolves with the status and the parsed body. */
export type ApiCall = (
  method: 'GET' | 'POST',
  path: string,
  body?: unknown,
) => Promise<{ status: number; body: unknown }>;

export type Scope = 'admin' | 'decide' | 'ingest' | 'read';

const RETRY =
  'Reuse the same idempotency_key when you retry this call (after a timeout or an error): the retry then applies nothing twice and returns the first answer. Use a new key for a new call.';

const idempotencyKey = z
  .string()
  .min(1)
  .max(256)
  .describe('a key unique to this call; reuse it only when retrying the same call');
const idField = z.string().regex(/^[A-Za-z0-9._:-]{1,128}$/);
const dimensions = z
  .record(z.string(), z.union([z.string(), z.number()]))
  .optional()
  .describe('what the request is about: user, team, agent, model, ...');

const enc = encodeURIComponent;

export function toolNames(scopes: readonly Scope[]): string[] {
  const has = (s: Scope) => scopes.includes('admin') || scopes.includes(s);
  return [
    ...(has('read') ? ['check_entitlement', 'get_balance', 'get_budget_status'] : []),
    ...(has('decide') ? ['authorize', 'settle', 'release'] : []),
    ...(has('ingest') ? ['report_usage'] : []),
  ];
}

export function createMcpServer(call: ApiCall, scopes: readonly Scope[]): McpServer {
  const server = new McpServer({ name: 'allot', version: '0.1.0' });
  const offered = new Set(toolNames(scopes));
  const answer = async (method: 'GET' | 'POST', path: string, body?: unknown) => {
    const res = await call(method, path, body);
    const payload = (res.body ?? {}) as Record<string, unknown>;
    if (res.status >= 400) {
      const message = typeof payload.message === 'string' ? payload.message : `HTTP ${res.status}`;
      return {
        isError: true,
        content: [{ type: 'text' as const, text: `${payload.code ?? 'error'} (${res.status}): ${message}` }],
        structuredContent: { error: { status: res.status, code: payload.code ?? null, message } },
      };
    }
    return {
      content: [{ type: 'text' as const, text: JSON.stringify(payload) }],
      structuredContent: payload,
    };
  };
  const tool = <S extends z.ZodRawShape>(
    name: string,
    description: string,
    input: S,
    run: (args: z.infer<z.ZodObject<S>>) => ReturnType<typeof answer>,
  ) => {
    if (!offered.has(name)) return;
    server.registerTool(name, { description, inputSchema: input }, run as never);
  };

  tool(
    'check_entitlement',
    "Whether a customer's plan includes a feature, with its limit and usage. Read-only.",
    { customer_id: idField, feature: idField },
    (a) => answer('GET', `/v1/customers/${enc(a.customer_id)}/entitlements/${enc(a.feature)}`),
  );
  tool(
    'authorize',
    `Ask before spending: decides whether the customer may use \`units\` of \`feature\` now (entitlements, rate and concurrency limits, budgets, credits) and, if allowed, reserves the estimated cost. Returns decision, reason, reservationId and the remaining balance. Settle the reservation with the actual usage when done, or release it. ${RETRY}`,
    {
      customer_id: idField,
      feature: idField,
      units: z.number().nonnegative().describe('the estimate, in the feature unit (e.g. max tokens)'),
      dimensions,
      ttl_ms: z
        .number()
        .int()
        .min(1000)
        .max(86_400_000)
        .optional()
        .describe('how long the reservation holds'),
      idempotency_key: idempotencyKey,
    },
    (a) =>
      answer('POST', '/v1/decisions', {
        customerId: a.customer_id,
        feature: a.feature,
        units: a.units,
        ...(a.dimensions ? { dimensions: a.dimensions } : {}),
        ...(a.ttl_ms ? { ttlMs: a.ttl_ms } : {}),
        idempotencyKey: a.idempotency_key,
      }),
  );
  tool(
    'settle',
    `Report after spending: commits the actual usage of a reservation from authorize; what was held and not used goes back. ${RETRY}`,
    {
      reservation_id: z.string().min(4).max(1024),
      units: z.number().nonnegative().optional().describe('the actual usage; absent: as reserved'),
      dimensions,
      idempotency_key: idempotencyKey,
    },
    (a) =>
      answer('POST', `/v1/reservations/${enc(a.reservation_id)}/settle`, {
        ...(a.units === undefined ? {} : { units: a.units }),
        ...(a.dimensions ? { dimensions: a.dimensions } : {}),
        idempotencyKey: a.idempotency_key,
      }),
  );
  tool(
    'release',
    `Give a whole reservation back (the work failed or was not done). ${RETRY}`,
    { reservation_id: z.string().min(4).max(1024), idempotency_key: idempotencyKey },
    (a) =>
      answer('POST', `/v1/reservations/${enc(a.reservation_id)}/release`, {
        idempotencyKey: a.idempotency_key,
      }),
  );
  tool(
    'report_usage',
    `Report usage that was not reserved (a usage event for a meter). The idempotency_key is the event's id: sending it again counts once. ${RETRY}`,
    {
      customer_id: idField,
      event_type: z.string().min(1).max(256),
      data: z
        .record(z.string(), z.unknown())
        .describe('the event data the meters read (e.g. { "tokens": 1200 })'),
      idempotency_key: idempotencyKey,
    },
    async (a) => {
      const res = await answer('POST', '/v1/events', {
        specversion: '1.0',
        id: a.idempotency_key,
        source: 'allot:mcp',
        type: a.event_type,
        subject: a.customer_id,
        data: a.data,
      });
      if (res.isError) return res;
      return {
        content: [{ type: 'text' as const, text: '{"accepted":true}' }],
        structuredContent: { accepted: true, id: a.idempotency_key },
      };
    },
  );
  tool(
    'get_balance',
    "A customer's credit balances: available, held, and the grants in effect. Read-only.",
    { customer_id: idField },
    (a) => answer('GET', `/v1/customers/${enc(a.customer_id)}/balances`),
  );
  tool(
    'get_budget_status',
    'A budget or limit now: each counter with its limit, used, held and remaining. Read-only.',
    { budget_id: idField },
    (a) => answer('GET', `/v1/budgets/${enc(a.budget_id)}/status`),
  );
  return server;
}
