/**
 * The Allot client. One method per route of the public API (ROUTES lists them; a test checks
 * each against the server's OpenAPI document), plus the patterns that make spending safe:
 * `withReservation` (reserve, run, settle, release on error or abort), an opt-in short cache of
 * allow answers, and `llm` / `meteredStream` for model calls.
 */
import { randomUUID } from 'node:crypto';
import { type AllotOptions, Http } from './http.ts';
import type {
  Amount,
  Balance,
  CloudEvent,
  Decision,
  DecisionRequest,
  Dimensions,
  Document,
  Entitlement,
  GrantBody,
  SettleBody,
  Settlement,
  UsageQuery,
  UsageResult,
} from './types.ts';

/** Every route the client calls, as the OpenAPI document names them. */
export const ROUTES = [
  'POST /v1/decisions',
  'POST /v1/decisions/batch',
  'POST /v1/reservations/{id}/settle',
  'POST /v1/reservations/{id}/release',
  'GET /v1/decisions',
  'GET /v1/decisions/{decisionId}',
  'PUT /v1/features/{key}',
  'GET /v1/features/{key}',
  'GET /v1/features',
  'PUT /v1/credit-types/{key}',
  'PUT /v1/plans/{key}',
  'GET /v1/plans/{key}',
  'GET /v1/plans',
  'PUT /v1/addons/{key}',
  'PUT /v1/customers/{customerId}',
  'GET /v1/customers/{customerId}',
  'GET /v1/customers',
  'PUT /v1/customers/{customerId}/subscription',
  'GET /v1/customers/{customerId}/subscription',
  'POST /v1/customers/{customerId}/grants',
  'PUT /v1/customers/{customerId}/entities/{entityId}',
  'GET /v1/customers/{customerId}/entities',
  'PUT /v1/budgets/{budgetId}',
  'GET /v1/budgets/{budgetId}',
  'GET /v1/budgets',
  'GET /v1/budgets/{budgetId}/status',
  'GET /v1/budgets/{budgetId}/history',
  'PUT /v1/blocks/{blockId}',
  'DELETE /v1/blocks/{blockId}',
  'GET /v1/blocks',
  'PUT /v1/meters/{slug}',
  'GET /v1/meters',
  'GET /v1/customers/{customerId}/entitlements',
  'GET /v1/customers/{customerId}/entitlements/{feature}',
  'GET /v1/customers/{customerId}/balances',
  'GET /v1/customers/{customerId}/ledger',
  'POST /v1/events',
  'GET /v1/meters/{slug}/query',
  'GET /v1/metering/export',
  'GET /v1/whoami',
] as const;

export class DeniedError extends Error {
  override readonly name = 'DeniedError';
  constructor(readonly decision: Decision) {
    super(`denied: ${decision.reason}${decision.message ? ` (${decision.message})` : ''}`);
  }
}

export interface ClientOptions extends AllotOptions {
  /** Keep allow answers of `allowed()` this long (deny answers are never kept). Default 0: off. */
  cacheAllowsMs?: number;
}

/** What the work reports after a reservation: the actual units (and dimensions known only now). */
export type Usage = { units?: Amount; dimensions?: Dimensions } | Amount | undefined;

const enc = encodeURIComponent;

export class Allot {
  readonly #http: Http;
  readonly #cacheMs: number;
  readonly #cache = new Map<string, { until: number; decision: Decision }>();

  constructor(options: ClientOptions) {
    this.#http = new Http(options);
    this.#cacheMs = options.cacheAllowsMs ?? 0;
  }

  /** Any route: the escape hatch (path with its query already in `query`). */
  request<T>(method: string, path: string, options?: Parameters<Http['request']>[2]): Promise<T> {
    return this.#http.request<T>(method, path, options);
  }

  // --- decisions --------------------------------------------------------------------------

  /** A decision; with an idempotency key of its own when none is given, so retries apply once. */
  decide(request: DecisionRequest, signal?: AbortSignal): Promise<Decision> {
    const body = { ...request, idempotencyKey: request.idempotencyKey ?? randomUUID() };
    return this.#http.request('POST', '/v1/decisions', { body, ...(signal ? { signal } : {}) });
  }

  decideBatch(
    requests: DecisionRequest[],
  ): Promise<{ decisions: (Decision | { error: { code: string; message: string } })[] }> {
    const decisions = requests.map((r) => ({ ...r, idempotencyKey: r.idempotencyKey ?? randomUUID() }));
    return this.#http.request('POST', '/v1/decisions/batch', { body: { decisions } });
  }

  settle(reservationId: string, body: SettleBody = {}): Promise<Settlement> {
    return this.#http.request('POST', `/v1/reservations/${enc(reservationId)}/settle`, {
      body: { ...body, idempotencyKey: body.idempotencyKey ?? randomUUID() },
    });
  }

  release(reservationId: string, idempotencyKey: string = randomUUID()): Promise<Settlement> {
    return this.#http.request('POST', `/v1/reservations/${enc(reservationId)}/release`, {
      body: { idempotencyKey },
    });
  }

  /**
   * Whether a request would be allowed now (a decision for zero units: blocks, entitlement,
   * limits; nothing held). With `cacheAllowsMs`, an allow is kept that long; a deny never is.
   */
  async allowed(customerId: string, feature: string, dimensions: Dimensions = {}): Promise<Decision> {
    const key = JSON.stringify([customerId, feature, Object.entries(dimensions).sort()]);
    const cached = this.#cache.get(key);
    if (cached && cached.until > Date.now()) return cached.decision;
    const decision = await this.decide({ customerId, feature, units: 0, dimensions });
    if (decision.reservationId) await this.release(decision.reservationId);
    if (decision.decision === 'allow' && this.#cacheMs > 0) {
      this.#cache.set(key, { until: Date.now() + this.#cacheMs, decision });
    } else this.#cache.delete(key);
    return decision;
  }

  /**
   * Reserve, run, settle: `work` gets the decision and an abort signal and returns the actual
   * usage (units, or `{ units, dimensions }`; nothing settles as reserved). A deny throws
   * DeniedError before any work; work that throws, or an abort, releases the whole hold and
   * rethrows.
   */
  async withReservation<T extends Usage>(
    request: DecisionRequest,
    work: (decision: Decision, signal: AbortSignal) => Promise<T>,
    options: { signal?: AbortSignal } = {},
  ): Promise<{ decision: Decision; settlement: Settlement | null; usage: T }> {
    const key = request.idempotencyKey ?? randomUUID();
    const decision = await this.decide({ ...request, idempotencyKey: key }, options.signal);
    if (decision.decision !== 'allow') throw new DeniedError(decision);
    const controller = new AbortController();
    const onAbort = () => controller.abort(options.signal?.reason);
    options.signal?.addEventListener('abort', onAbort, { once: true });
    let usage: T;
    try {
      usage = await work(decision, controller.signal);
      if (controller.signal.aborted) throw controller.signal.reason ?? new Error('aborted');
    } catch (error) {
      if (decision.reservationId)
        await this.release(decision.reservationId, `${key}:release`).catch(() => {});
      throw error;
    } finally {
      options.signal?.removeEventListener('abort', onAbort);
    }
    if (!decision.reservationId) return { decision, settlement: null, usage };
    const body: SettleBody = { idempotencyKey: `${key}:settle` };
    if (typeof usage === 'number' || typeof usage === 'string') body.units = usage;
    else if (usage && typeof usage === 'object') {
      if (usage.units !== undefined) body.units = usage.units;
      if (usage.dimensions) body.dimensions = usage.dimensions;
    }
    const settlement = await this.settle(decision.reservationId, body);
    return { decision, settlement, usage };
  }

  /**
   * A model call metered by tokens: reserves `maxTokens` (plus `promptTokens` when known) of
   * `feature`, runs `call`, and settles what the response's usage says it used.
   */
  llm<
    R extends {
      usage?: {
        input_tokens?: number;
        output_tokens?: number;
        prompt_tokens?: number;
        completion_tokens?: number;
      };
    },
  >(
    request: Omit<DecisionRequest, 'units'> & { maxTokens: number; promptTokens?: number },
    call: (signal: AbortSignal) => Promise<R>,
  ): Promise<{ decision: Decision; settlement: Settlement | null; usage: { units: number }; response: R }> {
    const { maxTokens, promptTokens, ...rest } = request;
    let response: R | undefined;
    return this.withReservation({ ...rest, units: maxTokens + (promptTokens ?? 0) }, async (_, signal) => {
      response = await call(signal);
      return { units: tokensOf(response.usage) };
    }).then((r) => ({ ...r, response: response! }));
  }

  /**
   * A streamed model call metered by tokens: reserves like `llm`, passes the stream's chunks
   * through, and settles when the stream ends, is stopped early by the consumer, or fails:
   * with the usage the stream reported if it did, else with what was counted so far
   * (`countTokens`, default one token per chunk, plus `promptTokens`).
   */
  async *meteredStream<C>(
    request: Omit<DecisionRequest, 'units'> & { maxTokens: number; promptTokens?: number },
    open: (signal: AbortSignal) => AsyncIterable<C>,
    options: { countTokens?: (chunk: C) => number; usageOf?: (chunk: C) => number | undefined } = {},
  ): AsyncGenerator<C, Settlement | null> {
    const { maxTokens, promptTokens, ...rest } = request;
    const key = rest.idempotencyKey ?? randomUUID();
    const decision = await this.decide({
      ...rest,
      units: maxTokens + (promptTokens ?? 0),
      idempotencyKey: key,
    });
    if (decision.decision !== 'allow') throw new DeniedError(decision);
    const controller = new AbortController();
    let counted = 0;
    let reported: number | undefined;
    let failed = false;
    try {
      for await (const chunk of open(controller.signal)) {
        counted += options.countTokens ? options.countTokens(chunk) : 1;
        reported = options.usageOf?.(chunk) ?? reported;
        yield chunk;
      }
    } catch (error) {
      failed = true;
      throw error;
    } finally {
      // Runs on completion, on an early stop (return()) and on failure alike.
      controller.abort();
      if (decision.reservationId) {
        const units = reported ?? counted + (promptTokens ?? 0);
        if (failed && units === 0)
          await this.release(decision.reservationId, `${key}:release`).catch(() => {});
        else
          await this.settle(decision.reservationId, { units, idempotencyKey: `${key}:settle` }).catch(
            () => {},
          );
      }
    }
    return null;
  }

  // --- configuration ----------------------------------------------------------------------

  readonly features = {
    put: (
      key: string,
      body: { name: string; type: 'boolean' | 'numeric' | 'enum' | 'metered'; unit?: string },
    ) => this.#http.request<Document<typeof body>>('PUT', `/v1/features/${enc(key)}`, { body }),
    get: (key: string) =>
      this.#http.request<Document<{ name: string; type: string }>>('GET', `/v1/features/${enc(key)}`),
    list: () =>
      this.#http.request<{ items: Document<{ key: string; name: string }>[] }>('GET', '/v1/features'),
  };

  readonly creditTypes = {
    put: (key: string, body: { name: string; unit?: string }) =>
      this.#http.request<{ key: string; name: string }>('PUT', `/v1/credit-types/${enc(key)}`, { body }),
  };

  readonly plans = {
    put: (key: string, body: { name: string; entitlements: unknown[]; creditRates: unknown[] }) =>
      this.#http.request<Document<typeof body>>('PUT', `/v1/plans/${enc(key)}`, { body }),
    get: (key: string) => this.#http.request<Document<{ name: string }>>('GET', `/v1/plans/${enc(key)}`),
    list: () => this.#http.request<{ items: Document<{ key: string; name: string }>[] }>('GET', '/v1/plans'),
  };

  readonly addons = {
    put: (key: string, body: { name: string; entitlements: unknown[]; creditRates: unknown[] }) =>
      this.#http.request<Document<typeof body>>('PUT', `/v1/addons/${enc(key)}`, { body }),
  };

  readonly customers = {
    put: (id: string, body: { name: string; metadata?: Record<string, unknown> }) =>
      this.#http.request<Document<typeof body>>('PUT', `/v1/customers/${enc(id)}`, { body }),
    get: (id: string) => this.#http.request<Document<{ name: string }>>('GET', `/v1/customers/${enc(id)}`),
    list: () =>
      this.#http.request<{ items: Document<{ customerId: string; name: string }>[] }>('GET', '/v1/customers'),
    subscribe: (id: string, body: { plan: string; addons?: string[]; overrides?: unknown[] }) =>
      this.#http.request<Document<typeof body>>('PUT', `/v1/customers/${enc(id)}/subscription`, { body }),
    subscription: (id: string) =>
      this.#http.request<Document<{ plan: string; addons: string[] }>>(
        'GET',
        `/v1/customers/${enc(id)}/subscription`,
      ),
    grant: (id: string, body: GrantBody) =>
      this.#http.request<{ id: string; amount: string }>('POST', `/v1/customers/${enc(id)}/grants`, {
        body: { ...body, idempotencyKey: body.idempotencyKey ?? randomUUID() },
      }),
    putEntity: (id: string, entityId: string, body: { type: string; parentId?: string }) =>
      this.#http.request<Document<typeof body>>('PUT', `/v1/customers/${enc(id)}/entities/${enc(entityId)}`, {
        body,
      }),
    entities: (id: string) =>
      this.#http.request<{ items: Document<{ entityId: string; type: string; parentId?: string }>[] }>(
        'GET',
        `/v1/customers/${enc(id)}/entities`,
      ),
    entitlements: (id: string) =>
      this.#http.request<{ entitlements: Entitlement[] }>('GET', `/v1/customers/${enc(id)}/entitlements`),
    entitlement: (id: string, feature: string) =>
      this.#http.request<Entitlement>('GET', `/v1/customers/${enc(id)}/entitlements/${enc(feature)}`),
    balances: (id: string) =>
      this.#http.request<{ customerId: string; balances: Balance[] }>(
        'GET',
        `/v1/customers/${enc(id)}/balances`,
      ),
    ledger: (id: string, query: { creditType?: string; cursor?: string } = {}) =>
      this.#http.request<{
        entries: { id: string; kind: string; amount: string }[];
        nextCursor: string | null;
      }>('GET', `/v1/customers/${enc(id)}/ledger`, { query }),
  };

  readonly budgets = {
    put: (
      id: string,
      body: Record<string, unknown> & { customerId: string; period: string; limit: Amount },
    ) => this.#http.request<Document<typeof body>>('PUT', `/v1/budgets/${enc(id)}`, { body }),
    get: (id: string) =>
      this.#http.request<Document<{ customerId: string }>>('GET', `/v1/budgets/${enc(id)}`),
    list: () => this.#http.request<{ items: Document<{ budgetId: string }>[] }>('GET', '/v1/budgets'),
    status: (id: string) =>
      this.#http.request<{ budgetId: string; counters: { used: string; held: string; remaining: string }[] }>(
        'GET',
        `/v1/budgets/${enc(id)}/status`,
      ),
    history: (id: string, query: { from?: string; to?: string } = {}) =>
      this.#http.request<{ points: { windowStart: string; used: string }[] }>(
        'GET',
        `/v1/budgets/${enc(id)}/history`,
        {
          query,
        },
      ),
  };

  readonly blocks = {
    put: (id: string, body: { scope: Record<string, string>; reason?: string }) =>
      this.#http.request<Document<typeof body>>('PUT', `/v1/blocks/${enc(id)}`, { body }),
    delete: (id: string) => this.#http.request<void>('DELETE', `/v1/blocks/${enc(id)}`),
    list: () => this.#http.request<{ items: Document<{ blockId: string }>[] }>('GET', '/v1/blocks'),
  };

  readonly meters = {
    put: (
      slug: string,
      body: {
        eventType: string;
        aggregation: string;
        valueProperty?: string;
        groupBy?: Record<string, string>;
      },
    ) => this.#http.request<Document<typeof body>>('PUT', `/v1/meters/${enc(slug)}`, { body }),
    list: () => this.#http.request<{ items: Document<{ slug: string }>[] }>('GET', '/v1/meters'),
    query: (slug: string, query: UsageQuery = {}) => {
      const { filterGroupBy, ...rest } = query;
      const q: Record<string, string | readonly string[] | undefined> = { ...rest };
      for (const [k, v] of Object.entries(filterGroupBy ?? {})) q[`filterGroupBy[${k}]`] = v;
      return this.#http.request<UsageResult>('GET', `/v1/meters/${enc(slug)}/query`, { query: q });
    },
  };

  // --- metering, logs, keys ---------------------------------------------------------------

  /** Usage events, durable once this resolves; a resent event (same source and id) counts once. */
  ingest(events: CloudEvent | CloudEvent[]): Promise<void> {
    return this.#http.request('POST', '/v1/events', { body: events });
  }

  exportAggregates(after = '0', limit?: number) {
    return this.#http.request<{ aggregates: unknown[]; cursor: string }>('GET', '/v1/metering/export', {
      query: { after, limit },
    });
  }

  decisionLog(
    query: {
      customerId?: string;
      decision?: 'allow' | 'deny';
      reason?: string;
      cursor?: string;
      limit?: number;
    } = {},
  ) {
    return this.#http.request<{
      decisions: { decisionId: string; decision: string }[];
      nextCursor: string | null;
    }>('GET', '/v1/decisions', { query });
  }

  decisionById(id: string) {
    return this.#http.request<{ decisionId: string; decision: string }>('GET', `/v1/decisions/${enc(id)}`);
  }

  whoami() {
    return this.#http.request<{ keyId: string; tenant: string; scopes: string[] }>('GET', '/v1/whoami');
  }
}

function tokensOf(
  usage:
    | { input_tokens?: number; output_tokens?: number; prompt_tokens?: number; completion_tokens?: number }
    | undefined,
): number {
  if (!usage) return 0;
  return (
    (usage.input_tokens ?? usage.prompt_tokens ?? 0) + (usage.output_tokens ?? usage.completion_tokens ?? 0)
  );
}
