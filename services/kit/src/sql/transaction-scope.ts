import { AsyncLocalStorage } from 'node:async_hooks';

/**
 * Catches the store itself being called from inside its own `transaction` callback. On
 * PostgreSQL that statement would quietly run outside the transaction, on another
 * connection; on PGlite (one connection) it would wait for the transaction to end, which
 * never happens. Both adapters refuse it, so the mistake shows up on either.
 *
 * Only under test (NODE_ENV=test, as vitest sets it) or ALLOT_CHECK_TRANSACTIONS=1: an
 * AsyncLocalStorage turns on Node's promise hooks for the whole process, which costs a busy
 * gate a tenth of its throughput. The tests are where the mistake is caught.
 */
export class TransactionScope {
  static readonly enabled = process.env.NODE_ENV === 'test' || process.env.ALLOT_CHECK_TRANSACTIONS === '1';
  readonly #current = TransactionScope.enabled ? new AsyncLocalStorage<{ open: boolean }>() : undefined;

  async run<T>(fn: () => Promise<T>): Promise<T> {
    if (!this.#current) return fn();
    const scope = { open: true };
    try {
      return await this.#current.run(scope, fn);
    } finally {
      // Work the callback left running keeps this context; once the transaction is over it may use the store.
      scope.open = false;
    }
  }

  assertOutside(method: string): void {
    if (this.#current?.getStore()?.open) {
      throw new Error(`store.${method}() called inside store.transaction(): use the transaction's executor`);
    }
  }
}
