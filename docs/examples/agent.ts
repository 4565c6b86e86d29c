/**
 * Quickstart for an agent: the MCP tools over Streamable HTTP, as an agent framework would
 * call them. Run against `npm start` (after the API quickstart, which creates the customer):
 *   ALLOT_API_KEY=<key> npx tsx docs/examples/agent.ts
 */
import { randomUUID } from 'node:crypto';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';

const base = process.env.ALLOT_URL ?? 'http://localhost:8080';
const client = new Client({ name: 'quickstart-agent', version: '1.0.0' });
await client.connect(
  new StreamableHTTPClientTransport(new URL(`${base}/mcp`), {
    requestInit: { headers: { authorization: `Bearer ${process.env.ALLOT_API_KEY ?? ''}` } },
  }),
);
const tools = (await client.listTools()).tools.map((t) => t.name);
console.log(`tools: ${tools.join(', ')}`);

const call = async (name: string, args: Record<string, unknown>) => {
  const result = (await client.callTool({ name, arguments: args })) as {
    structuredContent?: Record<string, unknown>;
  };
  return result.structuredContent ?? {};
};

// Ask before spending. The key makes a retry of this exact call safe: reuse it when retrying.
const key = randomUUID();
const decision = await call('authorize', {
  customer_id: 'quickstart-co',
  feature: 'llm-tokens',
  units: 800,
  dimensions: { agent: 'quickstart-agent' },
  idempotency_key: key,
});
console.log(`authorize: ${decision.decision}`);
if (decision.decision === 'allow') {
  // ... the agent does its work here, then reports what it actually used.
  const settled = await call('settle', {
    reservation_id: decision.reservationId,
    units: 350,
    idempotency_key: `${key}:settle`,
  });
  console.log(`settled: ${settled.settled} credits, ${settled.released} released`);
}
const balance = await call('get_balance', { customer_id: 'quickstart-co' });
console.log(`balance: ${(balance.balances as { available: string }[])[0]?.available}`);
await client.close();
