// The lab's one way to poll: read until a condition holds or time runs out.
// Tests fail with the last thing seen (waitUntil); the fault suite and the
// harnesses take the outcome and judge it themselves (poll).
import { systemClock, type Clock } from '../src/clock.js';

export interface PollOptions {
  readonly intervalMs?: number;
  /** A simulated kernel's clock: its time passes as the poll sleeps. */
  readonly clock?: Clock;
  /** A failed read counts as no value and polling goes on (a server down on purpose). */
  readonly retryErrors?: boolean;
}

export interface Polled<T> {
  readonly ok: boolean;
  /** The last value read, undefined when no read succeeded. */
  readonly last: T | undefined;
}

export async function poll<T>(
  read: () => Promise<T>,
  ok: (value: T) => boolean,
  timeoutMs: number,
  o: PollOptions = {},
): Promise<Polled<T>> {
  const clock = o.clock ?? systemClock;
  const deadline = clock.now() + timeoutMs;
  let last: T | undefined;
  for (;;) {
    try {
      last = await read();
      if (ok(last)) return { ok: true, last };
    } catch (err) {
      if (!o.retryErrors) throw err;
    }
    if (clock.now() >= deadline) return { ok: false, last };
    await clock.sleep(o.intervalMs ?? 250);
  }
}

/** Polls what a user would look at; fails with the last thing seen when it never satisfies `ok`. */
export async function waitUntil<T>(
  what: string,
  read: () => Promise<T>,
  ok: (value: T) => boolean,
  timeoutMs = 60_000,
  intervalMs = 250,
): Promise<T> {
  const r = await poll(read, ok, timeoutMs, { intervalMs });
  if (r.ok) return r.last as T;
  throw new Error(
    `timed out after ${timeoutMs / 1000}s waiting for ${what}; last seen: ${JSON.stringify(r.last, null, 1)}`,
  );
}
