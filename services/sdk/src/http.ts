/**
 * The HTTP layer: JSON in and out, the API key, retries with backoff on what a retry can fix
 * (network errors, 429, 5xx), and one idempotency key per logical call, reused by every retry
 * of it, so a retried mutation applies once.
 */
export interface AllotOptions {
  /** Where the API is, e.g. http://localhost:8080. */
  baseUrl: string;
  apiKey: string;
  /** Retries after the first attempt. Default 3. */
  retries?: number;
  /** First backoff; doubles per retry. Default 100 ms. */
  retryDelayMs?: number;
  /** Per attempt. Default 10 s. */
  timeoutMs?: number;
  fetch?: typeof fetch;
}

export class AllotError extends Error {
  override readonly name = 'AllotError';
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly requestId: string | null,
  ) {
    super(message);
  }
}

export interface RequestOptions {
  body?: unknown;
  query?: Record<string, string | number | boolean | readonly string[] | undefined>;
  signal?: AbortSignal;
  /** Expect a non-JSON answer (text). */
  text?: boolean;
}

const RETRYABLE = new Set([408, 425, 429, 500, 502, 503, 504]);

export class Http {
  readonly #o: Required<Omit<AllotOptions, 'fetch'>> & { fetch: typeof fetch };

  constructor(options: AllotOptions) {
    this.#o = {
      baseUrl: options.baseUrl.replace(/\/$/, ''),
      apiKey: options.apiKey,
      retries: options.retries ?? 3,
      retryDelayMs: options.retryDelayMs ?? 100,
      timeoutMs: options.timeoutMs ?? 10_000,
      fetch: options.fetch ?? fetch,
    };
  }

  async request<T>(method: string, path: string, options: RequestOptions = {}): Promise<T> {
    const url = new URL(this.#o.baseUrl + path);
    for (const [k, v] of Object.entries(options.query ?? {})) {
      if (v === undefined) continue;
      if (Array.isArray(v)) for (const one of v) url.searchParams.append(k, String(one));
      else url.searchParams.set(k, String(v));
    }
    const headers: Record<string, string> = { authorization: `Bearer ${this.#o.apiKey}` };
    if (options.body !== undefined) headers['content-type'] = 'application/json';
    const body = options.body === undefined ? undefined : JSON.stringify(options.body);
    let lastError: unknown;
    for (let attempt = 0; attempt <= this.#o.retries; attempt++) {
      if (attempt > 0) await sleep(this.#o.retryDelayMs * 2 ** (attempt - 1), options.signal);
      const timeout = AbortSignal.timeout(this.#o.timeoutMs);
      const signal = options.signal ? AbortSignal.any([options.signal, timeout]) : timeout;
      let res: Response;
      try {
        res = await this.#o.fetch(url, { method, headers, ...(body === undefined ? {} : { body }), signal });
      } catch (error) {
        if (options.signal?.aborted) throw error;
        lastError = error;
        continue;
      }
      const text = await res.text();
      if (res.ok) return (options.text ? text : text ? JSON.parse(text) : undefined) as T;
      const parsed = safeJson(text) as { code?: string; message?: string; requestId?: string } | null;
      const error = new AllotError(
        res.status,
        parsed?.code ?? 'error',
        parsed?.message ?? `HTTP ${res.status}`,
        parsed?.requestId ?? null,
      );
      if (!RETRYABLE.has(res.status)) throw error;
      lastError = error;
    }
    throw lastError;
  }
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return null;
  }
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(resolve, ms);
    signal?.addEventListener(
      'abort',
      () => {
        clearTimeout(timer);
        reject(signal.reason);
      },
      { once: true },
    );
  });
}
