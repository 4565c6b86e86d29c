/**
 * Request and reply over the bus's notifications, so the uplink runs on NATS and on the
 * in-process bus alike: a request carries `replyTo`, a subject under the requester's own
 * inbox (`allot.<tenant>.inbox.<id>`), and the responder answers there. A tenant's user may
 * only subscribe under `allot.<tenant>.`, so it can only ever hear its own replies.
 */
import { randomUUID } from 'node:crypto';
import type { Bus } from '@allot/kit/bus';

export class RequestTimeoutError extends Error {
  override readonly name = 'RequestTimeoutError';
}

export interface Envelope<T> {
  replyTo: string;
  body: T;
}

const encode = (value: unknown) => Buffer.from(JSON.stringify(value));
const decode = <T>(data: Uint8Array): T => JSON.parse(Buffer.from(data).toString('utf8')) as T;

export class Requester {
  readonly #bus: Bus;
  readonly #inbox: string;
  readonly #waiting = new Map<string, (reply: unknown) => void>();
  #subscription: { unsubscribe(): void } | undefined;

  constructor(bus: Bus, inbox: string) {
    this.#bus = bus;
    this.#inbox = inbox;
  }

  start(): void {
    this.#subscription ??= this.#bus.subscribe(`${this.#inbox}.*`, (subject, data) => {
      const id = subject.slice(this.#inbox.length + 1);
      const resolve = this.#waiting.get(id);
      if (!resolve) return;
      this.#waiting.delete(id);
      try {
        resolve(decode(data));
      } catch {
        // A reply that is not JSON is as good as none: the request times out.
      }
    });
  }

  stop(): void {
    this.#subscription?.unsubscribe();
    this.#subscription = undefined;
  }

  async request<R>(subject: string, body: unknown, timeoutMs = 2000): Promise<R> {
    this.start();
    const id = randomUUID();
    let timer: NodeJS.Timeout | undefined;
    const reply = new Promise<R>((resolve, reject) => {
      timer = setTimeout(() => {
        this.#waiting.delete(id);
        reject(new RequestTimeoutError(`${subject}: no reply within ${timeoutMs} ms`));
      }, timeoutMs);
      this.#waiting.set(id, (value) => {
        clearTimeout(timer);
        resolve(value as R);
      });
    });
    try {
      this.#bus.notify(
        subject,
        encode({ replyTo: `${this.#inbox}.${id}`, body } satisfies Envelope<unknown>),
      );
    } catch (error) {
      clearTimeout(timer);
      this.#waiting.delete(id);
      throw error;
    }
    return reply;
  }
}

/** Serves requests on `subject` (wildcards allowed); the handler's result is the reply. */
export function respond<T>(
  bus: Bus,
  subject: string,
  handler: (subject: string, body: T, replyTo: string) => Promise<unknown>,
  onError: (error: unknown, subject: string) => void,
): { unsubscribe(): void } {
  return bus.subscribe(subject, (on, data) => {
    let envelope: Envelope<T>;
    try {
      envelope = decode<Envelope<T>>(data);
    } catch (error) {
      onError(error, on);
      return;
    }
    if (typeof envelope?.replyTo !== 'string') return;
    handler(on, envelope.body, envelope.replyTo).then(
      (reply) => bus.notify(envelope.replyTo, encode(reply)),
      (error: unknown) => {
        onError(error, on);
        bus.notify(envelope.replyTo, encode({ error: (error as Error).message ?? String(error) }));
      },
    );
  });
}
