/**
 * The idle wait of a background loop: `pause(ms)` sleeps, but ends at once on `wake()` (new
 * work) or `stop()`, so a loop polls slowly yet reacts immediately and stops without waiting
 * out its interval. `woken` tells whether a wake came since the last `clearWake()`.
 */
export class LoopSignal {
  #stopping = false;
  #woken = false;
  readonly #waiters = new Set<() => void>();

  get stopping(): boolean {
    return this.#stopping;
  }

  get woken(): boolean {
    return this.#woken;
  }

  start(): void {
    this.#stopping = false;
  }

  stop(): void {
    this.#stopping = true;
    this.wake();
  }

  wake(): void {
    this.#woken = true;
    for (const waiter of this.#waiters) waiter();
  }

  clearWake(): void {
    this.#woken = false;
  }

  pause(ms: number): Promise<void> {
    if (this.#stopping) return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.#waiters.delete(done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.#waiters.add(done);
    });
  }
}
