export { type McpPluginOptions, mcpPlugin } from './app.ts';
export { runStdio } from './stdio.ts';
export { type ApiCall, createMcpServer, type Scope, toolNames } from './tools.ts';
