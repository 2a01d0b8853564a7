// One agent's module fetches, run beside its kernel loop rather than in it: a
// download may take minutes (module-policy.ts's timeouts), and meanwhile the
// loop must keep reading the kernel, guarding stalls and reporting. A failure
// that a later attempt may fix is retried on fetch-retry.ts's schedule.
import type { DesiredPatch } from '../src/api/generated/types.js';
import type { Clock } from '../src/clock.js';
import {
  afterFailure,
  FIRST_ATTEMPT,
  nextAttempt,
  type FetchFailure,
  type FetchState,
  type RetryPolicy,
} from './fetch-retry.js';
import { ModuleSourceError } from './module-errors.js';
import type { ModuleFetcher } from './module-source.js';

export interface ModuleFetchesOptions {
  readonly fetch: ModuleFetcher;
  readonly clock: Clock;
  readonly policy: RetryPolicy;
  /** Each attempt's outcome: the agent announces it and looks again. */
  readonly onSettled: (entry: DesiredPatch, state: FetchState) => void;
}

/** What a fetch is for: a new generation or another module starts afresh (a new generation retries a failed node). */
const keyOf = (e: DesiredPatch): string => JSON.stringify([e.generation, e.patchName, e.module]);

function asFailure(err: unknown): FetchFailure {
  if (err instanceof ModuleSourceError)
    return { message: err.message, retryable: err.retryable, reason: err.reason };
  // Not the source's words (the module folder, say): worth another try, within the bound.
  return {
    message: `cannot fetch the module: ${(err as Error).message}`,
    retryable: true,
    reason: 'AgentError',
  };
}

export class ModuleFetches {
  private readonly fetches = new Map<string, { key: string; state: FetchState }>();

  constructor(private readonly o: ModuleFetchesOptions) {}

  /** Each desired entry's fetch, by LivePatch; fetches of other entries are forgotten. */
  view(desired: readonly DesiredPatch[]): Map<string, FetchState> {
    const out = new Map<string, FetchState>();
    const wanted = new Set(desired.map((d) => d.livePatch as string));
    for (const livePatch of this.fetches.keys())
      if (!wanted.has(livePatch)) this.fetches.delete(livePatch);
    for (const entry of desired) {
      const f = this.fetches.get(entry.livePatch);
      if (f?.key === keyOf(entry)) out.set(entry.livePatch, f.state);
    }
    return out;
  }

  /** Starts the first attempt, or the next one after a wait; never two at once for one entry. */
  start(entry: DesiredPatch): void {
    const key = keyOf(entry);
    const current = this.fetches.get(entry.livePatch);
    const known = current?.key === key ? current.state : undefined;
    if (known && known.kind !== 'waiting') return;
    const attempt = known ? nextAttempt(known) : FIRST_ATTEMPT;
    this.fetches.set(entry.livePatch, { key, state: attempt });
    void this.o.fetch(entry.patchName, entry.module).then(
      (path) => {
        this.settle(entry, key, { kind: 'ready', path });
      },
      (err: unknown) => {
        const now = this.o.clock.now();
        this.settle(
          entry,
          key,
          afterFailure(attempt, asFailure(err), now, this.o.policy, entry.livePatch),
        );
      },
    );
  }

  /** How long until the earliest retry is due, if one waits. */
  nextRetryIn(now: number): number | undefined {
    const due = [...this.fetches.values()].flatMap((f) =>
      f.state.kind === 'waiting' ? [f.state.retryAt - now] : [],
    );
    return due.length ? Math.max(0, Math.min(...due)) : undefined;
  }

  private settle(entry: DesiredPatch, key: string, state: FetchState): void {
    // The entry changed (or went) while this attempt ran: its outcome is for nobody.
    if (this.fetches.get(entry.livePatch)?.key !== key) return;
    this.fetches.set(entry.livePatch, { key, state });
    this.o.onSettled(entry, state);
  }
}
