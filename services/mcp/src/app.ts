/**
 * MCP over Streamable HTTP at `/mcp` on the API's own port, stateless: each POST gets a fresh
 * server and transport, authenticated by the agent's API key, with the tools its scopes allow,
 * each calling the API in-process with that same key. `GET /v1/whoami` tells a client (the
 * stdio server) which key it holds.
 */
import { type AllotApp, type ApiKeyStore, AppError, hashApiKey, type Principal } from '@allot/kit';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import type { FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import { z } from 'zod';
import { type ApiCall, createMcpServer, type Scope } from './tools.ts';

export interface McpPluginOptions {
  apiKeys: ApiKeyStore;
}

async function authenticate(
  keys: ApiKeyStore,
  request: FastifyRequest,
): Promise<{ token: string; principal: Principal }> {
  const header = request.headers.authorization;
  const token = typeof header === 'string' && header.startsWith('Bearer ') ? header.slice(7).trim() : '';
  if (!token) throw new AppError('unauthorized', 'missing API key: send Authorization: Bearer <key>');
  const principal = await keys.findByHash(hashApiKey(token));
  if (!principal) throw new AppError('unauthorized', 'invalid API key');
  return { token, principal };
}

export const mcpPlugin = fp<McpPluginOptions>(
  async (app, options) => {
    const routes = app as unknown as AllotApp;
    routes.get(
      '/v1/whoami',
      {
        config: { auth: 'public' },
        schema: {
          tags: ['keys'],
          summary: 'The key this request carries: its tenant and scopes',
          response: { 200: z.object({ keyId: z.string(), tenant: z.string(), scopes: z.array(z.string()) }) },
        },
      },
      async (request) => {
        const { principal } = await authenticate(options.apiKeys, request);
        return { keyId: principal.keyId, tenant: principal.tenant, scopes: [...principal.scopes] };
      },
    );

    routes.post(
      '/mcp',
      {
        config: { auth: 'public' },
        schema: {
          tags: ['mcp'],
          summary: 'MCP over Streamable HTTP (stateless), tools by the key’s scopes',
          hide: true,
        },
      },
      async (request, reply) => {
        const { token, principal } = await authenticate(options.apiKeys, request);
        const call: ApiCall = async (method, path, body) => {
          const res = await app.inject({
            method,
            url: path,
            headers: {
              authorization: `Bearer ${token}`,
              ...(body === undefined ? {} : { 'content-type': 'application/json' }),
            },
            ...(body === undefined ? {} : { payload: JSON.stringify(body) }),
          });
          return { status: res.statusCode, body: res.body ? JSON.parse(res.body) : null };
        };
        const server = createMcpServer(call, principal.scopes as Scope[]);
        const transport = new StreamableHTTPServerTransport({});
        reply.hijack();
        reply.raw.on('close', () => {
          void transport.close();
          void server.close();
        });
        await server.connect(transport);
        await transport.handleRequest(request.raw, reply.raw, request.body);
      },
    );
    for (const method of ['GET', 'DELETE'] as const) {
      routes.route({
        method,
        url: '/mcp',
        config: { auth: 'public' },
        schema: { hide: true },
        handler: async (_request, reply) =>
          reply
            .code(405)
            .header('allow', 'POST')
            .send({
              jsonrpc: '2.0',
              error: { code: -32000, message: 'this MCP endpoint is stateless: POST only' },
              id: null,
            }),
      });
    }
  },
  { name: 'allot-mcp', fastify: '5.x', dependencies: ['allot-auth'] },
);
