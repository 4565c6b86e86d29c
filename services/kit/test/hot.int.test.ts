import { once } from 'node:events';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { EmbeddedHotState, openHotState, RedisHotState } from '../src/hot/index.ts';
import { freshEmbeddedHotState, freshRedisHotState, testRedisUrl } from '../src/testing/hot.ts';
import { hotConformance } from './hot.conformance.ts';

hotConformance('RedisHotState', async () => {
  const hot = await freshRedisHotState();
  return {
    hot,
    prefix: hot.prefix,
    cleanup: () => hot.cleanup(),
    flushScripts: async () => {
      await hot.redis.script('FLUSH');
    },
  };
});

hotConformance('EmbeddedHotState', async () => {
  const hot = await freshEmbeddedHotState();
  return { hot, prefix: '', cleanup: () => hot.close() };
});

hotConformance('EmbeddedHotState (prefixed)', async () => {
  const hot = await EmbeddedHotState.open({ prefix: 'p:' });
  return { hot, prefix: 'p:', cleanup: () => hot.close() };
});

describe('EmbeddedHotState', () => {
  it('aborts a script that runs past its time limit, even one that catches errors, and carries on', async () => {
    const hot = await EmbeddedHotState.open({ scriptTimeLimitMs: 50 });
    try {
      for (const lua of ['while true do end', 'while true do pcall(function() while true do end end) end']) {
        await expect(hot.run({ name: `spin.${lua.length}`, lua }, [], [])).rejects.toThrow(
          /^ERR script exceeded the embedded time limit of 50 ms script: [0-9a-f]{40}, on @user_script:1\.$/,
        );
      }
      expect(await hot.run({ name: 'after', lua: 'return 1' }, [], [])).toBe(1);
    } finally {
      await hot.close();
    }
  });

  it('expires keys on its injected clock', async () => {
    let now = 1_000_000;
    const hot = await EmbeddedHotState.open({ clock: () => now });
    try {
      await hot.call('SET', 'k', 'v', 'PX', 1000);
      now += 1000;
      expect(await hot.call('GET', 'k')).toBe('v');
      now += 1;
      expect(await hot.run({ name: 'get', lua: "return redis.call('GET', KEYS[1])" }, ['k'], [])).toBeNull();
    } finally {
      await hot.close();
    }
  });

  it('rejects calls once closed', async () => {
    const hot = await EmbeddedHotState.open();
    await hot.close();
    await expect(hot.call('PING')).rejects.toThrow('the embedded hot state is closed');
  });
});

describe('openHotState', () => {
  it('opens Redis for a URL and the embedded adapter without one', async () => {
    const redis = await openHotState({ url: testRedisUrl, prefix: 't:open:' });
    const embedded = await openHotState({});
    try {
      expect(redis.kind).toBe('redis');
      expect(embedded.kind).toBe('embedded');
      await Promise.all([redis.ping(), embedded.ping()]);
    } finally {
      await Promise.all([redis.close(), embedded.close()]);
    }
  });

  it('throws a clear error for a malformed URL, without the password', async () => {
    await expect(openHotState({ url: 'not a url' })).rejects.toThrow(/^invalid Redis URL: not a url/);
    await expect(openHotState({ url: 'http://127.0.0.1:6379' })).rejects.toThrow(/^invalid Redis URL: /);
    const error = await openHotState({ url: 'redis://user:s3cret@127.0.0.1:6379/x' }).catch(
      (e: unknown) => e,
    );
    expect((error as Error).message).toMatch(
      /^invalid Redis URL: redis:\/\/user:\*\*\*@127\.0\.0\.1:6379\/x/,
    );
    expect((error as Error).message).not.toContain('s3cret');
  });
});

describe('RedisHotState connectivity', () => {
  const proxies: RedisProxy[] = [];
  afterEach(async () => {
    await Promise.all(proxies.splice(0).map((p) => p.close()));
  });

  it('refuses to open when Redis cannot be reached', async () => {
    const proxy = await RedisProxy.start();
    proxies.push(proxy);
    await proxy.stop();
    await expect(RedisHotState.open({ url: proxy.url, connectTimeoutMs: 500 })).rejects.toThrow(
      /^cannot connect to Redis at redis:\/\/127\.0\.0\.1:\d+/,
    );
  });

  it('opens without Redis when a connection is not required, and connects once Redis is up', async () => {
    const proxy = await RedisProxy.start();
    proxies.push(proxy);
    await proxy.stop();
    const hot = await RedisHotState.open({
      url: proxy.url,
      prefix: `t:late:${proxy.port}:`,
      requireConnection: false,
    });
    try {
      await expect(hot.ping()).rejects.toThrow();
      await proxy.resume();
      let up = false;
      for (let attempt = 0; attempt < 100 && !up; attempt++) {
        up = await hot.ping().then(
          () => true,
          () => false,
        );
        if (!up) await new Promise((resolve) => setTimeout(resolve, 50));
      }
      expect(up).toBe(true);
    } finally {
      await hot.close();
    }
  });

  it('rejects calls promptly while Redis is down and recovers when it is back', async () => {
    const proxy = await RedisProxy.start();
    proxies.push(proxy);
    const hot = await RedisHotState.open({ url: proxy.url, prefix: `t:outage:${proxy.port}:` });
    try {
      expect(await hot.call('SET', 'k', 'v')).toBe('OK');
      await proxy.stop();
      // Down: every call rejects instead of queueing (the bound is commandTimeoutMs, 2 s).
      const started = Date.now();
      await expect(hot.call('GET', 'k')).rejects.toThrow();
      await expect(
        hot.run({ name: 'outage.get', lua: "return redis.call('GET', KEYS[1])" }, ['k'], []),
      ).rejects.toThrow();
      expect(Date.now() - started).toBeLessThan(5000);
      await proxy.resume();
      // Back: the client reconnects by itself.
      let value: unknown;
      for (let attempt = 0; attempt < 100 && value !== 'v'; attempt++) {
        value = await hot.call('GET', 'k').catch(() => undefined);
        if (value !== 'v') await new Promise((resolve) => setTimeout(resolve, 50));
      }
      expect(value).toBe('v');
      expect(await hot.run({ name: 'outage.get', lua: "return redis.call('GET', KEYS[1])" }, ['k'], [])).toBe(
        'v',
      );
      await hot.call('DEL', 'k');
    } finally {
      await hot.close();
    }
  });

  it('rejects a call Redis does not answer within commandTimeoutMs, then carries on', async () => {
    const proxy = await RedisProxy.start();
    proxies.push(proxy);
    const hot = await RedisHotState.open({
      url: proxy.url,
      prefix: `t:stall:${proxy.port}:`,
      commandTimeoutMs: 300,
    });
    try {
      proxy.freeze();
      await expect(hot.call('PING')).rejects.toThrow('Command timed out');
      proxy.thaw();
      expect(await hot.call('PING')).toBe('PONG');
    } finally {
      await hot.close();
    }
  });

  it('refuses keyspace-wide commands under a prefix', async () => {
    const hot = await freshRedisHotState();
    try {
      await expect(hot.call('FLUSHALL')).rejects.toThrow(/FLUSHALL ignores the key prefix/);
      await expect(hot.call('dbsize')).rejects.toThrow(/DBSIZE ignores the key prefix/);
    } finally {
      await hot.cleanup();
    }
  });

  it('runs a script used for the first time while other calls wait in the same pipeline', async () => {
    const hot = await freshRedisHotState();
    try {
      const first = { name: 'pipelined.first', lua: "return redis.call('INCR', KEYS[1])" };
      const second = { name: 'pipelined.second', lua: "return redis.call('GET', KEYS[1])" };
      const replies = await Promise.all([
        hot.run(first, ['{a}:n'], []),
        hot.call('SET', '{a}:m', '1'),
        hot.run(second, ['{a}:n'], []),
        hot.run(first, ['{a}:n'], []),
      ]);
      expect(replies).toEqual([1, 'OK', '1', 2]);
    } finally {
      await hot.cleanup();
    }
  });
});

/** A TCP forwarder to the test Redis that can drop every connection and refuse new ones. */
class RedisProxy {
  private server: Server | undefined;
  private readonly sockets = new Set<Socket>();

  private constructor(readonly port: number) {}

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  static async start(): Promise<RedisProxy> {
    const probe = createServer();
    probe.listen(0, '127.0.0.1');
    await once(probe, 'listening');
    const address = probe.address();
    const port = typeof address === 'object' && address !== null ? address.port : 0;
    probe.close();
    await once(probe, 'close');
    const proxy = new RedisProxy(port);
    await proxy.resume();
    return proxy;
  }

  async resume(): Promise<void> {
    const target = new URL(testRedisUrl);
    this.server = createServer((client) => this.forward(client, target));
    this.server.listen(this.port, '127.0.0.1');
    await once(this.server, 'listening');
  }

  async stop(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    this.sockets.clear();
    const server = this.server;
    this.server = undefined;
    if (server !== undefined) await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  close(): Promise<void> {
    return this.stop();
  }

  /** Keeps connections open but stops forwarding: a stalled server. */
  freeze(): void {
    for (const socket of this.sockets) socket.pause();
  }

  thaw(): void {
    for (const socket of this.sockets) socket.resume();
  }

  private forward(client: Socket, target: URL): void {
    const upstream = connect(Number(target.port || 6379), target.hostname);
    for (const socket of [client, upstream]) {
      this.sockets.add(socket);
      socket.on('error', () => socket.destroy());
      socket.on('close', () => {
        this.sockets.delete(socket);
        client.destroy();
        upstream.destroy();
      });
    }
    client.pipe(upstream);
    upstream.pipe(client);
  }
}
