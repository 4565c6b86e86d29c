/**
 * The MCP server over stdio (`npx allot mcp`), for agents that start their tools as local
 * processes: each tool calls the Allot API at ALLOT_URL (default http://localhost:8080) with
 * ALLOT_API_KEY, and the tools offered follow that key's scopes. Logs go to stderr only:
 * stdout is the protocol.
 */
import { StdioServerTransport } from '@modelcontextprotocol/sdk/server/stdio.js';
import { createMcpServer, type Scope } from './tools.ts';
import { httpApiCall } from './upstream.ts';

export async function runStdio(env: NodeJS.ProcessEnv = process.env): Promise<void> {
  const base = (env.ALLOT_URL ?? 'http://localhost:8080').replace(/\/$/, '');
  const key = env.ALLOT_API_KEY;
  if (!key) throw new Error('ALLOT_API_KEY is required: the key the agent acts with');
  const call = httpApiCall({ gate: base }, key);
  const who = await call('GET', '/v1/whoami');
  if (who.status !== 200) throw new Error(`ALLOT_API_KEY was refused by ${base} (HTTP ${who.status})`);
  const server = createMcpServer(call, (who.body as { scopes: Scope[] }).scopes);
  await server.connect(new StdioServerTransport());
  process.stderr.write(
    `allot mcp: serving tools for key ${(who.body as { keyId: string }).keyId} on stdio\n`,
  );
}
