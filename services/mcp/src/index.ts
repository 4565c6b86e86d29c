export { type McpPluginOptions, mcpPlugin } from './app.ts';
export { runStdio } from './stdio.ts';
export { type ApiCall, createMcpServer, type Scope, toolNames } from './tools.ts';
export { httpApiCall, type Upstream, upstreamFor } from './upstream.ts';
