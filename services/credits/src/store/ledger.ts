/**
 * The durable side of the credits ledger: the worker's `applyEvents` and the synchronous writes
 * (grants, credit types, pools). Tables are in migrations/; amounts are bigint micro-units.
 *
 * Sign convention of `ledger.amount`: entries that move a balance are signed (grant +, debit -,
 * expiry -, void -, adjustment +/-), so the entries of one grant sum to its remaining balance
 * and the entries of a pool with `grant_id` null sum to minus its overdraft. `release` and
 * `overage` are informational and carry a positive magnitude.
 */
import type { SqlExecutor, SqlValue } from '@allot/kit/sql';
import { MAX_MICROS } from '../domain/amount.ts';
import type { CreditEvent } from '../domain/events.ts';

export type LedgerKind = 'grant' | 'debit' | 'release' | 'expiry' | 'void' | 'adjustment' | 'overage';
export type HoldStatus = 'active' | 'settled' | 'released' | 'expired';
export type GrantCategory = 'paid' | 'promotional';
export type PoolMode = 'hard' | 'soft';

/** A batch holds an event the ledger cannot take (see `creditEventProblem`). */
export class InvalidCreditEventError extends Error {
  override readonly name = 'InvalidCreditEventError';
  readonly eventId: string;

  constructor(eventId: string, reason: string) {
    super(`credit event ${eventId}: ${reason}`);
    this.eventId = eventId;
  }
}

/** The same idempotency key (or grant id) came back with a different grant. */
export class GrantConflictError extends Error {
  override readonly name = 'GrantConflictError';
  readonly existing: GrantRecord;

  constructor(message: string, existing: GrantRecord) {
    super(message);
    this.existing = existing;
  }
}

// ---------------------------------------------------------------------------------------------
// applyEvents

export interface ApplyResult {
  /** Distinct event ids in the batch (copies inside it count once). */
  events: number;
  /** Ledger entries inserted; entries already there (a redelivery) are not counted. */
  ledgerEntries: number;
}

/**
 * Applies a batch of events inside the caller's transaction, in one statement, idempotently by
 * event id: a redelivered or duplicated event changes nothing, and the events may come in any
 * order and any batching with the same final state (see `planEvents`).
 *
 * Every ledger entry's id derives from its event id, so `UNIQUE (tenant, id)` turns a replay
 * into a no-op; grant balances and overdrafts move by what the ledger INSERT actually returned,
 * in the same statement, so they move exactly once too. Rows are locked in key order, so two
 * workers applying overlapping batches at once wait for each other instead of deadlocking on
 * balances and holds.
 */
export async function applyEvents(tx: SqlExecutor, events: readonly CreditEvent[]): Promise<ApplyResult> {
  const plan = planEvents(events);
  if (plan.ledger.length === 0 && plan.holds.length === 0 && plan.grantMarks.length === 0) {
    return { events: plan.events, ledgerEntries: 0 };
  }
  const { rows } = await tx.query<{ ledger_entries: string }>(APPLY_SQL, applyParams(plan));
  return { events: plan.events, ledgerEntries: Number(rows[0]?.ledger_entries ?? 0) };
}

/** One ledger row to insert. `at` is epoch ms. */
export interface PlannedEntry {
  tenant: string;
  id: string;
  customerId: string;
  creditType: string;
  resourceId: string;
  kind: LedgerKind;
  amount: bigint;
  grantId: string | null;
  holdId: string | null;
  eventId: string;
  at: number;
}

/**
 * One hold's merged state from the events of a batch. `reserved`: the reservation fields
 * (amount, expiresAt, createdAt, idempotencyKey, metadata) come from `hold.reserved`; otherwise
 * they are placeholders from a settle or release that overtook it.
 */
export interface PlannedHold {
  tenant: string;
  id: string;
  customerId: string;
  creditType: string;
  resourceId: string;
  reserved: boolean;
  amount: bigint;
  expiresAt: number;
  createdAt: number;
  idempotencyKey: string | null;
  metadata: Record<string, unknown> | null;
  status: HoldStatus;
  settled: bigint | null;
  overage: bigint | null;
  finishedAt: number | null;
  /** What the finishing event said; null while active. */
  outcome: HoldOutcome | null;
}

/** A finished hold's answer, as its event gave it (amounts in micro-units, as decimal strings). */
export type HoldOutcome =
  | {
      status: 'settled';
      held: string;
      requested: string;
      debits: { grantId: string | null; amount: string }[];
      released: string;
      overage: string;
      late: boolean;
    }
  | { status: 'released' | 'expired'; amount: string };

export interface PlannedGrantMark {
  tenant: string;
  grantId: string;
  expiredAt: number | null;
  voidedAt: number | null;
  /** What the first expiry or void took off the grant. */
  amount: bigint;
}

export interface LedgerPlan {
  /** Distinct event ids. */
  events: number;
  /** Sorted by (at, tenant, id). */
  ledger: PlannedEntry[];
  /** Sorted by (tenant, id): the order rows are locked in. */
  holds: PlannedHold[];
  grantMarks: PlannedGrantMark[];
}

/**
 * A hold only moves up this order: a final status never returns to active, and a settle (a late
 * one after the expiry, say) outranks the release or expiry it followed, so the outcome does not
 * depend on the order the two events are applied in.
 */
const STATUS_RANK: Readonly<Record<HoldStatus, number>> = { active: 0, expired: 1, released: 2, settled: 3 };

/**
 * What a batch writes, computed without I/O: events deduplicated by id, ledger rows with ids
 * derived from the event id, one merged row per hold, one mark per expired or voided grant.
 */
export function planEvents(events: readonly CreditEvent[]): LedgerPlan {
  const seen = new Set<string>();
  const ledger: PlannedEntry[] = [];
  const holds = new Map<string, PlannedHold>();
  const grantMarks = new Map<string, PlannedGrantMark>();
  for (const event of events) {
    // Event ids are unique per effect, tenants included; the key is scoped anyway, as the table's is.
    const key = `${event.tenant}\u0000${event.id}`;
    if (seen.has(key)) continue;
    seen.add(key);
    const problem = creditEventProblem(event);
    if (problem !== null) throw new InvalidCreditEventError(event.id, problem);
    switch (event.type) {
      case 'hold.reserved':
        mergeHold(holds, event, {
          reserved: true,
          amount: BigInt(event.amount),
          expiresAt: event.expiresAt,
          createdAt: event.at,
          idempotencyKey: event.idempotencyKey,
          metadata: event.metadata,
          status: 'active',
          settled: null,
          overage: null,
          finishedAt: null,
          outcome: null,
        });
        break;
      case 'hold.settled': {
        let debited = 0n;
        for (let index = 0; index < event.debits.length; index++) {
          const slice = event.debits[index]!;
          const amount = BigInt(slice.amount);
          debited += amount;
          addEntry(ledger, event, `debit:${index}`, 'debit', -amount, slice.grantId);
        }
        const overage = BigInt(event.overage);
        addEntry(ledger, event, 'overage', 'overage', overage, null);
        addEntry(ledger, event, 'release', 'release', BigInt(event.released), null);
        mergeHold(holds, event, {
          reserved: false,
          amount: BigInt(event.held),
          expiresAt: event.at,
          createdAt: event.at,
          idempotencyKey: null,
          metadata: null,
          status: 'settled',
          settled: debited,
          overage,
          finishedAt: event.at,
          outcome: {
            status: 'settled',
            held: event.held,
            requested: event.requested,
            debits: event.debits,
            released: event.released,
            overage: event.overage,
            late: event.late,
          },
        });
        break;
      }
      case 'hold.released': {
        const amount = BigInt(event.amount);
        addEntry(ledger, event, 'release', 'release', amount, null);
        mergeHold(holds, event, {
          reserved: false,
          amount,
          expiresAt: event.at,
          createdAt: event.at,
          idempotencyKey: null,
          metadata: null,
          status: event.reason,
          settled: null,
          overage: null,
          finishedAt: event.at,
          outcome: { status: event.reason, amount: event.amount },
        });
        break;
      }
      case 'grant.expired':
        addEntry(ledger, event, 'expiry', 'expiry', -BigInt(event.amount), event.grantId);
        markGrant(grantMarks, event, 'expiredAt');
        break;
      case 'grant.voided':
        addEntry(ledger, event, 'void', 'void', -BigInt(event.amount), event.grantId);
        markGrant(grantMarks, event, 'voidedAt');
        break;
      case 'overdraft.settled':
        // Two entries so that sums stay true: the grant pays (debit on it), the overdraft is repaid.
        addEntry(ledger, event, 'debit', 'debit', -BigInt(event.amount), event.grantId);
        addEntry(ledger, event, 'repaid', 'adjustment', BigInt(event.amount), null);
        break;
    }
  }
  // Rows are inserted (and their keys locked) in one total order that does not depend on how
  // events were batched, so two transactions applying overlapping batches cannot deadlock.
  ledger.sort((a, b) => a.at - b.at || compareKeys(a.tenant, a.id, b.tenant, b.id));
  return {
    events: seen.size,
    ledger,
    holds: [...holds.values()].sort((a, b) => compareKeys(a.tenant, a.id, b.tenant, b.id)),
    grantMarks: [...grantMarks.values()].sort((a, b) =>
      compareKeys(a.tenant, a.grantId, b.tenant, b.grantId),
    ),
  };
}

/** Entries of zero move nothing and are left out. */
function addEntry(
  ledger: PlannedEntry[],
  event: CreditEvent,
  suffix: string,
  kind: LedgerKind,
  amount: bigint,
  grantId: string | null,
): void {
  if (amount === 0n) return;
  ledger.push({
    tenant: event.tenant,
    id: `${event.id}:${suffix}`,
    customerId: event.customerId,
    creditType: event.creditType,
    resourceId: event.resourceId,
    kind,
    amount,
    grantId,
    holdId: 'holdId' in event ? event.holdId : null,
    eventId: event.id,
    at: event.at,
  });
}

/**
 * Why the ledger cannot take `event`, or null. The zod schema checks shapes; this checks what
 * PostgreSQL would otherwise reject, on every delivery, or, worse, accept: negative amounts (a
 * negative debit would credit the grant), amounts beyond `MAX_MICROS`, times outside what a Date
 * can hold, and NUL characters (which neither text nor jsonb can store).
 */
export function creditEventProblem(event: CreditEvent): string | null {
  const amounts: [string, string][] = [];
  const times: [string, number][] = [['at', event.at]];
  switch (event.type) {
    case 'hold.reserved':
      amounts.push(['amount', event.amount]);
      times.push(['expiresAt', event.expiresAt]);
      break;
    case 'hold.settled':
      amounts.push(
        ['held', event.held],
        ['requested', event.requested],
        ['released', event.released],
        ['overage', event.overage],
      );
      event.debits.forEach((slice, index) => {
        amounts.push([`debits[${index}].amount`, slice.amount]);
      });
      break;
    case 'hold.released':
    case 'grant.expired':
    case 'grant.voided':
    case 'overdraft.settled':
      amounts.push(['amount', event.amount]);
      break;
  }
  for (const [field, text] of amounts) {
    const value = BigInt(text);
    if (value < 0n) return `${field} is negative (${text})`;
    if (value > MAX_MICROS) return `${field} is beyond ${MAX_MICROS} micro-units (${text})`;
  }
  for (const [field, ms] of times) {
    if (Math.abs(ms) > MAX_DATE_MS) return `${field} is not a representable time (${ms})`;
  }
  if (
    textsOf(event).some((text) => text.includes('\u0000')) ||
    (event.type === 'hold.reserved' && hasNul(event.metadata))
  ) {
    return 'a text holds a NUL character';
  }
  return null;
}

function textsOf(event: CreditEvent): string[] {
  const texts = [event.id, event.tenant, event.customerId, event.creditType, event.resourceId];
  switch (event.type) {
    case 'hold.reserved':
      texts.push(event.holdId, event.idempotencyKey ?? '');
      break;
    case 'hold.settled':
      texts.push(event.holdId);
      for (const slice of event.debits) texts.push(slice.grantId ?? '');
      break;
    case 'hold.released':
      texts.push(event.holdId);
      break;
    default:
      texts.push(event.grantId);
  }
  return texts;
}

function hasNul(value: unknown): boolean {
  if (typeof value === 'string') return value.includes('\u0000');
  if (Array.isArray(value)) return value.some(hasNul);
  if (value !== null && typeof value === 'object') {
    for (const key in value) {
      if (key.includes('\u0000') || hasNul((value as Record<string, unknown>)[key])) return true;
    }
  }
  return false;
}

/** The range of a JavaScript Date. */
const MAX_DATE_MS = 8.64e15;

type HoldState = Omit<PlannedHold, 'tenant' | 'id' | 'customerId' | 'creditType' | 'resourceId'>;

/** The same rule as the holds upsert in `APPLY_SQL`, so a batch merges as the table does. */
function mergeHold(
  holds: Map<string, PlannedHold>,
  event: CreditEvent & { holdId: string },
  incoming: HoldState,
): void {
  const key = `${event.tenant}\u0000${event.holdId}`;
  const current = holds.get(key);
  if (!current) {
    holds.set(key, {
      tenant: event.tenant,
      id: event.holdId,
      customerId: event.customerId,
      creditType: event.creditType,
      resourceId: event.resourceId,
      ...incoming,
    });
    return;
  }
  if (incoming.reserved && !current.reserved) {
    current.reserved = true;
    current.amount = incoming.amount;
    current.expiresAt = incoming.expiresAt;
    current.createdAt = incoming.createdAt;
    current.idempotencyKey = incoming.idempotencyKey;
    current.metadata = incoming.metadata;
  }
  if (STATUS_RANK[incoming.status] > STATUS_RANK[current.status]) {
    current.status = incoming.status;
    current.settled = incoming.settled;
    current.overage = incoming.overage;
    current.finishedAt = incoming.finishedAt;
    current.outcome = incoming.outcome;
  }
}

/** The same rule as the grants update in `APPLY_SQL`: the first expiry or void sets the amount. */
function markGrant(
  marks: Map<string, PlannedGrantMark>,
  event: CreditEvent & { grantId: string; amount: string },
  field: 'expiredAt' | 'voidedAt',
): void {
  const key = `${event.tenant}\u0000${event.grantId}`;
  let mark = marks.get(key);
  if (!mark) {
    mark = {
      tenant: event.tenant,
      grantId: event.grantId,
      expiredAt: null,
      voidedAt: null,
      amount: BigInt(event.amount),
    };
    marks.set(key, mark);
  }
  mark[field] ??= event.at;
}

function compareKeys(tenantA: string, idA: string, tenantB: string, idB: string): number {
  if (tenantA !== tenantB) return tenantA < tenantB ? -1 : 1;
  if (idA !== idB) return idA < idB ? -1 : 1;
  return 0;
}

/**
 * The batch as three JSON parameters, one per table, read back with `json_to_recordset`: the
 * text is built by JSON.stringify (native) and parsed once by PostgreSQL, which is several times
 * cheaper on both sides than array parameters at a few thousand rows. Amounts travel as strings
 * (bigint), times as epoch milliseconds.
 */
function applyParams(plan: LedgerPlan): SqlValue[] {
  const entries = plan.ledger.map((e) => ({
    tenant: e.tenant,
    id: e.id,
    customer_id: e.customerId,
    credit_type: e.creditType,
    resource_id: e.resourceId,
    kind: e.kind,
    amount: e.amount.toString(),
    grant_id: e.grantId,
    hold_id: e.holdId,
    event_id: e.eventId,
    at: e.at,
  }));
  const holds = plan.holds.map((h) => ({
    tenant: h.tenant,
    id: h.id,
    customer_id: h.customerId,
    credit_type: h.creditType,
    resource_id: h.resourceId,
    reserved: h.reserved,
    amount: h.amount.toString(),
    expires_at: h.expiresAt,
    created_at: h.createdAt,
    idempotency_key: h.idempotencyKey,
    metadata: h.metadata,
    status: h.status,
    settled: h.settled?.toString() ?? null,
    overage: h.overage?.toString() ?? null,
    finished_at: h.finishedAt,
    outcome: h.outcome,
  }));
  const marks = plan.grantMarks.map((m) => ({
    tenant: m.tenant,
    grant_id: m.grantId,
    expired_at: m.expiredAt,
    voided_at: m.voidedAt,
    amount: m.amount.toString(),
  }));
  return [JSON.stringify(entries), JSON.stringify(holds), JSON.stringify(marks)];
}

/** Epoch milliseconds to timestamptz, exactly (no float seconds). */
const TIME = (ms: string) => `('epoch'::timestamptz + ${ms} * interval '1 millisecond')`;

const RANK = (status: string) => `array_position('{active,expired,released,settled}'::text[], ${status})`;

/**
 * One round trip per batch. Data-modifying CTEs all run, each against the statement's snapshot;
 * `grant_balances` and `pool_overdrafts` move by the rows `inserted` returned, which leaves out
 * every entry that was already there.
 */
const APPLY_SQL = `
WITH entries AS (
  SELECT * FROM ROWS FROM (json_to_recordset($1::json) AS (
    tenant text, id text, customer_id text, credit_type text, resource_id text, kind text,
    amount bigint, grant_id text, hold_id text, event_id text, at bigint)) WITH ORDINALITY AS e
),
inserted AS (
  INSERT INTO credits.ledger
    (tenant, id, customer_id, credit_type, resource_id, kind, amount, grant_id, hold_id, event_id, at)
  SELECT tenant, id, customer_id, credit_type, resource_id, kind, amount, grant_id, hold_id, event_id, ${TIME('at')}
  FROM entries ORDER BY ordinality
  ON CONFLICT (tenant, id) DO NOTHING
  RETURNING tenant, customer_id, credit_type, resource_id, kind, amount, grant_id
),
balances AS (
  INSERT INTO credits.grant_balances AS b (tenant, grant_id, remaining)
  SELECT tenant, grant_id, sum(amount) FROM inserted
  WHERE grant_id IS NOT NULL AND kind <> 'grant'
  GROUP BY tenant, grant_id ORDER BY tenant, grant_id
  ON CONFLICT (tenant, grant_id) DO UPDATE SET remaining = b.remaining + excluded.remaining
),
overdrafts AS (
  INSERT INTO credits.pool_overdrafts AS o (tenant, customer_id, credit_type, resource_id, amount)
  SELECT tenant, customer_id, credit_type, resource_id, -sum(amount) FROM inserted
  WHERE grant_id IS NULL AND kind IN ('debit', 'adjustment')
  GROUP BY tenant, customer_id, credit_type, resource_id
  ORDER BY tenant, customer_id, credit_type, resource_id
  ON CONFLICT (tenant, customer_id, credit_type, resource_id) DO UPDATE SET amount = o.amount + excluded.amount
),
holds AS (
  INSERT INTO credits.holds AS h
    (tenant, id, customer_id, credit_type, resource_id, reserved, amount, expires_at, created_at,
     idempotency_key, metadata, status, settled, overage, finished_at, outcome)
  SELECT tenant, id, customer_id, credit_type, resource_id, reserved, amount, ${TIME('expires_at')},
    ${TIME('created_at')}, idempotency_key, metadata, status, settled, overage, ${TIME('finished_at')}, outcome
  FROM json_to_recordset($2::json) AS r (
    tenant text, id text, customer_id text, credit_type text, resource_id text, reserved boolean,
    amount bigint, expires_at bigint, created_at bigint, idempotency_key text, metadata jsonb,
    status text, settled bigint, overage bigint, finished_at bigint, outcome jsonb)
  ON CONFLICT (tenant, id) DO UPDATE SET
    reserved        = h.reserved OR excluded.reserved,
    amount          = CASE WHEN excluded.reserved AND NOT h.reserved THEN excluded.amount ELSE h.amount END,
    expires_at      = CASE WHEN excluded.reserved AND NOT h.reserved THEN excluded.expires_at ELSE h.expires_at END,
    created_at      = CASE WHEN excluded.reserved AND NOT h.reserved THEN excluded.created_at ELSE h.created_at END,
    idempotency_key = CASE WHEN excluded.reserved AND NOT h.reserved THEN excluded.idempotency_key ELSE h.idempotency_key END,
    metadata        = CASE WHEN excluded.reserved AND NOT h.reserved THEN excluded.metadata ELSE h.metadata END,
    status          = CASE WHEN ${RANK('excluded.status')} > ${RANK('h.status')} THEN excluded.status ELSE h.status END,
    settled         = CASE WHEN ${RANK('excluded.status')} > ${RANK('h.status')} THEN excluded.settled ELSE h.settled END,
    overage         = CASE WHEN ${RANK('excluded.status')} > ${RANK('h.status')} THEN excluded.overage ELSE h.overage END,
    finished_at     = CASE WHEN ${RANK('excluded.status')} > ${RANK('h.status')} THEN excluded.finished_at ELSE h.finished_at END,
    outcome         = CASE WHEN ${RANK('excluded.status')} > ${RANK('h.status')} THEN excluded.outcome ELSE h.outcome END
  WHERE (excluded.reserved AND NOT h.reserved) OR ${RANK('excluded.status')} > ${RANK('h.status')}
),
marks AS (
  UPDATE credits.grants g SET
    expired_at = coalesce(g.expired_at, ${TIME('m.expired_at')}),
    voided_at  = coalesce(g.voided_at, ${TIME('m.voided_at')}),
    retired_amount = coalesce(g.retired_amount, m.amount)
  FROM json_to_recordset($3::json) AS m (tenant text, grant_id text, expired_at bigint, voided_at bigint, amount bigint)
  WHERE g.tenant = m.tenant AND g.id = m.grant_id
    AND ((g.expired_at IS NULL AND m.expired_at IS NOT NULL) OR (g.voided_at IS NULL AND m.voided_at IS NOT NULL))
)
SELECT count(*) AS ledger_entries FROM inserted`;

// ---------------------------------------------------------------------------------------------
// Grants, credit types, pools

export interface NewGrant {
  tenant: string;
  id: string;
  customerId: string;
  creditType: string;
  /** '' or absent: the pool has no resource. */
  resourceId?: string;
  amount: bigint;
  category: GrantCategory;
  /** Lower burns first. Default 100. */
  priority?: number;
  /** Absent: now. Left out of the idempotency comparison when absent, since "now" differs on a retry. */
  effectiveAt?: Date;
  expiresAt?: Date | null;
  /** Decimal text, e.g. what the customer paid per credit. */
  costBasis?: string | null;
  metadata?: Record<string, unknown>;
  /** Unique per (tenant, customer). */
  idempotencyKey?: string | null;
}

export interface GrantRecord {
  tenant: string;
  id: string;
  customerId: string;
  creditType: string;
  resourceId: string;
  amount: bigint;
  category: GrantCategory;
  priority: number;
  effectiveAt: Date;
  expiresAt: Date | null;
  costBasis: string | null;
  metadata: Record<string, unknown>;
  idempotencyKey: string | null;
  createdAt: Date;
  voidedAt: Date | null;
  expiredAt: Date | null;
}

interface GrantRow {
  tenant: string;
  id: string;
  customer_id: string;
  credit_type: string;
  resource_id: string;
  amount: string;
  category: GrantCategory;
  priority: number;
  effective_at: Date;
  expires_at: Date | null;
  cost_basis: string | null;
  metadata: Record<string, unknown>;
  idempotency_key: string | null;
  created_at: Date;
  voided_at: Date | null;
  expired_at: Date | null;
}

export const GRANT_COLUMNS = `tenant, id, customer_id, credit_type, resource_id, amount, category, priority,
  effective_at, expires_at, cost_basis, metadata, idempotency_key, created_at, voided_at, expired_at`;

export function grantRecord(row: GrantRow): GrantRecord {
  return {
    tenant: row.tenant,
    id: row.id,
    customerId: row.customer_id,
    creditType: row.credit_type,
    resourceId: row.resource_id,
    amount: BigInt(row.amount),
    category: row.category,
    priority: row.priority,
    effectiveAt: new Date(row.effective_at),
    expiresAt: row.expires_at === null ? null : new Date(row.expires_at),
    costBasis: row.cost_basis,
    metadata: row.metadata,
    idempotencyKey: row.idempotency_key,
    createdAt: new Date(row.created_at),
    voidedAt: row.voided_at === null ? null : new Date(row.voided_at),
    expiredAt: row.expired_at === null ? null : new Date(row.expired_at),
  };
}

/**
 * The synchronous part of granting credits: the grant, its `grant` ledger entry (id
 * `<grantId>:grant`), its balance row and, if missing, its pool (hard by default), in one
 * statement. Idempotent by (tenant, customer, idempotencyKey) and by (tenant, id): the same
 * grant again returns the stored one with `created: false`; a different one under the same
 * key or id throws `GrantConflictError`. Putting the grant into Redis is the engine's part.
 */
export async function insertGrant(
  tx: SqlExecutor,
  grant: NewGrant,
): Promise<{ grant: GrantRecord; created: boolean }> {
  if (grant.amount <= 0n || grant.amount > MAX_MICROS) {
    throw new RangeError(`grant ${grant.id}: amount must be between 1 and ${MAX_MICROS} micro-units`);
  }
  const body: SqlValue[] = [
    grant.tenant,
    grant.id,
    grant.customerId,
    grant.creditType,
    grant.resourceId ?? '',
    grant.amount,
    grant.category,
    grant.priority ?? DEFAULT_PRIORITY,
    grant.effectiveAt ?? null,
    grant.expiresAt ?? null,
    grant.costBasis ?? null,
    JSON.stringify(grant.metadata ?? {}),
    grant.idempotencyKey ?? null,
  ];
  const { rows } = await tx.query<GrantRow>(INSERT_GRANT_SQL, body);
  const inserted = rows[0];
  if (inserted) return { grant: grantRecord(inserted), created: true };

  const { rows: existing } = await tx.query<GrantRow & { same: boolean; by_key: boolean }>(
    `SELECT ${GRANT_COLUMNS},
       customer_id = $3 AND credit_type = $4 AND resource_id = $5 AND amount = $6::bigint
         AND category = $7 AND priority = $8::int
         AND ($9::timestamptz IS NULL OR effective_at = $9::timestamptz)
         AND expires_at IS NOT DISTINCT FROM $10::timestamptz
         AND cost_basis IS NOT DISTINCT FROM $11::numeric
         AND metadata = $12::jsonb
         AND ($13::text IS NULL OR idempotency_key IS NOT DISTINCT FROM $13::text) AS same,
       (customer_id = $3 AND idempotency_key = $13::text) IS TRUE AS by_key
     FROM credits.grants
     WHERE tenant = $1 AND (id = $2 OR (customer_id = $3 AND idempotency_key = $13::text))
     ORDER BY by_key DESC`,
    body,
  );
  const found = existing[0];
  if (!found) throw new Error(`grant ${grant.id}: neither inserted nor found`);
  const record = grantRecord(found);
  // Found by key first: a retry may carry a newly generated id, and the key decides.
  if (found.same) return { grant: record, created: false };
  throw new GrantConflictError(
    found.by_key
      ? `idempotency key ${JSON.stringify(grant.idempotencyKey)} was already used for a different grant (${found.id})`
      : `grant ${JSON.stringify(grant.id)} already exists with a different body`,
    record,
  );
}

const DEFAULT_PRIORITY = 100;

const INSERT_GRANT_SQL = `
WITH inserted AS (
  INSERT INTO credits.grants
    (tenant, id, customer_id, credit_type, resource_id, amount, category, priority, effective_at,
     expires_at, cost_basis, metadata, idempotency_key)
  VALUES ($1, $2, $3, $4, $5, $6::bigint, $7, $8::int, coalesce($9::timestamptz, now()),
          $10::timestamptz, $11::numeric, $12::jsonb, $13)
  ON CONFLICT DO NOTHING
  RETURNING ${GRANT_COLUMNS}
),
entry AS (
  INSERT INTO credits.ledger (tenant, id, customer_id, credit_type, resource_id, kind, amount, grant_id, at)
  SELECT tenant, id || ':grant', customer_id, credit_type, resource_id, 'grant', amount, id, created_at
  FROM inserted
),
balance AS (
  INSERT INTO credits.grant_balances AS b (tenant, grant_id, remaining)
  SELECT tenant, id, amount FROM inserted
  ON CONFLICT (tenant, grant_id) DO UPDATE SET remaining = b.remaining + excluded.remaining
),
pool AS (
  INSERT INTO credits.pools (tenant, customer_id, credit_type, resource_id)
  SELECT tenant, customer_id, credit_type, resource_id FROM inserted
  ON CONFLICT DO NOTHING
)
SELECT * FROM inserted`;

export interface CreditTypeRecord {
  tenant: string;
  key: string;
  name: string;
  unit: string | null;
  createdAt: Date;
  updatedAt: Date;
}

/** Creates or renames a credit type (a custom currency: "credits", "gpu-minutes"). */
export async function upsertCreditType(
  sql: SqlExecutor,
  creditType: { tenant: string; key: string; name: string; unit?: string | null },
): Promise<CreditTypeRecord> {
  const { rows } = await sql.query<{
    tenant: string;
    key: string;
    name: string;
    unit: string | null;
    created_at: Date;
    updated_at: Date;
  }>(
    `INSERT INTO credits.credit_types (tenant, key, name, unit) VALUES ($1, $2, $3, $4)
     ON CONFLICT (tenant, key) DO UPDATE SET name = excluded.name, unit = excluded.unit, updated_at = now()
     RETURNING tenant, key, name, unit, created_at, updated_at`,
    [creditType.tenant, creditType.key, creditType.name, creditType.unit ?? null],
  );
  const row = rows[0]!;
  return {
    tenant: row.tenant,
    key: row.key,
    name: row.name,
    unit: row.unit,
    createdAt: new Date(row.created_at),
    updatedAt: new Date(row.updated_at),
  };
}

export interface PoolSettings {
  tenant: string;
  customerId: string;
  creditType: string;
  resourceId?: string;
  /** Default hard: never below zero. */
  mode?: PoolMode;
  /** Auto-recharge: below `rechargeThreshold` available, ask for `rechargeTarget - available`, at most the cap a month. */
  rechargeThreshold?: bigint | null;
  rechargeTarget?: bigint | null;
  rechargeMonthlyCap?: bigint | null;
  lowBalanceThreshold?: bigint | null;
}

export interface PoolRecord {
  tenant: string;
  customerId: string;
  creditType: string;
  resourceId: string;
  mode: PoolMode;
  rechargeThreshold: bigint | null;
  rechargeTarget: bigint | null;
  rechargeMonthlyCap: bigint | null;
  lowBalanceThreshold: bigint | null;
}

/** Creates a pool or replaces its settings: what is absent goes back to its default. */
export async function upsertPool(sql: SqlExecutor, pool: PoolSettings): Promise<PoolRecord> {
  const { rows } = await sql.query<Record<string, string | null>>(
    `INSERT INTO credits.pools AS p (tenant, customer_id, credit_type, resource_id, mode, recharge_threshold,
       recharge_target, recharge_monthly_cap, low_balance_threshold)
     VALUES ($1, $2, $3, $4, $5, $6::bigint, $7::bigint, $8::bigint, $9::bigint)
     ON CONFLICT (tenant, customer_id, credit_type, resource_id) DO UPDATE SET
       mode = excluded.mode, recharge_threshold = excluded.recharge_threshold,
       recharge_target = excluded.recharge_target, recharge_monthly_cap = excluded.recharge_monthly_cap,
       low_balance_threshold = excluded.low_balance_threshold, updated_at = now()
     RETURNING tenant, customer_id, credit_type, resource_id, mode, recharge_threshold, recharge_target,
       recharge_monthly_cap, low_balance_threshold`,
    [
      pool.tenant,
      pool.customerId,
      pool.creditType,
      pool.resourceId ?? '',
      pool.mode ?? 'hard',
      pool.rechargeThreshold ?? null,
      pool.rechargeTarget ?? null,
      pool.rechargeMonthlyCap ?? null,
      pool.lowBalanceThreshold ?? null,
    ],
  );
  const row = rows[0]!;
  const micros = (value: string | null | undefined) => (value == null ? null : BigInt(value));
  return {
    tenant: row.tenant!,
    customerId: row.customer_id!,
    creditType: row.credit_type!,
    resourceId: row.resource_id!,
    mode: row.mode as PoolMode,
    rechargeThreshold: micros(row.recharge_threshold),
    rechargeTarget: micros(row.recharge_target),
    rechargeMonthlyCap: micros(row.recharge_monthly_cap),
    lowBalanceThreshold: micros(row.low_balance_threshold),
  };
}
