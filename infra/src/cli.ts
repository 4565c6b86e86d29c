import { readFileSync } from 'node:fs';
import { isAbsolute, relative, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import {
  CLOUDS,
  ConfigError,
  componentFlags,
  controlPlaneConfig,
  dataPlaneConfig,
  enabledComponents,
  PLANES,
  REPO_ROOT,
} from './config.ts';

const USAGE = `usage: npm run infra -- synth --cloud aws|gcp [--stack data-plane|control-plane]
         [--components gate,credits,metering,governance,mcp,uplink] [--config file.json]
         [--project <gcp project>] [--out dir]

Writes Terraform JSON to <out>/stacks/<name>/cdk.tf.json (default out: infra/cdktf.out).
--components and --project override the config file's "components" and "project".`;

/** A mistake in how the command was called: exit 2 with the message and the usage. */
class UsageError extends Error {}

/** Where the command writes and which folder its relative paths start from. */
export interface Terminal {
  readonly cwd: string;
  readonly out: (text: string) => void;
  readonly err: (text: string) => void;
}

const processTerminal: Terminal = {
  // npm runs scripts from the repository root; paths on the command line are the caller's.
  cwd: process.env.INIT_CWD ?? process.cwd(),
  out: (text) => process.stdout.write(text),
  err: (text) => process.stderr.write(text),
};

/** Runs one command line; the exit code is 0, or 2 for a usage or config mistake. */
export async function main(argv: readonly string[], terminal: Terminal = processTerminal): Promise<number> {
  try {
    await run(argv, terminal);
    return 0;
  } catch (error) {
    if (error instanceof UsageError || error instanceof ConfigError) {
      terminal.err(`error: ${error.message}\n\n${USAGE}\n`);
      return 2;
    }
    throw error;
  }
}

async function run(argv: readonly string[], terminal: Terminal): Promise<void> {
  const { values, positionals } = parse(argv);
  if (values.help) {
    terminal.out(`${USAGE}\n`);
    return;
  }
  if (positionals[0] !== 'synth' || positionals.length > 1) {
    throw new UsageError(
      positionals.length === 0 ? 'name a command: synth' : `unknown command ${positionals.join(' ')}`,
    );
  }
  const cloud = oneOf('--cloud', values.cloud, CLOUDS);
  const plane = oneOf('--stack', values.stack ?? 'data-plane', PLANES);
  const { cwd } = terminal;
  const input = values.config === undefined ? {} : readConfig(resolve(cwd, values.config));
  if (values.components !== undefined) {
    if (plane !== 'data-plane') throw new UsageError('--components applies to the data-plane stack only');
    input.components = values.components
      .split(',')
      .map((component) => component.trim())
      .filter(Boolean);
    componentFlags(input.components as string[], '--components');
  } else if (plane === 'data-plane' && input.components === undefined) {
    throw new UsageError(
      '--components is required (or "components" in the config file), e.g. --components gate,metering',
    );
  }
  if (values.project !== undefined) input.project = values.project;
  if (cloud === 'gcp' && input.project === undefined) {
    throw new UsageError('gcp needs a project: --project <id> or "project" in the config file');
  }
  // Validated before the stacks load: the provider bindings take a second, a mistake should not.
  if (plane === 'data-plane') dataPlaneConfig(input, cloud);
  else controlPlaneConfig(input, cloud);
  const { synthesize } = await import('./stacks/synth.ts');
  const outdir =
    values.out === undefined ? resolve(REPO_ROOT, 'infra', 'cdktf.out') : resolve(cwd, values.out);
  const result = synthesize({ cloud, plane, input, outdir });

  const shown = display(cwd, result.stackDir);
  const what =
    'components' in result.config
      ? `${cloud} data plane: ${enabledComponents(result.config.components).join(', ')}`
      : `${cloud} control plane`;
  const lines = [`wrote ${display(cwd, resolve(result.stackDir, 'cdk.tf.json'))} (${what})`, '', 'next:'];
  if ('components' in result.config && result.config.components.uplink) {
    lines.push("  export TF_VAR_uplink_password='<the tenant password the control plane issued>'");
  }
  lines.push(`  cd ${shown} && terraform init && terraform apply`);
  terminal.out(`${lines.join('\n')}\n`);
}

function parse(argv: readonly string[]) {
  try {
    return parseArgs({
      args: [...argv],
      allowPositionals: true,
      strict: true,
      options: {
        cloud: { type: 'string' },
        stack: { type: 'string' },
        components: { type: 'string' },
        config: { type: 'string' },
        project: { type: 'string' },
        out: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
    });
  } catch (error) {
    throw new UsageError(error instanceof Error ? error.message : String(error));
  }
}

function oneOf<const T extends string>(flag: string, value: string | undefined, choices: readonly T[]): T {
  if (value === undefined) throw new UsageError(`${flag} is required (${choices.join(' or ')})`);
  if (!(choices as readonly string[]).includes(value)) {
    throw new UsageError(`unknown ${flag.slice(2)} ${JSON.stringify(value)} (known: ${choices.join(', ')})`);
  }
  return value as T;
}

function readConfig(path: string): Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    throw new UsageError(
      `cannot read --config ${path}: ${(error as NodeJS.ErrnoException).code ?? String(error)}`,
    );
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    throw new UsageError(
      `--config ${path} is not JSON: ${error instanceof Error ? error.message : String(error)}`,
    );
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new UsageError(`--config ${path} must hold a JSON object`);
  }
  return parsed as Record<string, unknown>;
}

/** Relative to where the command was typed when it is below it, so `cd` works as printed. */
function display(cwd: string, path: string): string {
  const rel = relative(cwd, path);
  return rel !== '' && !rel.startsWith('..') && !isAbsolute(rel) ? rel : path;
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  process.exitCode = await main(process.argv.slice(2));
}
