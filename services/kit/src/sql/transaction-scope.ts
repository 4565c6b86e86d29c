import { AsyncLocalStorage } from 'node:async_hooks';

/**
 * Catches the store itself being called from inside its own `transaction` callback. On
 * PostgreSQL that statement would quietly run outside the transaction, on another
 * connection; on PGlite (one connection) it would wait for the transaction to end, which
 * never happens. Both adapters refuse it, so the mistake shows up on either.
 */
export class TransactionScope {
  readonly #current = new AsyncLocalStorage<{ open: boolean }>();

  async run<T>(fn: () => Promise<T>): Promise<T> {
    const scope = { open: true };
    try {
      return await this.#current.run(scope, fn);
    } finally {
      // Work the callback left running keeps this context; once the transaction is over it may use the store.
      scope.open = false;
    }
  }

  assertOutside(method: string): void {
    if (this.#current.getStore()?.open) {
      throw new Error(`store.${method}() called inside store.transaction(): use the transaction's executor`);
    }
  }
}
