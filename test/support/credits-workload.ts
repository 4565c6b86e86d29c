/**
 * The workload of the credits fault tests and what it must prove.
 *
 * A thousand clients reserve random amounts (a seeded PRNG picks sizes, actions and timing;
 * the interleaving is real) on one pool through several engines, then settle (partial, exact,
 * above the hold, late after expiry, twice at once through two engines), release, or let the
 * hold expire. A client retries a call that answered 503 with the same idempotency key or hold
 * id until it gets an answer, as a real client would; any other error is a failure. What every
 * successful call returned is recorded. A sampler reads the pool's hot state atomically all the
 * while and checks it is never overdrawn.
 *
 * Afterwards `verifyLedger` compares the PostgreSQL ledger with what the clients were told.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { AppError } from '@allot/kit';
import type { SqlExecutor } from '@allot/kit/sql';
import type { CreditsEngine, SettleResult } from '../../services/credits/src/engine.ts';
import type { PoolRef } from '../../services/credits/src/store/keys.ts';
import { CreditsSweeper } from '../../services/credits/src/sweeper.ts';
import { ledgerCaughtUp } from '../../services/credits/src/worker/worker.ts';
import { BURN_ORDER, GRANTED, inspectPool, type Rig } from './credits-rig.ts';

/** mulberry32: small, seeded, good enough to pick workloads. */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export type Action =
  | 'partial'
  | 'exact'
  | 'over'
  | 'release'
  | 'expire'
  | 'late-settle'
  | 'duplicate-settle'
  /** Reserved before the run with a long TTL; settled or released only when the test says. */
  | 'sticky';

const WEIGHTS: [Action, number][] = [
  ['partial', 30],
  ['exact', 15],
  ['over', 15],
  ['release', 15],
  ['expire', 10],
  ['late-settle', 8],
  ['duplicate-settle', 7],
];

export interface Plan {
  i: number;
  amount: bigint;
  action: Action;
  /** When the client starts, from the start of the run. */
  startMs: number;
  /** Between the reserve and the settle or release. */
  thinkMs: number;
  ttlMs: number;
  /** For partial and over settles. */
  fraction: number;
  /** Sends the reserve a second time (same key) and expects the same hold. */
  reserveTwice: boolean;
  engine: number;
}

/** What the clients were told, per hold. */
export interface HoldRecord {
  plan: Plan;
  holdId: string;
  amount: bigint;
  expiresAt: number;
  /** The first settle answer (the one the client acts on). */
  settle?: SettleResult;
  /** Further answers to the same settle (duplicates, retries): each must equal the first. */
  replays: SettleResult[];
  released?: bigint;
}

export interface WorkloadStats {
  reserved: number;
  insufficient: number;
  /** First reserves that answered 503, then `finished` (expired) on the retry. */
  expiredBeforeAnswer: number;
  /** Calls that answered 503 and were retried. */
  unavailable: number;
  /** By operation. */
  unavailableBy: Record<string, number>;
  /** Errors other than 503: each one fails the test. */
  unexpected: string[];
}

export interface Sample {
  samples: number;
  /** Reads of the ledger's grant balances taken meanwhile. */
  ledgerSamples: number;
  /** Reads that found Redis unreachable or the customer not loaded (rebuilding). */
  skipped: number;
  violations: string[];
  /** The least `granted - debits - holds` seen. */
  minHeadroom: bigint;
}

export interface Workload {
  records: Map<string, HoldRecord>;
  stats: WorkloadStats;
  /** Calls in flight right now. */
  inFlight(): number;
  /** Resolves when every client is done. */
  done: Promise<void>;
  /** Settles or releases one hold as its plan says, through the same retrying client. */
  finish(record: HoldRecord): Promise<void>;
}

export function planWorkload(seed: number, clients: number, engines: number): Plan[] {
  const random = mulberry32(seed);
  const between = (lo: number, hi: number) => lo + Math.floor(random() * (hi - lo + 1));
  const pick = (): Action => {
    let roll = random() * 100;
    for (const [action, weight] of WEIGHTS) {
      roll -= weight;
      if (roll < 0) return action;
    }
    return 'partial';
  };
  return Array.from({ length: clients }, (_, i) => {
    const action = pick();
    return {
      i,
      amount: BigInt(between(1_000, 40_000)),
      action,
      startMs: between(0, 3_000),
      thinkMs: between(0, 250),
      ttlMs: action === 'expire' || action === 'late-settle' ? between(400, 1_200) : 8_000,
      fraction: random(),
      reserveTwice: random() < 0.05,
      engine: i % engines,
    };
  });
}

const key = (r: SettleResult) =>
  JSON.stringify(r, (_, value: unknown) => (typeof value === 'bigint' ? value.toString() : value));

/** A settle answer as text, for comparing answers and showing them in failures. */
export const settleText = key;

/** How long a client keeps retrying a 503 before it reports the call as failed. */
const RETRY_FOR_MS = 40_000;

export function startWorkload(rig: Rig, plans: Plan[]): Workload {
  const records = new Map<string, HoldRecord>();
  const s: WorkloadStats = {
    reserved: 0,
    insufficient: 0,
    expiredBeforeAnswer: 0,
    unavailable: 0,
    unavailableBy: {},
    unexpected: [],
  };
  let inFlight = 0;
  const { pool } = rig;

  /** The call, retried on 503 only; anything else is recorded and rethrown. */
  const call = async <T>(
    what: string,
    op: string,
    fn: () => Promise<T>,
    retries?: { count: number },
  ): Promise<T> => {
    const deadline = Date.now() + RETRY_FOR_MS;
    for (;;) {
      inFlight++;
      try {
        return await fn();
      } catch (error) {
        const unavailable = error instanceof AppError && error.code === 'unavailable' && error.status === 503;
        if (unavailable) {
          s.unavailable++;
          s.unavailableBy[op] = (s.unavailableBy[op] ?? 0) + 1;
          if (retries) retries.count++;
        }
        if (!unavailable || Date.now() > deadline) {
          const text = error instanceof AppError ? `${error.code}: ${error.message}` : String(error);
          s.unexpected.push(`${what}: ${text}`);
          throw error;
        }
      } finally {
        inFlight--;
      }
      // Answered 503: back off a little, then the same call again (same key, same hold).
      await sleep(50 + Math.floor(Math.random() * 150));
    }
  };

  const client = async (plan: Plan) => {
    const engine = rig.engines[plan.engine]!;
    const other = rig.engines[(plan.engine + 1) % rig.engines.length]!;
    await sleep(plan.startMs);
    const request = { ...pool, amount: plan.amount, ttlMs: plan.ttlMs, idempotencyKey: `k${plan.i}` };
    const retries = { count: 0 };
    const hold = await call(`reserve ${plan.i}`, 'reserve', () => engine.reserve(request), retries);
    if (hold.status === 'insufficient') {
      s.insufficient++;
      return;
    }
    if (hold.status === 'finished' && retries.count > 0 && hold.outcome.status === 'expired') {
      // A reserve that answered 503 could not be made durable and was to be undone, but its
      // hold (shorter-lived than the publish timeout) expired first: the retry finds it over.
      s.expiredBeforeAnswer++;
      return;
    }
    if (hold.status !== 'reserved') {
      s.unexpected.push(`reserve ${plan.i}: answered ${hold.status} on a first reserve`);
      return;
    }
    s.reserved++;
    const record: HoldRecord = {
      plan,
      holdId: hold.holdId,
      amount: hold.amount,
      expiresAt: hold.expiresAt,
      replays: [],
    };
    records.set(hold.holdId, record);
    if (plan.reserveTwice) {
      const again = await call(`reserve again ${plan.i}`, 'reserve', () => other.reserve(request));
      // Unless it expired meanwhile (a fault can delay the retry past a short TTL), the same hold.
      const expired =
        again.status === 'finished' && again.outcome.status === 'expired' && Date.now() >= hold.expiresAt;
      if (
        !expired &&
        (again.status !== 'reserved' || again.holdId !== hold.holdId || again.amount !== hold.amount)
      ) {
        s.unexpected.push(`reserve again ${plan.i}: ${again.status} ${again.holdId}, not the same hold`);
      }
    }
    if (plan.action === 'sticky' || plan.action === 'expire') return;
    await sleep(plan.thinkMs);
    await finishHold(record, engine, other);
  };

  const finishHold = async (record: HoldRecord, engine: CreditsEngine, other: CreditsEngine) => {
    const { plan, holdId } = record;
    const ref = { ...pool, holdId };
    const held = record.amount;
    const part = (held * BigInt(Math.floor(plan.fraction * 1000))) / 1000n;
    const settle = (amount: bigint, via = engine) =>
      call(`settle ${plan.i}`, 'settle', () => via.settle({ ...ref, amount }));
    const tell = (result: SettleResult) => {
      if (record.settle) record.replays.push(result);
      else record.settle = result;
    };
    switch (plan.action) {
      case 'partial':
        tell(await settle(part));
        break;
      case 'exact':
      case 'sticky':
        tell(await settle(held));
        break;
      case 'over':
        tell(await settle(held + part + 1n));
        break;
      case 'release': {
        const released = await call(`release ${plan.i}`, 'release', () => engine.release(ref));
        if (released.released !== held || released.status !== 'released') {
          s.unexpected.push(`release ${plan.i}: ${released.status} ${released.released}, held ${held}`);
        }
        record.released = released.released;
        break;
      }
      case 'late-settle':
        await sleep(Math.max(0, record.expiresAt - Date.now()) + 60);
        tell(await settle(part));
        break;
      case 'duplicate-settle': {
        // The same settle twice at once through two gate processes: one applies, both answer alike.
        const [a, b] = await Promise.all([settle(part), settle(part, other)]);
        tell(a);
        tell(b);
        break;
      }
      case 'expire':
        break;
    }
  };

  const done = Promise.allSettled(plans.map(client)).then(() => undefined);
  return {
    records,
    stats: s,
    inFlight: () => inFlight,
    done,
    finish(record) {
      records.set(record.holdId, record);
      const engine = rig.engines[record.plan.engine]!;
      const other = rig.engines[(record.plan.engine + 1) % rig.engines.length]!;
      return finishHold(record, engine, other);
    },
  };
}

/** Reserves `count` long holds before the run, so a test can check they survive a fault. */
export async function reserveSticky(rig: Rig, count: number, amount: bigint): Promise<HoldRecord[]> {
  const out: HoldRecord[] = [];
  for (let i = 0; i < count; i++) {
    const plan: Plan = {
      i: 100_000 + i,
      amount,
      action: 'sticky',
      startMs: 0,
      thinkMs: 0,
      ttlMs: 60_000,
      fraction: 0.5,
      reserveTwice: false,
      engine: i % rig.engines.length,
    };
    const hold = await rig.engines[plan.engine]!.reserve({
      ...rig.pool,
      amount,
      ttlMs: plan.ttlMs,
      idempotencyKey: `k${plan.i}`,
    });
    if (hold.status !== 'reserved') throw new Error(`sticky hold ${i}: ${hold.status}`);
    out.push({ plan, holdId: hold.holdId, amount, expiresAt: hold.expiresAt, replays: [] });
  }
  return out;
}

/**
 * Settles (exactly) the even sticky holds and releases the odd ones, through the same retrying
 * client as the workload, recording what each answered.
 */
export async function finishSticky(workload: Workload, sticky: HoldRecord[]): Promise<void> {
  await Promise.all(
    sticky.map((record, index) => {
      if (index % 2 === 1) record.plan = { ...record.plan, action: 'release' };
      return workload.finish(record);
    }),
  );
}

/**
 * Reads the pool atomically every few milliseconds until stopped, and checks the hard-pool
 * invariant each time: debits + active holds never exceed what was granted, no grant below
 * zero, grants used in burn order, `held` equal to the sum of the holds, no overdraft. Beside
 * it, reads the ledger's grant balances every 50 ms: never below zero nor above the grant.
 */
export function startSampler(rig: Rig, intervalMs = 5): { stop(): Promise<Sample> } {
  const sample: Sample = { samples: 0, ledgerSamples: 0, skipped: 0, violations: [], minHeadroom: GRANTED };
  let running = true;
  const violation = (text: string) => {
    if (sample.violations.length < 20) sample.violations.push(text);
  };
  // The ledger trails the hot path (and may apply two publishers' events in another order), but
  // no grant's balance may ever leave [0, amount].
  const ledgerLoop = (async () => {
    while (running) {
      try {
        const { rows } = await rig.db.store.query<{ grant_id: string; remaining: string }>(
          'SELECT grant_id, remaining::text AS remaining FROM credits.grant_balances WHERE tenant = $1',
          [rig.tenant],
        );
        sample.ledgerSamples++;
        for (const row of rows) {
          const left = BigInt(row.remaining);
          const amount = rig.granted.get(row.grant_id) ?? 0n;
          if (left < 0n || left > amount) {
            violation(
              `ledger sample ${sample.ledgerSamples}: grant ${row.grant_id} balance ${left} of ${amount}`,
            );
          }
        }
      } catch {
        // The database is only ever closed after the run.
      }
      await sleep(50);
    }
  })();
  const loop = (async () => {
    while (running) {
      let view: Awaited<ReturnType<typeof inspectPool>>;
      try {
        view = await inspectPool(rig.probe, rig.pool);
      } catch {
        view = null;
      }
      if (view === null) {
        sample.skipped++;
      } else {
        sample.samples++;
        const check = checkPool(view, rig);
        if (check.headroom < sample.minHeadroom) sample.minHeadroom = check.headroom;
        for (const problem of check.problems) violation(`sample ${sample.samples}: ${problem}`);
      }
      await sleep(intervalMs);
    }
  })();
  return {
    async stop() {
      running = false;
      await Promise.all([loop, ledgerLoop]);
      return sample;
    },
  };
}

export function checkPool(
  view: NonNullable<Awaited<ReturnType<typeof inspectPool>>>,
  rig: Rig,
): { headroom: bigint; problems: string[] } {
  const problems: string[] = [];
  let remaining = 0n;
  for (const [grantId, r] of view.remaining) {
    if (!rig.granted.has(grantId)) problems.push(`unknown grant ${grantId}`);
    if (r < 0n) problems.push(`grant ${grantId} remaining ${r}`);
    remaining += r;
  }
  problems.push(...burnOrderProblems((id) => view.remaining.get(id) ?? 0n, rig));
  const debits = GRANTED - remaining;
  const holds = [...view.holds.values()].reduce((sum, a) => sum + a, 0n);
  if (debits + holds > GRANTED) problems.push(`debits ${debits} + holds ${holds} > granted ${GRANTED}`);
  if (view.held !== holds) problems.push(`held ${view.held} != sum of holds ${holds}`);
  if (view.overdraft !== 0n) problems.push(`overdraft ${view.overdraft} on a hard pool`);
  if (view.mode !== 'hard') problems.push(`mode ${view.mode}`);
  return { headroom: GRANTED - debits - holds, problems };
}

/**
 * Charges take from grants in burn order and nothing here gives credits back, so at any moment
 * the grants, in burn order, are: used up, then at most one partly used, then untouched.
 */
export function burnOrderProblems(remainingOf: (grantId: string) => bigint, rig: Rig): string[] {
  let touched = false;
  const problems: string[] = [];
  for (const grantId of [...BURN_ORDER].reverse()) {
    const left = remainingOf(grantId);
    const amount = rig.granted.get(grantId) ?? 0n;
    if (touched && left !== 0n)
      problems.push(`burn order: ${grantId} has ${left} left after a later grant was used`);
    if (left !== amount) touched = true;
  }
  return problems;
}

/**
 * Ends the run the way time would: waits out every TTL, sweeps the pool until nothing is left
 * to expire, lets the worker apply the stream, then lets a ledger-side sweep release what the
 * ledger still holds but the hot path does not (a publish that timed out but was stored
 * anyway), and waits for the worker again.
 */
export async function settleDown(
  rig: Rig,
  records: Map<string, HoldRecord>,
  options: { caughtUpTimeoutMs?: number; ledgerSweep?: boolean } = {},
): Promise<{ swept: number; ledgerSwept: number }> {
  const open = [...records.values()].filter((r) => r.settle === undefined && r.released === undefined);
  const lastExpiry = Math.max(0, ...open.map((r) => r.expiresAt));
  await sleep(Math.max(0, lastExpiry - Date.now()) + 100);
  const engine = rig.engines[0]!;
  const deadline = Date.now() + 20_000;
  let swept = 0;
  for (;;) {
    try {
      const n = await engine.sweep(rig.pool);
      swept += n;
      if (n === 0) break;
    } catch (error) {
      if (!(error instanceof AppError && error.code === 'unavailable') || Date.now() > deadline) throw error;
      await sleep(100);
    }
  }
  const caughtUp = () =>
    ledgerCaughtUp(rig.bus, { consumer: rig.consumer, timeoutMs: options.caughtUpTimeoutMs ?? 20_000 });
  await caughtUp();
  if (options.ledgerSweep) {
    const sweeper = new CreditsSweeper({ sql: rig.db.store, engine, holdGraceMs: 0 });
    const { holds } = await sweeper.sweepOnce();
    await caughtUp();
    return { swept, ledgerSwept: holds };
  }
  return { swept, ledgerSwept: 0 };
}

interface LedgerRow {
  id: string;
  kind: string;
  amount: string;
  hold_id: string | null;
  event_id: string | null;
  grant_id: string | null;
}

export interface LedgerReport {
  problems: string[];
  settledTold: bigint;
  debitedInLedger: bigint;
  settles: number;
  releases: number;
  expiries: number;
  lateSettles: number;
  overages: number;
  ledgerRows: number;
}

/**
 * The ledger against what the clients were told, after the worker caught up:
 * - each settle a client was told of is in the ledger exactly once: its debit rows all come
 *   from its one settle event, per grant as the client was told, summing to `settled`; its
 *   overage and released-rest entries match; no hold has debits a client was not told of;
 * - each release has its release entry, each hold left to expire its expiry release;
 * - every hold ended in the status the client's calls imply, none still active;
 * - grant balances are never negative, agree with the sum of each grant's entries, and with
 *   Redis; total debits equal the sum of settles told, and nothing is held in either store.
 */
export async function verifyLedger(
  sql: SqlExecutor,
  rig: Rig,
  records: Map<string, HoldRecord>,
): Promise<LedgerReport> {
  const problems: string[] = [];
  const fail = (text: string) => {
    if (problems.length < 40) problems.push(text);
  };
  const { rows: ledger } = await sql.query<LedgerRow>(
    `SELECT id, kind, amount::text AS amount, hold_id, event_id, grant_id FROM credits.ledger
     WHERE tenant = $1 AND customer_id = $2 ORDER BY seq`,
    [rig.tenant, rig.pool.customerId],
  );
  const { rows: holds } = await sql.query<{
    id: string;
    status: string;
    amount: string;
    reserved: boolean;
  }>(`SELECT id, status, amount::text AS amount, reserved FROM credits.holds WHERE tenant = $1`, [
    rig.tenant,
  ]);
  const { rows: balances } = await sql.query<{ grant_id: string; remaining: string }>(
    `SELECT grant_id, remaining::text AS remaining FROM credits.grant_balances WHERE tenant = $1`,
    [rig.tenant],
  );

  const byHold = new Map<string, LedgerRow[]>();
  for (const row of ledger) {
    if (row.hold_id === null) continue;
    const list = byHold.get(row.hold_id) ?? [];
    list.push(row);
    byHold.set(row.hold_id, list);
  }
  const holdRows = new Map(holds.map((h) => [h.id, h]));
  const report: LedgerReport = {
    problems,
    settledTold: 0n,
    debitedInLedger: 0n,
    settles: 0,
    releases: 0,
    expiries: 0,
    lateSettles: 0,
    overages: 0,
    ledgerRows: ledger.length,
  };

  for (const record of records.values()) {
    const { holdId } = record;
    const rows = byHold.get(holdId) ?? [];
    const of = (eventId: string, kind: string) =>
      rows.filter((r) => r.event_id === eventId && r.kind === kind);
    const sum = (list: LedgerRow[]) => list.reduce((total, r) => total + BigInt(r.amount), 0n);
    const debits = rows.filter((r) => r.kind === 'debit');
    const hold = holdRows.get(holdId);
    if (!hold) {
      fail(`${holdId} (${record.plan.action}): no holds row`);
      continue;
    }
    if (!hold.reserved || BigInt(hold.amount) !== record.amount) {
      fail(
        `${holdId}: holds row reserved=${hold.reserved} amount ${hold.amount}, client held ${record.amount}`,
      );
    }
    for (const replay of record.replays) {
      if (record.settle && settleText(replay) !== settleText(record.settle)) {
        fail(
          `${holdId}: a repeated settle answered ${settleText(replay)}, first ${settleText(record.settle)}`,
        );
      }
    }
    const expiry = of(`x:${holdId}`, 'release');
    if (record.settle) {
      const told = record.settle;
      report.settles++;
      report.settledTold += told.settled;
      if (told.late) report.lateSettles++;
      if (told.overage > 0n) report.overages++;
      const stray = debits.filter((r) => r.event_id !== `s:${holdId}`);
      if (stray.length > 0) fail(`${holdId}: debits from other events ${stray.map((r) => r.id).join(', ')}`);
      const debited = -sum(debits);
      report.debitedInLedger += debited;
      if (debited !== told.settled) fail(`${holdId}: ledger debited ${debited}, client told ${told.settled}`);
      const toldSlices = told.debits
        .map((d) => `${d.grantId}=${d.amount}`)
        .sort()
        .join(',');
      const ledgerSlices = debits
        .map((r) => `${r.grant_id}=${-BigInt(r.amount)}`)
        .sort()
        .join(',');
      if (toldSlices !== ledgerSlices)
        fail(`${holdId}: ledger debits [${ledgerSlices}], told [${toldSlices}]`);
      const overage = sum(of(`s:${holdId}`, 'overage'));
      if (overage !== told.overage) fail(`${holdId}: ledger overage ${overage}, told ${told.overage}`);
      const rest = sum(of(`s:${holdId}`, 'release'));
      if (rest !== told.released) fail(`${holdId}: ledger released ${rest} on settle, told ${told.released}`);
      if (hold.status !== 'settled') fail(`${holdId}: status ${hold.status}, client settled it`);
      if (told.late && sum(expiry) !== record.amount) {
        fail(`${holdId}: settled late but its expiry released ${sum(expiry)} of ${record.amount}`);
      }
      continue;
    }
    if (debits.length > 0) fail(`${holdId} (${record.plan.action}): ledger debits nobody was told of`);
    if (record.released !== undefined) {
      report.releases++;
      const released = sum(of(`l:${holdId}`, 'release'));
      if (released !== record.amount)
        fail(`${holdId}: release entry ${released}, client released ${record.amount}`);
      if (hold.status !== 'released') fail(`${holdId}: status ${hold.status}, client released it`);
      continue;
    }
    // Left to expire.
    report.expiries++;
    if (sum(expiry) !== record.amount) fail(`${holdId}: expiry released ${sum(expiry)} of ${record.amount}`);
    if (hold.status !== 'expired') fail(`${holdId}: status ${hold.status}, left to expire`);
  }

  // Holds the ledger knows but no client was told of (a reserve that answered 503 yet was stored):
  // they must have ended without a debit.
  for (const hold of holds) {
    if (records.has(hold.id)) continue;
    if (hold.status === 'active') fail(`${hold.id}: unknown to clients and still active`);
    if ((byHold.get(hold.id) ?? []).some((r) => r.kind === 'debit'))
      fail(`${hold.id}: unknown to clients, debited`);
  }
  const active = holds.filter((h) => h.status === 'active');
  if (active.length > 0) fail(`${active.length} holds still active in PostgreSQL`);

  // Grant balances: never negative, the sum of their entries, equal to Redis.
  const view = await inspectPool(rig.probe, rig.pool);
  if (view === null) fail('the customer is not loaded in Redis at the end');
  let remaining = 0n;
  for (const [grantId, amount] of rig.granted) {
    const balance = BigInt(balances.find((b) => b.grant_id === grantId)?.remaining ?? 'NaN');
    remaining += balance;
    if (balance < 0n) fail(`grant ${grantId}: balance ${balance} below zero`);
    const entries = ledger
      .filter((r) => r.grant_id === grantId)
      .reduce((total, r) => total + BigInt(r.amount), 0n);
    if (entries !== balance)
      fail(`grant ${grantId}: balance ${balance}, its ledger entries sum to ${entries}`);
    const hot = view?.remaining.get(grantId) ?? 0n;
    if (view && hot !== balance) fail(`grant ${grantId}: PostgreSQL ${balance}, Redis ${hot}`);
    if (balance > amount) fail(`grant ${grantId}: balance ${balance} above its amount ${amount}`);
  }
  for (const problem of burnOrderProblems(
    (id) => BigInt(balances.find((b) => b.grant_id === id)?.remaining ?? '0'),
    rig,
  )) {
    fail(`PostgreSQL ${problem}`);
  }
  if (GRANTED - remaining !== report.settledTold) {
    fail(
      `granted ${GRANTED} - remaining ${remaining} = ${GRANTED - remaining}, clients told ${report.settledTold} settled`,
    );
  }
  const allDebits = -ledger.filter((r) => r.kind === 'debit').reduce((t, r) => t + BigInt(r.amount), 0n);
  if (allDebits !== report.settledTold) fail(`ledger debits total ${allDebits}, told ${report.settledTold}`);
  if (view && (view.held !== 0n || view.holds.size > 0))
    fail(`Redis still holds ${view.held} in ${view.holds.size} holds`);
  return report;
}

export function summarize(report: LedgerReport, stats: WorkloadStats, sample: Sample): string {
  return [
    `${stats.reserved} reserved, ${stats.insufficient} refused (insufficient)${stats.expiredBeforeAnswer ? `, ${stats.expiredBeforeAnswer} expired before a 503'd reserve was answered` : ''}, ${stats.unavailable} answers 503 retried ${JSON.stringify(stats.unavailableBy)}`,
    `${report.settles} settles (${report.lateSettles} late, ${report.overages} with overage), ${report.releases} releases, ${report.expiries} expiries`,
    `told settled ${report.settledTold} = ledger debits ${report.debitedInLedger} (${report.ledgerRows} ledger rows)`,
    `${sample.samples} atomic hot-state samples (${sample.skipped} skipped while unreachable/rebuilding, least headroom ${sample.minHeadroom}) and ${sample.ledgerSamples} ledger balance samples: ${sample.violations.length} violations`,
  ].join('; ');
}

export type { PoolRef };
