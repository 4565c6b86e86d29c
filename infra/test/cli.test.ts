import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { main } from '../src/cli.ts';
import { REPO_ROOT } from '../src/config.ts';

const out = mkdtempSync(join(tmpdir(), 'allot-infra-cli-'));
afterAll(() => rmSync(out, { recursive: true, force: true }));

/** `npm run infra -- <args>` without npm: the same tsx entry in its own Node process, from the repository root. */
async function spawnInfra(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await promisify(execFile)(
      process.execPath,
      ['--import', 'tsx', 'infra/src/cli.ts', ...args],
      { cwd: REPO_ROOT, env: { ...process.env, INIT_CWD: out } },
    );
    return { code: 0, stdout, stderr };
  } catch (error) {
    const failed = error as { code: number; stdout: string; stderr: string };
    return { code: failed.code, stdout: failed.stdout, stderr: failed.stderr };
  }
}

/** The same command in this process (the stacks are loaded once), typed from `out`. */
async function infra(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const code = await main(args, {
    cwd: out,
    out: (text) => {
      stdout += text;
    },
    err: (text) => {
      stderr += text;
    },
  });
  return { code, stdout, stderr };
}

function stackJson(dir: string): { resource: Record<string, unknown>; terraform: Record<string, unknown> } {
  return JSON.parse(readFileSync(join(dir, 'cdk.tf.json'), 'utf8'));
}

describe('npm run infra -- synth', () => {
  it('writes the AWS data plane for the given components and prints the next commands', async () => {
    // A real process: Node's own ESM resolution of the providers' deep import paths, not vitest's.
    const result = await spawnInfra(
      'synth',
      '--cloud',
      'aws',
      '--components',
      'gate,metering',
      '--out',
      'aws',
    );
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    const dir = resolve(out, 'aws', 'stacks', 'allot');
    expect(existsSync(resolve(out, 'aws', 'manifest.json'))).toBe(true);
    expect(Object.keys(stackJson(dir).resource)).toEqual(
      expect.arrayContaining([
        'aws_eks_cluster',
        'aws_db_instance',
        'aws_elasticache_replication_group',
        'helm_release',
      ]),
    );
    expect(stackJson(dir).terraform.backend).toEqual({ local: { path: 'terraform.tfstate' } });
    expect(result.stdout).toContain('(aws data plane: gate, metering)');
    // Paths are shown relative to where the command was typed (INIT_CWD).
    expect(result.stdout).toContain('cd aws/stacks/allot && terraform init && terraform apply');
  }, 60_000);

  it('exits 2 from a real process on an unknown component', async () => {
    const result = await spawnInfra('synth', '--cloud', 'gcp', '--components', 'gate,billing');
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/^error: --components: unknown component billing \(known: gate, credits/);
  }, 60_000);

  it('writes the GCP control plane from a config file', async () => {
    const config = join(out, 'control-plane.json');
    writeFileSync(
      config,
      JSON.stringify({ name: 'vendor-hub', project: 'vendor-prod', region: 'europe-west4' }),
    );
    const result = await infra(
      'synth',
      '--cloud',
      'gcp',
      '--stack',
      'control-plane',
      '--config',
      config,
      '--out',
      'gcp',
    );
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    const dir = resolve(out, 'gcp', 'stacks', 'vendor-hub');
    expect(Object.keys(stackJson(dir).resource)).toEqual(
      expect.arrayContaining([
        'google_container_cluster',
        'google_sql_database_instance',
        'kubernetes_service_v1',
      ]),
    );
    expect(result.stdout).toContain('cd gcp/stacks/vendor-hub && terraform init && terraform apply');
  });

  it('lets --components and --project override the config file', async () => {
    const config = join(out, 'data-plane.json');
    writeFileSync(config, JSON.stringify({ components: ['gate'], project: 'from-file' }));
    const result = await infra(
      'synth',
      '--cloud',
      'gcp',
      '--config',
      config,
      '--components',
      'metering',
      '--project',
      'from-flag',
      '--out',
      'override',
    );
    expect(result.code).toBe(0);
    const json = stackJson(resolve(out, 'override', 'stacks', 'allot')) as unknown as {
      provider: { google: { project: string }[] };
      resource: Record<string, unknown>;
    };
    expect(json.provider.google[0]?.project).toBe('from-flag');
    expect(json.resource.google_redis_instance).toBeUndefined();
    expect(result.stdout).toContain('(gcp data plane: metering)');
  });

  it('asks for the uplink password when the uplink is enabled', async () => {
    const config = join(out, 'uplink.json');
    writeFileSync(config, JSON.stringify({ uplink: { url: 'tls://hub.example:443', user: 'acme' } }));
    const result = await infra(
      'synth',
      '--cloud',
      'aws',
      '--components',
      'uplink',
      '--config',
      config,
      '--out',
      'up',
    );
    expect(result.code).toBe(0);
    expect(result.stdout).toContain("export TF_VAR_uplink_password='");
  });

  it.each([
    [['--cloud', 'azure', '--components', 'gate'], /unknown cloud "azure" \(known: aws, gcp\)/],
    [['--cloud', 'aws'], /--components is required/],
    [['--cloud', 'gcp', '--components', 'gate'], /gcp needs a project/],
    [['--cloud', 'aws', '--stack', 'edge', '--components', 'gate'], /unknown stack "edge"/],
    [
      ['--cloud', 'aws', '--stack', 'control-plane', '--components', 'gate'],
      /--components applies to the data-plane/,
    ],
    [['--cloud', 'aws', '--components', 'uplink'], /config\.uplink: the uplink component needs the hub/],
    [
      ['--cloud', 'aws', '--components', 'gate', '--config', 'missing.json'],
      /cannot read --config .*missing\.json: ENOENT/,
    ],
    [['--cloud', 'aws', '--components', 'gate', '--region'], /--region/],
  ])('exits 2 with a clear message for synth %j, writing nothing', async (args, message) => {
    const result = await infra('synth', ...args, '--out', 'never');
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(message);
    expect(result.stderr).toContain('usage: npm run infra -- synth');
    expect(existsSync(resolve(out, 'never'))).toBe(false);
  });
});
