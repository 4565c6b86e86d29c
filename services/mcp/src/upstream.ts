/**
 * Where the MCP tools send their API calls when the MCP server runs apart from the API (its own
 * deployment, or `allot mcp` over stdio): over HTTP with the agent's own key. A split data plane
 * serves the API from several services, so a call goes to the one that owns its route: usage
 * events to metering, balances to credits, everything else (decisions, settle, release,
 * entitlements, budget status, whoami) to the gate.
 */
import type { ApiCall } from './tools.ts';

export interface Upstream {
  gate: string;
  credits?: string | undefined;
  metering?: string | undefined;
}

/** The base URL a path goes to. */
export function upstreamFor(upstream: Upstream, path: string): string {
  const base =
    path === '/v1/events' || path.startsWith('/v1/events?')
      ? (upstream.metering ?? upstream.gate)
      : /^\/v1\/customers\/[^/]+\/balances$/.test(path)
        ? (upstream.credits ?? upstream.gate)
        : upstream.gate;
  return base.replace(/\/$/, '');
}

/** API calls over HTTP carrying `token`. A body that is not JSON (a proxy's error page) is kept as text. */
export function httpApiCall(upstream: Upstream, token: string): ApiCall {
  return async (method, path, body) => {
    const res = await fetch(`${upstreamFor(upstream, path)}${path}`, {
      method,
      headers: {
        authorization: `Bearer ${token}`,
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    const text = await res.text();
    let parsed: unknown = null;
    if (text) {
      try {
        parsed = JSON.parse(text);
      } catch {
        parsed = { error: { code: 'upstream_error', message: text.slice(0, 500) } };
      }
    }
    return { status: res.status, body: parsed };
  };
}
