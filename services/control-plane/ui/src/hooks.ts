import { useCallback, useEffect, useState } from 'react';
import { api } from './api.ts';

/** GETs `path` (again when `reload` is called or `every` ms pass); null path: nothing. */
export function useGet<T>(path: string | null, every?: number) {
  const [data, setData] = useState<T | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [tick, setTick] = useState(0);
  const reload = useCallback(() => setTick((t) => t + 1), []);
  // biome-ignore lint/correctness/useExhaustiveDependencies: tick is how reload asks for a fetch
  useEffect(() => {
    if (path === null) return;
    let live = true;
    api<T>('GET', path).then(
      (value) => {
        if (!live) return;
        setData(value);
        setError(null);
      },
      (e: unknown) => live && setError((e as Error).message),
    );
    return () => {
      live = false;
    };
  }, [path, tick]);
  useEffect(() => {
    if (!every) return;
    const timer = setInterval(reload, every);
    return () => clearInterval(timer);
  }, [every, reload]);
  return { data, error, reload };
}

/** A form's submit: runs `action`, shows its error, calls `done` after. */
export function useAction(done?: () => void) {
  const [error, setError] = useState<string | null>(null);
  const run = async (action: () => Promise<unknown>) => {
    try {
      await action();
      setError(null);
      done?.();
    } catch (e) {
      setError((e as Error).message);
    }
  };
  return { error, run };
}
