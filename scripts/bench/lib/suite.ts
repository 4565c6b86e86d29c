/**
 * What a suite is and what it is given. A suite is a module in `suites/` exporting
 * `{ name, description, run }`, registered with one line in `suites/index.ts`.
 */
import type { Baselines } from './baselines.ts';
import {
  type LoadResult,
  type Op,
  type OpenLoopResult,
  openLoop,
  type SaturationResult,
  saturation,
} from './load.ts';

export interface Suite {
  name: string;
  description: string;
  run(ctx: SuiteContext): Promise<void>;
}

export interface BenchOptions {
  durationMs: number;
  warmupMs: number;
  /** `--concurrency`: every saturation case uses it. Unset: each case's own, else `DEFAULT_CONCURRENCY`. */
  concurrency?: number;
  /** `--rate`: every open-loop case uses it. Unset: each case's own, else `DEFAULT_RATE`. */
  rate?: number;
}

export const DEFAULT_CONCURRENCY = 32;
export const DEFAULT_RATE = 1_000;
/** How many operations an open loop lets run at once before it drops arrivals. */
export const DEFAULT_MAX_IN_FLIGHT = 1_000;

export interface Row {
  case: string;
  /** `saturation c=32` or `open @ 1000/s`. */
  mode: string;
  result: LoadResult;
  /** The case this row is compared with, measured in the same run and the same mode. */
  baseline?: string;
  /**
   * How many times the baseline's cost (1 = no overhead, higher = worse). Saturation:
   * baseline ops/s ÷ ops/s. Open loop (same rate): p99 ÷ baseline p99.
   */
  ratio?: number;
  note?: string;
}

/** Per-case defaults; `--concurrency` and `--rate` override them. */
export interface CaseOptions {
  concurrency?: number;
  rate?: number;
  maxInFlight?: number;
  note?: string;
}

/** The rows `measure` reports: one per mode. */
export interface Measured {
  saturation: Row;
  open: Row;
}

export interface SuiteContext {
  options: BenchOptions;
  baselines: Baselines;
  /** The closed-loop driver, with the run's duration and warm-up, showing progress. */
  saturation(label: string, op: Op, concurrency?: number): Promise<SaturationResult>;
  /** The open-loop driver, with the run's duration and warm-up, showing progress. */
  openLoop(label: string, op: Op, ratePerSec?: number, maxInFlight?: number): Promise<OpenLoopResult>;
  /** Adds a row to the table, compared with `baseline` when given. */
  report(entry: { case: string; result: LoadResult; baseline?: Row; note?: string }): Row;
  /** Runs `op` in saturation then in open loop and reports both, each against `baseline`'s row of its mode. */
  measure(label: string, op: Op, options?: CaseOptions & { baseline?: Measured }): Promise<Measured>;
}

export function modeLabel(result: LoadResult): string {
  return result.mode === 'saturation'
    ? `saturation c=${result.concurrency}`
    : `open @ ${result.ratePerSec}/s`;
}

function costRatio(result: LoadResult, baseline: LoadResult): number | undefined {
  if (result.mode === 'saturation') {
    return result.opsPerSec > 0 ? baseline.opsPerSec / result.opsPerSec : undefined;
  }
  return baseline.latencyMs.p99 > 0 ? result.latencyMs.p99 / baseline.latencyMs.p99 : undefined;
}

export function createContext(
  options: BenchOptions,
  baselines: Baselines,
  progress: (label: string, totalMs: number) => { done(result: LoadResult): void },
): { ctx: SuiteContext; rows: Row[] } {
  const rows: Row[] = [];
  const bounds = { durationMs: options.durationMs, warmupMs: options.warmupMs };
  const totalMs = options.durationMs + options.warmupMs;

  const ctx: SuiteContext = {
    options,
    baselines,

    async saturation(label, op, concurrency) {
      const c = options.concurrency ?? concurrency ?? DEFAULT_CONCURRENCY;
      const shown = progress(`${label} · saturation c=${c}`, totalMs);
      const result = await saturation({ ...bounds, concurrency: c, op });
      shown.done(result);
      return result;
    },

    async openLoop(label, op, ratePerSec, maxInFlight) {
      const rate = options.rate ?? ratePerSec ?? DEFAULT_RATE;
      const shown = progress(`${label} · open @ ${rate}/s`, totalMs);
      const result = await openLoop({
        ...bounds,
        ratePerSec: rate,
        maxInFlight: maxInFlight ?? DEFAULT_MAX_IN_FLIGHT,
        op,
      });
      shown.done(result);
      return result;
    },

    report({ case: name, result, baseline, note }) {
      const row: Row = { case: name, mode: modeLabel(result), result };
      if (baseline) {
        row.baseline = baseline.case;
        const ratio = costRatio(result, baseline.result);
        if (ratio !== undefined) row.ratio = ratio;
      }
      if (note !== undefined) row.note = note;
      rows.push(row);
      return row;
    },

    async measure(label, op, { concurrency, rate, maxInFlight, note, baseline } = {}) {
      const closed = await ctx.saturation(label, op, concurrency);
      const saturationRow = ctx.report({
        case: label,
        result: closed,
        ...(baseline && { baseline: baseline.saturation }),
        ...(note !== undefined && { note }),
      });
      const open = await ctx.openLoop(label, op, rate, maxInFlight);
      const openRow = ctx.report({
        case: label,
        result: open,
        ...(baseline && { baseline: baseline.open }),
        ...(note !== undefined && { note }),
      });
      return { saturation: saturationRow, open: openRow };
    },
  };
  return { ctx, rows };
}
