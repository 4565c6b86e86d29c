/**
 * npm run bench -- <suite> [--duration 5s] [--warmup 1s] [--rate N] [--concurrency N] [--json]
 *
 * Runs one suite, prints its table (or, with --json, the whole record) on stdout, progress
 * on stderr, and writes the record to bench-results/<suite>-<timestamp>.json.
 */
import { parseArgs } from 'node:util';
import { Baselines, targetsFromEnv } from './lib/baselines.ts';
import {
  formatNotes,
  formatTable,
  machine,
  progressOnStderr,
  type RunRecord,
  writeResults,
} from './lib/report.ts';
import { type BenchOptions, createContext, type Suite } from './lib/suite.ts';
import { suites } from './suites/index.ts';

const USAGE =
  'usage: npm run bench -- <suite> [--duration 5s] [--warmup 1s] [--rate N] [--concurrency N] [--json]';

class UsageError extends Error {}

/** `500ms`, `5s`, `2m`; a bare number is seconds. */
function parseDuration(flag: string, value: string): number {
  const match = /^(\d+(?:\.\d+)?)(ms|s|m)?$/.exec(value.trim());
  if (!match) throw new UsageError(`--${flag} ${value}: expected a duration such as 500ms, 5s or 2m`);
  const unit = { ms: 1, s: 1_000, m: 60_000 }[match[2] ?? 's'] ?? 1_000;
  return Math.round(Number(match[1]) * unit);
}

function parsePositive(flag: string, value: string): number {
  const parsed = Number(value);
  if (!Number.isInteger(parsed) || parsed < 1)
    throw new UsageError(`--${flag} ${value}: expected a positive integer`);
  return parsed;
}

function parseCommandLine(argv: string[]) {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      duration: { type: 'string', default: '5s' },
      warmup: { type: 'string' },
      rate: { type: 'string' },
      concurrency: { type: 'string' },
      json: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (positionals.length > 1) throw new UsageError(`one suite at a time, got: ${positionals.join(' ')}`);
  const durationMs = parseDuration('duration', values.duration);
  if (durationMs < 1) throw new UsageError('--duration must be positive');
  const options: BenchOptions = {
    durationMs,
    // Long enough for connections, JIT and caches to settle; short runs keep most of their time measured.
    warmupMs:
      values.warmup === undefined ? Math.min(1_000, durationMs / 2) : parseDuration('warmup', values.warmup),
  };
  if (values.rate !== undefined) options.rate = parsePositive('rate', values.rate);
  if (values.concurrency !== undefined)
    options.concurrency = parsePositive('concurrency', values.concurrency);
  return { suite: positionals[0], options, json: values.json, help: values.help };
}

async function listSuites(): Promise<string> {
  const lines = await Promise.all(
    Object.entries(suites).map(async ([name, load]) => {
      const description = await load().then(
        (suite) => suite.description,
        (error: unknown) => `(does not load: ${error instanceof Error ? error.message : error})`,
      );
      return `  ${name.padEnd(12)} ${description}`;
    }),
  );
  return `${USAGE}\n\nsuites:\n${lines.join('\n')}`;
}

async function runSuite(suite: Suite, options: BenchOptions, json: boolean): Promise<void> {
  const baselines = new Baselines(targetsFromEnv());
  const { ctx, rows } = createContext(options, baselines, progressOnStderr(options.warmupMs));
  // Ctrl-C still removes what the run created (streams, tables, child servers).
  const interrupted = () => {
    process.stderr.write('\nbench: interrupted, cleaning up\n');
    void baselines.close().finally(() => process.exit(130));
  };
  process.once('SIGINT', interrupted);

  const startedAt = new Date().toISOString();
  const startMachine = machine();
  process.stderr.write(`bench ${suite.name}: ${suite.description}\n`);
  try {
    await suite.run(ctx);
  } finally {
    await baselines.close();
    process.off('SIGINT', interrupted);
  }

  const record: RunRecord = {
    suite: suite.name,
    startedAt,
    finishedAt: new Date().toISOString(),
    options,
    machine: startMachine,
    rows,
  };
  const file = await writeResults(record);
  if (json) {
    process.stdout.write(`${JSON.stringify(record, null, 2)}\n`);
  } else {
    const notes = formatNotes(rows);
    const { cpus, node, loadAverage } = startMachine;
    process.stdout.write(
      `\n${suite.name} · ${cpus} CPUs, node ${node}, load ${loadAverage.join(' ')} · ` +
        `${options.durationMs / 1000} s measured after ${options.warmupMs / 1000} s warm-up per case\n\n` +
        `${formatTable(rows)}\n${notes ? `\n${notes}\n` : ''}`,
    );
  }
  process.stderr.write(`results: ${file}\n`);
}

async function main(): Promise<number> {
  let command: ReturnType<typeof parseCommandLine>;
  try {
    command = parseCommandLine(process.argv.slice(2));
  } catch (error) {
    process.stderr.write(`${error instanceof Error ? error.message : error}\n${USAGE}\n`);
    return 2;
  }
  if (command.help || command.suite === undefined) {
    process.stdout.write(`${await listSuites()}\n`);
    return 0;
  }
  const load = Object.hasOwn(suites, command.suite) ? suites[command.suite] : undefined;
  if (!load) {
    process.stderr.write(`unknown suite "${command.suite}"; suites: ${Object.keys(suites).join(', ')}\n`);
    return 2;
  }
  await runSuite(await load(), command.options, command.json);
  return 0;
}

// Exits explicitly: an operation that never settled must not keep the process alive.
try {
  process.exit(await main());
} catch (error) {
  process.stderr.write(`bench failed: ${error instanceof Error ? (error.stack ?? error.message) : error}\n`);
  process.exit(1);
}
