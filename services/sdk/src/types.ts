/** The shapes of Allot's public API (docs: /docs on a running server, /openapi.json). */
export type Amount = string | number;
export type Dimensions = Record<string, string | number>;

export interface DecisionRequest {
  customerId: string;
  feature: string;
  units?: Amount;
  dimensions?: Dimensions;
  resourceId?: string | null;
  ttlMs?: number;
  idempotencyKey?: string;
}

export interface LimitState {
  id: string;
  kind: string;
  scope: Record<string, string>;
  limit: string;
  used: string;
  remaining: string;
}

export interface Decision {
  decisionId: string;
  decision: 'allow' | 'deny';
  reason: string | null;
  message?: string;
  reservationId: string | null;
  expiresAt: string | null;
  cost: { creditType: string; amount: string } | null;
  balance: { creditType: string; available: string } | null;
  limits: LimitState[];
  config: Record<string, number | string>;
  retryAfterMs: number | null;
  decidedBy: string | null;
}

export interface Settlement {
  reservationId: string;
  status: string;
  settled: string;
  released: string;
  overage: string;
  cost?: { creditType: string; amount: string } | null;
  balance?: { creditType: string; available: string } | null;
}

export interface SettleBody {
  units?: Amount;
  dimensions?: Dimensions;
  idempotencyKey?: string;
}

export interface Entitlement {
  feature: string;
  enabled: boolean;
  [key: string]: unknown;
}

export interface GrantBody {
  creditType: string;
  amount: Amount;
  category: 'paid' | 'promotional';
  priority?: number;
  effectiveAt?: string;
  expiresAt?: string;
  resourceId?: string;
  metadata?: Record<string, unknown>;
  idempotencyKey?: string;
}

export interface Balance {
  creditType: string;
  available: string;
  held: string;
  grants: { grantId: string; granted: string; remaining: string; category: string }[];
}

export interface CloudEvent {
  specversion?: '1.0';
  id: string;
  source: string;
  type: string;
  subject: string;
  time?: string;
  data?: unknown;
}

export interface UsageQuery {
  from?: string;
  to?: string;
  windowSize?: 'MINUTE' | 'HOUR' | 'DAY';
  windowTimeZone?: string;
  subject?: string[];
  groupBy?: string[];
  filterGroupBy?: Record<string, string>;
}

export interface UsageResult {
  from: string | null;
  to: string | null;
  windowSize: string | null;
  data: {
    value: number;
    windowStart: string;
    windowEnd: string;
    subject: string | null;
    groupBy: Record<string, string | null>;
  }[];
}

export type Document<T> = T & { version: number; updatedAt: string };
