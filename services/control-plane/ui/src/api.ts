/** The Allot API as the UI calls it: the same routes as any client, with the key the user gave. */
const KEY = 'allot.apiKey';

export function apiKey(): string | null {
  return localStorage.getItem(KEY);
}

export function setApiKey(key: string | null): void {
  if (key) localStorage.setItem(KEY, key);
  else localStorage.removeItem(KEY);
}

export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

export async function api<T = unknown>(method: string, path: string, body?: unknown): Promise<T> {
  const headers: Record<string, string> = { authorization: `Bearer ${apiKey() ?? ''}` };
  if (body !== undefined) headers['content-type'] = 'application/json';
  const res = await fetch(path, {
    method,
    headers,
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const text = await res.text();
  const parsed = text ? (JSON.parse(text) as unknown) : null;
  if (!res.ok) {
    const message = (parsed as { message?: string } | null)?.message ?? `${res.status}`;
    throw new ApiError(res.status, message);
  }
  return parsed as T;
}

export interface Doc {
  version: number;
  updatedAt: string;
}
export interface Feature extends Doc {
  key: string;
  name: string;
  type: string;
  unit?: string;
}
export interface Plan extends Doc {
  key: string;
  name: string;
  entitlements: { feature: string; limit?: string; resetPeriod?: string }[];
  creditRates: { feature: string; creditType: string; rate?: string; formula?: string }[];
}
export interface Customer extends Doc {
  customerId: string;
  name: string;
}
export interface Balance {
  creditType: string;
  available: string;
  held: string;
  grants: {
    grantId: string;
    granted: string;
    remaining: string;
    category: string;
    expiresAt: string | null;
  }[];
}
export interface LedgerEntry {
  id: string;
  kind: string;
  amount: string;
  creditType: string;
  reservationId: string | null;
  at: string;
}
export interface Budget extends Doc {
  budgetId: string;
  customerId: string;
  scope: Record<string, string>;
  metric: string;
  period: string;
  limit: string;
  mode: string;
  kind: string;
}
export interface BudgetStatus {
  budgetId: string;
  counters: { scope: Record<string, string>; limit: string; used: string; held: string; remaining: string }[];
}
export interface Block extends Doc {
  blockId: string;
  scope: Record<string, string>;
  reason?: string;
}
export interface Meter extends Doc {
  slug: string;
  eventType: string;
  aggregation: string;
  valueProperty?: string;
  groupBy: Record<string, string>;
}
export interface Entity extends Doc {
  customerId: string;
  entityId: string;
  type: string;
  parentId?: string;
}
export interface Tenant {
  id: string;
  name: string;
  appliedVersion: number;
  connected: boolean;
  lastSeen: string | null;
}
export interface UsageRow {
  value: number;
  windowStart: string;
  windowEnd: string;
  subject: string | null;
}
