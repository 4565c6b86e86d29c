/**
 * Group commit: work submitted for the same key in one turn of the event loop, or while that
 * key's earlier groups are still in flight, goes out together in one call. Under light load a
 * group is one item and waits at most one turn; under load groups grow instead of calls
 * multiplying, which is what keeps a hot key (one credit pool, one stream partition) from
 * capping out at one round trip per item.
 */
export interface GroupCommitOptions<Item> {
  /** Most weight in one group (a single heavier item still goes alone). Default 1000. */
  maxGroup?: number;
  /** An item's weight toward `maxGroup`. Default 1. */
  weight?: (item: Item) => number;
  /** Groups of one key in flight at once. Default 1. */
  maxInFlight?: number;
  /**
   * When a group fails, fail what waits for its key too, with the same error, instead of
   * committing it next: nothing then waits longer than one commit behind a failing one.
   */
  failWaitingOnError?: boolean;
}

/** Commits one group; resolves with one result per item, in order, or rejects for them all. */
export type CommitGroup<Item, Result> = (key: string, items: Item[]) => Promise<Result[]>;

interface Entry<Item, Result> {
  item: Item;
  resolve: (result: Result) => void;
  reject: (error: unknown) => void;
}

export class GroupCommit<Item, Result> {
  readonly #commit: CommitGroup<Item, Result>;
  readonly #maxGroup: number;
  readonly #weight: (item: Item) => number;
  readonly #maxInFlight: number;
  readonly #failWaiting: boolean;
  readonly #queues = new Map<string, Entry<Item, Result>[]>();
  readonly #inFlight = new Map<string, number>();
  #scheduled = false;

  constructor(commit: CommitGroup<Item, Result>, options: GroupCommitOptions<Item> = {}) {
    this.#commit = commit;
    this.#maxGroup = Math.max(1, options.maxGroup ?? 1000);
    this.#weight = options.weight ?? (() => 1);
    this.#maxInFlight = Math.max(1, options.maxInFlight ?? 1);
    this.#failWaiting = options.failWaitingOnError ?? false;
  }

  submit(key: string, item: Item): Promise<Result> {
    return new Promise((resolve, reject) => {
      let queue = this.#queues.get(key);
      if (!queue) {
        queue = [];
        this.#queues.set(key, queue);
      }
      queue.push({ item, resolve, reject });
      if (!this.#scheduled) {
        this.#scheduled = true;
        setImmediate(() => {
          this.#scheduled = false;
          for (const waiting of [...this.#queues.keys()]) this.#drain(waiting);
        });
      }
    });
  }

  /** Starts groups for `key` while its in-flight limit allows. */
  #drain(key: string): void {
    const queue = this.#queues.get(key);
    if (!queue) return;
    let start = 0;
    while (start < queue.length && (this.#inFlight.get(key) ?? 0) < this.#maxInFlight) {
      let end = start;
      let weight = 0;
      while (end < queue.length) {
        const next = this.#weight(queue[end]!.item);
        if (end > start && weight + next > this.#maxGroup) break;
        weight += next;
        end++;
      }
      void this.#run(key, queue.slice(start, end));
      start = end;
    }
    if (start === queue.length) this.#queues.delete(key);
    else if (start > 0) queue.splice(0, start);
  }

  async #run(key: string, group: Entry<Item, Result>[]): Promise<void> {
    this.#inFlight.set(key, (this.#inFlight.get(key) ?? 0) + 1);
    try {
      const results = await this.#commit(
        key,
        group.map((entry) => entry.item),
      );
      if (results.length !== group.length) {
        throw new Error(`group commit returned ${results.length} results for ${group.length} items`);
      }
      for (let i = 0; i < group.length; i++) group[i]!.resolve(results[i]!);
    } catch (error) {
      for (const entry of group) entry.reject(error);
      if (this.#failWaiting) {
        const waiting = this.#queues.get(key) ?? [];
        this.#queues.delete(key);
        for (const entry of waiting) entry.reject(error);
      }
    } finally {
      const left = (this.#inFlight.get(key) ?? 1) - 1;
      if (left === 0) this.#inFlight.delete(key);
      else this.#inFlight.set(key, left);
      this.#drain(key);
    }
  }
}
