import { describe, expect, it } from 'vitest';
import { openBus } from '../src/bus/index.ts';
import { NatsBus } from '../src/bus/nats.ts';
import { freshEmbeddedBus, freshNatsBus, testNatsUrl } from '../src/testing/bus.ts';
import { busConformance } from './bus.conformance.ts';

busConformance('nats', freshNatsBus);
busConformance('embedded', freshEmbeddedBus);

describe('openBus', () => {
  it('opens NATS when a URL is set and the embedded bus otherwise', async () => {
    const nats = await openBus({ url: testNatsUrl, name: 'open-bus-test' });
    const embedded = await openBus({});
    expect([nats.kind, embedded.kind]).toEqual(['nats', 'embedded']);
    await Promise.all([nats.close(), embedded.close()]);
  });

  it('rejects a malformed NATS URL before connecting, without showing the password', async () => {
    await expect(NatsBus.connect({ url: 'http://user:secret@localhost:4222' })).rejects.toThrow(
      /^invalid NATS URL: 'http:\/\/\*\*\*@localhost:4222'/,
    );
    await expect(openBus({ url: 'not a url' })).rejects.toThrow(/^invalid NATS URL/);
    await expect(openBus({ url: 'nats://a:4222,' })).rejects.toThrow(/^invalid NATS URL/);
  });

  it('rejects a prefix that cannot be part of a stream name', async () => {
    await expect(openBus({ prefix: 'has.dot' })).rejects.toThrow(/invalid prefix name/);
    await expect(openBus({ url: testNatsUrl, prefix: 'a b' })).rejects.toThrow(/invalid prefix name/);
  });
});
