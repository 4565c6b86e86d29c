/**
 * Load drivers over any async operation. Both are bounded (by time and by count) and stop
 * by themselves, even when an operation never settles.
 *
 * - `saturation` is a closed loop: `concurrency` workers each start the next operation as
 *   soon as the previous one settles. It finds the ceiling (ops/s); its latencies are those
 *   of a system kept exactly full.
 * - `openLoop` starts operations on a fixed schedule whatever the system does, and measures
 *   latency from the *intended* start, so a stall shows up in the percentiles instead of
 *   silently lowering the send rate (coordinated omission).
 */
import * as hdr from 'hdr-histogram-js';

export type Op = () => Promise<void>;

export interface LatencyMs {
  p50: number;
  p90: number;
  p99: number;
  p999: number;
  max: number;
  mean: number;
}

interface CommonResult {
  warmupMs: number;
  durationMs: number;
  /** Successful operations started (or due, in open loop) within the measured window. */
  ops: number;
  /** Successful ops ÷ the window, or the time until the last of them completed if longer. */
  opsPerSec: number;
  errors: number;
  firstError?: string;
  /** Still unsettled when the driver gave up waiting for them. */
  timedOut: number;
  latencyMs: LatencyMs;
}

export interface SaturationResult extends CommonResult {
  mode: 'saturation';
  concurrency: number;
}

export interface OpenLoopResult extends CommonResult {
  mode: 'open';
  ratePerSec: number;
  maxInFlight: number;
  /** Due operations not started because `maxInFlight` were already running. */
  dropped: number;
  /** Operations started more than `lateThresholdMs` after their intended time (generator behind). */
  late: number;
  lateThresholdMs: number;
  /**
   * How far behind its intended time each operation started. Node timers fire about once a
   * millisecond, so some lag is the generator's own and is part of every open-loop latency.
   */
  startLagMs: { p50: number; p99: number; max: number };
}

export type LoadResult = SaturationResult | OpenLoopResult;

interface Bounds {
  durationMs: number;
  /** Run before the measured window and left out of every figure. */
  warmupMs?: number;
  /** Hard cap on operations started, warm-up included. */
  maxOps?: number;
  /** How long to wait after the window for operations still running. */
  drainMs?: number;
}

export interface SaturationOptions extends Bounds {
  concurrency: number;
  op: Op;
}

export interface OpenLoopOptions extends Bounds {
  ratePerSec: number;
  op: Op;
  maxInFlight: number;
  lateThresholdMs?: number;
}

const DEFAULT_MAX_OPS = 10_000_000;
const DEFAULT_DRAIN_MS = 5_000;
const DEFAULT_LATE_THRESHOLD_MS = 5;

/** Microseconds from 1 µs to 60 s, three significant digits. */
function microsecondHistogram(): hdr.Histogram {
  return hdr.build({
    lowestDiscernibleValue: 1,
    highestTrackableValue: 60_000_000,
    numberOfSignificantValueDigits: 3,
  });
}

function recordMs(histogram: hdr.Histogram, ms: number): void {
  histogram.recordValue(Math.min(60_000_000, Math.max(1, Math.round(ms * 1000))));
}

/** Counts what happened inside the measured window. */
class Recorder {
  readonly histogram = microsecondHistogram();
  ops = 0;
  errors = 0;
  firstError: string | undefined;
  lastCompletion: number;
  /** Operations that settle after the result was taken (timed out) are not counted. */
  private closed = false;

  constructor(readonly windowStart: number) {
    this.lastCompletion = windowStart;
  }

  success(from: number, to: number): void {
    if (this.closed) return;
    recordMs(this.histogram, to - from);
    this.ops++;
    if (to > this.lastCompletion) this.lastCompletion = to;
  }

  failure(error: unknown): void {
    if (this.closed) return;
    this.errors++;
    this.firstError ??= error instanceof Error ? error.message : String(error);
  }

  result(bounds: { warmupMs: number; durationMs: number; timedOut: number }): CommonResult {
    this.closed = true;
    const h = this.histogram;
    const ms = (percentile: number) => h.getValueAtPercentile(percentile) / 1000;
    const elapsedSec = Math.max(bounds.durationMs, this.lastCompletion - this.windowStart) / 1000;
    const result: CommonResult = {
      ...bounds,
      ops: this.ops,
      opsPerSec: elapsedSec > 0 ? this.ops / elapsedSec : 0,
      errors: this.errors,
      latencyMs: {
        p50: ms(50),
        p90: ms(90),
        p99: ms(99),
        p999: ms(99.9),
        max: h.maxValue / 1000,
        mean: h.totalCount > 0 ? h.mean / 1000 : 0,
      },
    };
    if (this.firstError !== undefined) result.firstError = this.firstError;
    return result;
  }
}

/** Resolves when `done` does or after `ms`, whichever comes first; true if `done` won. */
async function within(done: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<false>((resolve) => {
    timer = setTimeout(() => resolve(false), ms);
  });
  try {
    return await Promise.race([done.then(() => true as const), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

export async function saturation(options: SaturationOptions): Promise<SaturationResult> {
  const { concurrency, op, durationMs } = options;
  const warmupMs = options.warmupMs ?? 0;
  const maxOps = options.maxOps ?? DEFAULT_MAX_OPS;
  const windowStart = performance.now() + warmupMs;
  const windowEnd = windowStart + durationMs;
  const recorder = new Recorder(windowStart);
  let started = 0;
  let inFlight = 0;

  const worker = async () => {
    for (;;) {
      const start = performance.now();
      if (start >= windowEnd || started >= maxOps) return;
      started++;
      inFlight++;
      const measured = start >= windowStart;
      try {
        await op();
        if (measured) recorder.success(start, performance.now());
      } catch (error) {
        if (measured) recorder.failure(error);
      } finally {
        inFlight--;
      }
    }
  };

  const workers = Promise.all(Array.from({ length: concurrency }, worker));
  await within(workers, warmupMs + durationMs + (options.drainMs ?? DEFAULT_DRAIN_MS));
  return {
    mode: 'saturation',
    concurrency,
    ...recorder.result({ warmupMs, durationMs, timedOut: inFlight }),
  };
}

export async function openLoop(options: OpenLoopOptions): Promise<OpenLoopResult> {
  const { ratePerSec, op, maxInFlight, durationMs } = options;
  const warmupMs = options.warmupMs ?? 0;
  const lateThresholdMs = options.lateThresholdMs ?? DEFAULT_LATE_THRESHOLD_MS;
  const intervalMs = 1000 / ratePerSec;
  const due = Math.min(
    options.maxOps ?? DEFAULT_MAX_OPS,
    Math.floor(((warmupMs + durationMs) * ratePerSec) / 1000),
  );
  const t0 = performance.now();
  const windowStart = t0 + warmupMs;
  const recorder = new Recorder(windowStart);
  let inFlight = 0;
  let dropped = 0;
  let late = 0;
  const lag = microsecondHistogram();
  let onIdle: (() => void) | undefined;

  const launch = async (intended: number, measured: boolean) => {
    inFlight++;
    try {
      await op();
      if (measured) recorder.success(intended, performance.now());
    } catch (error) {
      if (measured) recorder.failure(error);
    } finally {
      inFlight--;
      if (inFlight === 0) onIdle?.();
    }
  };

  // Node timers fire at best every millisecond, so each tick starts every operation now due;
  // latency still counts from each operation's own intended time.
  await new Promise<void>((scheduled) => {
    let next = 0;
    const tick = () => {
      const now = performance.now();
      for (; next < due; next++) {
        const intended = t0 + next * intervalMs;
        if (intended > now) break;
        const measured = intended >= windowStart;
        if (inFlight >= maxInFlight) {
          if (measured) dropped++;
          continue;
        }
        if (measured) {
          recordMs(lag, now - intended);
          if (now - intended > lateThresholdMs) late++;
        }
        void launch(intended, measured);
      }
      if (next >= due) scheduled();
      else setTimeout(tick, Math.max(0, t0 + next * intervalMs - performance.now()));
    };
    tick();
  });

  if (inFlight > 0) {
    const idle = new Promise<void>((resolve) => {
      onIdle = resolve;
    });
    await within(idle, options.drainMs ?? DEFAULT_DRAIN_MS);
  }
  return {
    mode: 'open',
    ratePerSec,
    maxInFlight,
    dropped,
    late,
    lateThresholdMs,
    startLagMs: {
      p50: lag.getValueAtPercentile(50) / 1000,
      p99: lag.getValueAtPercentile(99) / 1000,
      max: lag.maxValue / 1000,
    },
    ...recorder.result({ warmupMs, durationMs, timedOut: inFlight }),
  };
}
