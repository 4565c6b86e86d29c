/**
 * The MCP server driven by the MCP SDK's own client, over Streamable HTTP (/mcp on the app's
 * port) and over stdio (`allot mcp` as a child process calling the API), on the real backends:
 * tools by scope, authorize, settle, a retry with the same key applied once, the balance seen
 * to change, clear errors.
 */
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type AllotRig, basicCatalog, grant, KEYS, openAllot } from './support/allot-app.ts';
import { REPO_ROOT } from './support/servers.ts';

type Result = { isError?: boolean; structuredContent?: Record<string, unknown>; content: { text: string }[] };

describe('the MCP server', () => {
  let rig: AllotRig;
  let origin: string;
  beforeAll(async () => {
    rig = await openAllot('real');
    origin = await rig.app.listen({ host: '127.0.0.1', port: 0 });
    await basicCatalog(rig);
    await grant(rig, 'acme', '100');
  }, 60_000);
  afterAll(() => rig?.close());

  const http = async (key: keyof typeof KEYS) => {
    const client = new Client({ name: 'test', version: '1.0.0' });
    await client.connect(
      new StreamableHTTPClientTransport(new URL(`${origin}/mcp`), {
        requestInit: { headers: { authorization: `Bearer ${KEYS[key]}` } },
      }),
    );
    return client;
  };
  const stdio = async () => {
    const client = new Client({ name: 'test', version: '1.0.0' });
    await client.connect(
      new StdioClientTransport({
        command: process.execPath,
        args: ['services/allot/bin/allot.js', 'mcp'],
        cwd: REPO_ROOT,
        env: { ...(process.env as Record<string, string>), ALLOT_URL: origin, ALLOT_API_KEY: KEYS.admin },
        stderr: 'pipe',
      }),
    );
    return client;
  };
  const call = async (client: Client, name: string, args: Record<string, unknown>) =>
    (await client.callTool({ name, arguments: args })) as Result;
  const available = async (client: Client) => {
    const r = await call(client, 'get_balance', { customer_id: 'acme' });
    return Number((r.structuredContent as { balances: { available: string }[] }).balances[0]!.available);
  };

  for (const transport of ['http', 'stdio'] as const) {
    it(`over ${transport}: authorize, settle, a retry applied once, the balance changes`, async () => {
      const client = transport === 'http' ? await http('admin') : await stdio();
      try {
        const tools = (await client.listTools()).tools;
        expect(tools.map((t) => t.name).sort()).toEqual(
          [
            'authorize',
            'check_entitlement',
            'get_balance',
            'get_budget_status',
            'release',
            'report_usage',
            'settle',
          ].sort(),
        );
        const authorize = tools.find((t) => t.name === 'authorize')!;
        expect(authorize.description).toMatch(/Reuse the same idempotency_key when you retry/);
        expect(authorize.inputSchema.required).toContain('idempotency_key');

        const before = await available(client);
        const key = `${transport}-${Date.now()}`;
        const first = await call(client, 'authorize', {
          customer_id: 'acme',
          feature: 'llm-tokens',
          units: 1000,
          dimensions: { agent: 'a7' },
          idempotency_key: key,
        });
        expect(first.isError).toBeFalsy();
        expect(first.structuredContent).toMatchObject({ decision: 'allow', cost: { amount: '2' } });
        const again = await call(client, 'authorize', {
          customer_id: 'acme',
          feature: 'llm-tokens',
          units: 1000,
          dimensions: { agent: 'a7' },
          idempotency_key: key,
        });
        expect(again.structuredContent?.reservationId).toBe(first.structuredContent?.reservationId);
        expect(await available(client)).toBe(before - 2);
        const reservationId = first.structuredContent!.reservationId as string;
        const settled = await call(client, 'settle', {
          reservation_id: reservationId,
          units: 500,
          idempotency_key: `${key}-s`,
        });
        expect(settled.structuredContent).toMatchObject({ status: 'settled', settled: '1', released: '1' });
        const settledAgain = await call(client, 'settle', {
          reservation_id: reservationId,
          units: 500,
          idempotency_key: `${key}-s`,
        });
        expect(settledAgain.structuredContent).toEqual(settled.structuredContent);
        expect(await available(client)).toBe(before - 1);

        const entitlement = await call(client, 'check_entitlement', {
          customer_id: 'acme',
          feature: 'llm-tokens',
        });
        expect(entitlement.isError).toBeFalsy();
        const usage = await call(client, 'report_usage', {
          customer_id: 'acme',
          event_type: 'llm',
          data: { tokens: 5 },
          idempotency_key: `${key}-u`,
        });
        expect(usage.structuredContent).toMatchObject({ accepted: true });

        const missing = await call(client, 'settle', {
          reservation_id: 'rs_nope.x.y..z',
          idempotency_key: `${key}-x`,
        });
        expect(missing.isError).toBe(true);
        expect(missing.content[0]!.text).toMatch(/not_found \(404\)/);
        const nobody = await call(client, 'authorize', {
          customer_id: 'nobody',
          feature: 'llm-tokens',
          units: 1,
          idempotency_key: `${key}-n`,
        });
        expect(nobody.structuredContent).toMatchObject({ decision: 'deny', reason: 'customer_not_found' });
      } finally {
        await client.close();
      }
    });
  }

  it('offers tools by the key’s scopes, and refuses a request without a valid key', async () => {
    const decide = await http('decide');
    expect((await decide.listTools()).tools.map((t) => t.name).sort()).toEqual([
      'authorize',
      'release',
      'settle',
    ]);
    await decide.close();
    const read = await http('read');
    expect((await read.listTools()).tools.map((t) => t.name).sort()).toEqual([
      'check_entitlement',
      'get_balance',
      'get_budget_status',
    ]);
    await read.close();
    const res = await fetch(`${origin}/mcp`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list' }),
    });
    expect(res.status).toBe(401);
    expect((await fetch(`${origin}/mcp`)).status).toBe(405);
  });
});
