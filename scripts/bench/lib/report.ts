/** The table on stdout, the progress on stderr, the JSON file in bench-results/. */
import { mkdir, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { LoadResult } from './load.ts';
import type { BenchOptions, Row } from './suite.ts';

export interface Machine {
  cpus: number;
  cpuModel: string;
  memoryGb: number;
  node: string;
  platform: string;
  arch: string;
  /** 1, 5 and 15 minute load averages when the run started: others sharing the machine show here. */
  loadAverage: number[];
}

export function machine(): Machine {
  const cpus = os.cpus();
  return {
    cpus: cpus.length,
    cpuModel: cpus[0]?.model.trim() ?? 'unknown',
    memoryGb: Math.round(os.totalmem() / 2 ** 30),
    node: process.version,
    platform: `${os.type()} ${os.release()}`,
    arch: os.arch(),
    loadAverage: os.loadavg().map((load) => Math.round(load * 100) / 100),
  };
}

export interface RunRecord {
  suite: string;
  startedAt: string;
  finishedAt: string;
  options: BenchOptions;
  machine: Machine;
  rows: Row[];
}

/** Writes `bench-results/<suite>-<timestamp>.json` at the repository root; returns its path. */
export async function writeResults(record: RunRecord): Promise<string> {
  const dir = path.resolve(import.meta.dirname, '../../../bench-results');
  await mkdir(dir, { recursive: true });
  const stamp = record.startedAt.replace(/\.\d+Z$/, 'Z').replaceAll(':', '-');
  const file = path.join(dir, `${record.suite}-${stamp}.json`);
  await writeFile(file, `${JSON.stringify(record, null, 2)}\n`);
  return file;
}

const thousands = new Intl.NumberFormat('en-US', { maximumFractionDigits: 0 });

function ms(value: number): string {
  if (value >= 100) return value.toFixed(0);
  if (value >= 10) return value.toFixed(1);
  return value.toFixed(value >= 1 ? 2 : 3);
}

export function formatTable(rows: readonly Row[]): string {
  const header = ['case', 'mode', 'ops/s', 'p50 ms', 'p99 ms', 'baseline', 'ratio vs baseline'];
  const numeric = [false, false, true, true, true, false, true];
  const cells = rows.map((row) => [
    row.case,
    row.mode,
    thousands.format(row.result.opsPerSec),
    ms(row.result.latencyMs.p50),
    ms(row.result.latencyMs.p99),
    row.baseline ?? '-',
    row.ratio === undefined ? '-' : `${row.ratio.toFixed(2)}x`,
  ]);
  const widths = header.map((title, i) =>
    Math.max(title.length, ...cells.map((line) => line[i]?.length ?? 0)),
  );
  const line = (values: readonly string[]) =>
    values
      .map((value, i) => (numeric[i] ? value.padStart(widths[i] ?? 0) : value.padEnd(widths[i] ?? 0)))
      .join('  ')
      .trimEnd();
  const rule = widths.map((width) => '-'.repeat(width)).join('  ');
  return [line(header), rule, ...cells.map(line)].join('\n');
}

/** What a reader must know before trusting a row: errors, drops, a generator that fell behind. */
export function warnings(result: LoadResult): string[] {
  const found: string[] = [];
  if (result.errors > 0) found.push(`${result.errors} errors (first: ${result.firstError ?? 'unknown'})`);
  if (result.timedOut > 0) found.push(`${result.timedOut} still running when the driver gave up`);
  if (result.mode === 'open') {
    const due = Math.floor((result.ratePerSec * result.durationMs) / 1000);
    if (result.dropped > 0)
      found.push(
        `${result.dropped} of ${due} arrivals dropped (${result.maxInFlight} in flight): over capacity`,
      );
    // A few late starts are timer jitter, already inside the latencies; many mean the generator is the bottleneck.
    if (result.late > due / 100)
      found.push(`${result.late} of ${due} started >${result.lateThresholdMs} ms late (generator behind)`);
  }
  return found;
}

export function formatNotes(rows: readonly Row[]): string {
  const lines: string[] = [];
  const noted = new Set<string>();
  for (const row of rows) {
    if (row.note !== undefined && !noted.has(row.case)) {
      noted.add(row.case);
      lines.push(`${row.case}: ${row.note}`);
    }
    for (const warning of warnings(row.result)) lines.push(`! ${row.case} (${row.mode}): ${warning}`);
  }
  return lines.join('\n');
}

function seconds(valueMs: number): string {
  return (valueMs / 1000).toFixed(1);
}

/** One status line per case on stderr: updated in place on a terminal, start and end lines otherwise. */
export function progressOnStderr(warmupMs: number) {
  const tty = process.stderr.isTTY;
  return (label: string, totalMs: number) => {
    const start = performance.now();
    let timer: NodeJS.Timeout | undefined;
    if (tty) {
      const draw = () => {
        const elapsed = performance.now() - start;
        const phase = elapsed < warmupMs ? ' (warm-up)' : '';
        process.stderr.write(`\r\x1b[K  ${label}  ${seconds(elapsed)}/${seconds(totalMs)} s${phase}`);
      };
      draw();
      timer = setInterval(draw, 250);
    } else {
      process.stderr.write(`  ${label}  running for ${seconds(totalMs)} s\n`);
    }
    return {
      done(result: LoadResult) {
        clearInterval(timer);
        const summary = `${thousands.format(result.opsPerSec)} ops/s, p99 ${ms(result.latencyMs.p99)} ms`;
        process.stderr.write(`${tty ? '\r\x1b[K' : ''}  ${label}  done: ${summary}\n`);
      },
    };
  };
}
