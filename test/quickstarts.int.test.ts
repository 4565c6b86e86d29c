/**
 * The quickstarts in docs/ run as written: each example is started as a user would run it
 * (`npx tsx docs/examples/<name>.ts`) against the all-in-one app, and its output checked.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type AllotRig, KEYS, openAllot } from './support/allot-app.ts';
import { REPO_ROOT } from './support/servers.ts';

const run = promisify(execFile);

describe('the quickstarts', () => {
  let rig: AllotRig;
  let origin: string;
  beforeAll(async () => {
    rig = await openAllot('embedded');
    origin = await rig.app.listen({ host: '127.0.0.1', port: 0 });
  });
  afterAll(() => rig?.close());

  const example = async (name: string) => {
    const { stdout } = await run(process.execPath, ['--import', 'tsx', `docs/examples/${name}.ts`], {
      cwd: REPO_ROOT,
      env: { ...process.env, ALLOT_URL: origin, ALLOT_API_KEY: KEYS.admin },
      timeout: 60_000,
    });
    return stdout.trim().split('\n');
  };

  it('for an API server: reserves, calls the model, settles; a stranger is denied', async () => {
    const [answer, denied] = (await example('api-server')).map((line) => JSON.parse(line));
    expect(answer).toMatchObject({ text: 'echo: hello Allot', charged: '0.028', balance: '9.972' });
    expect(denied).toEqual({ denied: 'customer_not_found' });
  });

  it('for an agent: the MCP tools authorize, settle and show the balance', async () => {
    const lines = await example('agent');
    expect(lines[0]).toMatch(/^tools: .*authorize/);
    expect(lines).toContain('authorize: allow');
    expect(lines).toContain('settled: 0.35 credits, 0.45 released');
    expect(lines.at(-1)).toBe('balance: 9.622');
  });
});
