/**
 * MCP over Streamable HTTP at `/mcp`, stateless: each POST gets a fresh server and transport,
 * authenticated by the agent's API key, with the tools its scopes allow, each calling the API
 * with that same key: in-process on the API's own port (the all-in-one process), or over HTTP
 * to the data plane's services when the MCP server runs as a deployment of its own.
 */
import { type AllotApp, type ApiKeyStore, AppError, authenticate, bearerToken } from '@allot/kit';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import fp from 'fastify-plugin';
import { type ApiCall, createMcpServer, type Scope } from './tools.ts';
import { httpApiCall, type Upstream } from './upstream.ts';

export type McpPluginOptions =
  /** The API is served by this app: keys are checked here and calls are injected. */
  | { apiKeys: ApiKeyStore; upstream?: undefined }
  /** The API is elsewhere: the gate says whose key it is (`/v1/whoami`), calls go over HTTP. */
  | { upstream: Upstream; apiKeys?: undefined };

export const mcpPlugin = fp<McpPluginOptions>(
  async (app, options) => {
    const routes = app as unknown as AllotApp;
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
        let call: ApiCall;
        let scopes: Scope[];
        if (options.upstream) {
          call = httpApiCall(options.upstream, bearerToken(request));
          const who = await call('GET', '/v1/whoami');
          if (who.status === 401) throw new AppError('unauthorized', 'invalid API key');
          if (who.status !== 200) {
            throw new AppError('unavailable', `the Allot API answered /v1/whoami with HTTP ${who.status}`);
          }
          scopes = (who.body as { scopes: Scope[] }).scopes;
        } else {
          const { token, principal } = await authenticate(options.apiKeys, request);
          scopes = principal.scopes as Scope[];
          call = async (method, path, body) => {
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
        }
        const server = createMcpServer(call, scopes);
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
