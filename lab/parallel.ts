// Running lab work a few at a time: VMs emulate a CPU each, so booting more of
// them than the host has cores only makes every one of them slower.
import { availableParallelism } from 'node:os';

/** How many one-vCPU VMs to boot at once: one per host core. */
export function vmSlots(): number {
  return Math.max(1, availableParallelism());
}

/**
 * `fn` over `items` with at most `limit` running at once; results in the order
 * of `items`. The first failure rejects, once the ones already running finish.
 */
export async function mapLimited<T, R>(
  items: readonly T[],
  limit: number,
  fn: (item: T, index: number) => Promise<R>,
): Promise<R[]> {
  const results: R[] = new Array<R>(items.length);
  let next = 0;
  let failure: { error: unknown } | undefined;
  const worker = async (): Promise<void> => {
    while (next < items.length && !failure) {
      const i = next++;
      try {
        results[i] = await fn(items[i] as T, i);
      } catch (error) {
        failure ??= { error };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, worker));
  if (failure) throw failure.error;
  return results;
}
