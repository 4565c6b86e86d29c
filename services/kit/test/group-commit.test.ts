import { describe, expect, it } from 'vitest';
import { GroupCommit } from '../src/group-commit.ts';

/** A commit that records its groups and finishes only when the test says so. */
function recorder<Item>() {
  const groups: { key: string; items: Item[]; finish: (error?: Error) => void }[] = [];
  const commit = (key: string, items: Item[]) =>
    new Promise<string[]>((resolve, reject) => {
      groups.push({
        key,
        items,
        finish: (error) => (error ? reject(error) : resolve(items.map((item) => `${key}:${String(item)}`))),
      });
    });
  return { groups, commit };
}

const turn = () => new Promise((resolve) => setImmediate(resolve));

describe('GroupCommit', () => {
  it('commits what one turn of the event loop submits for a key as one group, keys apart', async () => {
    const { groups, commit } = recorder<number>();
    const gc = new GroupCommit(commit);
    const answers = Promise.all([gc.submit('a', 1), gc.submit('b', 2), gc.submit('a', 3)]);
    await turn();
    expect(groups.map((g) => [g.key, g.items])).toEqual([
      ['a', [1, 3]],
      ['b', [2]],
    ]);
    for (const g of groups) g.finish();
    expect(await answers).toEqual(['a:1', 'b:2', 'a:3']);
  });

  it('holds back what arrives while a group of its key is in flight, then sends it as one group', async () => {
    const { groups, commit } = recorder<number>();
    const gc = new GroupCommit(commit, { maxInFlight: 1 });
    const first = gc.submit('a', 1);
    await turn();
    const later = [gc.submit('a', 2), gc.submit('a', 3)];
    const other = gc.submit('b', 9);
    await turn();
    expect(groups.map((g) => g.items)).toEqual([[1], [9]]);
    groups[0]!.finish();
    expect(await first).toBe('a:1');
    expect(groups.map((g) => g.items)).toEqual([[1], [9], [2, 3]]);
    groups[1]!.finish();
    groups[2]!.finish();
    expect(await Promise.all([...later, other])).toEqual(['a:2', 'a:3', 'b:9']);
  });

  it('allows maxInFlight groups of a key at once', async () => {
    const { groups, commit } = recorder<number>();
    const gc = new GroupCommit(commit, { maxInFlight: 2, maxGroup: 1 });
    const all = Promise.all([1, 2, 3].map((n) => gc.submit('a', n)));
    await turn();
    expect(groups.map((g) => g.items)).toEqual([[1], [2]]);
    groups[1]!.finish();
    await turn();
    expect(groups.map((g) => g.items)).toEqual([[1], [2], [3]]);
    groups[0]!.finish();
    groups[2]!.finish();
    expect(await all).toEqual(['a:1', 'a:2', 'a:3']);
  });

  it('splits groups by weight; an item heavier than the limit goes alone', async () => {
    const { groups, commit } = recorder<number>();
    const gc = new GroupCommit(commit, { maxGroup: 10, weight: (n) => n, maxInFlight: 10 });
    const all = Promise.all([4, 5, 2, 30, 1].map((n) => gc.submit('a', n)));
    await turn();
    expect(groups.map((g) => g.items)).toEqual([[4, 5], [2], [30], [1]]);
    for (const g of groups) g.finish();
    await all;
  });

  it('rejects every item of a failed group and only those; the key goes on', async () => {
    const { groups, commit } = recorder<number>();
    const gc = new GroupCommit(commit);
    const failed = [gc.submit('a', 1), gc.submit('a', 2)].map((p) => p.catch((e: Error) => e.message));
    const fine = gc.submit('b', 3);
    await turn();
    groups[0]!.finish(new Error('down'));
    groups[1]!.finish();
    expect(await Promise.all(failed)).toEqual(['down', 'down']);
    expect(await fine).toBe('b:3');
    const next = gc.submit('a', 4);
    await turn();
    groups[2]!.finish();
    expect(await next).toBe('a:4');
  });

  it('refuses a commit that answers a different number of results', async () => {
    const gc = new GroupCommit<number, string>(async () => ['only one']);
    const answers = [gc.submit('a', 1), gc.submit('a', 2)].map((p) => p.catch((e: Error) => e.message));
    expect(await Promise.all(answers)).toEqual([
      'group commit returned 1 results for 2 items',
      'group commit returned 1 results for 2 items',
    ]);
  });

  it('with failWaitingOnError, fails what waits for the key when a group fails', async () => {
    const { groups, commit } = recorder<number>();
    const gc = new GroupCommit(commit, { failWaitingOnError: true });
    const first = gc.submit('a', 1).catch((e: Error) => e.message);
    await turn();
    const waiting = [gc.submit('a', 2), gc.submit('a', 3)].map((p) => p.catch((e: Error) => e.message));
    const other = gc.submit('b', 4);
    await turn();
    groups[0]!.finish(new Error('stream down'));
    expect(await first).toBe('stream down');
    expect(await Promise.all(waiting)).toEqual(['stream down', 'stream down']);
    groups[1]!.finish();
    expect(await other).toBe('b:4');
    expect(groups.map((g) => g.items)).toEqual([[1], [4]]);
  });
});
