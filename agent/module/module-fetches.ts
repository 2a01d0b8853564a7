// One agent's module fetches, run beside its kernel loop rather than in it: a
// download may take minutes (module-policy.ts's timeouts), and meanwhile the
// loop must keep reading the kernel, guarding stalls and reporting. A failure
// that a later attempt may fix is retried on fetch-retry.ts's schedule.
import type { DesiredPatch } from '../../src/api/generated/types.js';
import type { Clock } from '../../src/clock.js';
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

/** One attempt's record: an attempt settles only while its record is still the current one. */
interface Fetch {
  readonly key: string;
  readonly state: FetchState;
}

export class ModuleFetches {
  private readonly fetches = new Map<string, Fetch>();
  private readonly stopping = new AbortController();
  /** Attempts under way, so that stop() can wait for each to remove its partial file. */
  private readonly running = new Set<Promise<void>>();

  constructor(private readonly o: ModuleFetchesOptions) {}

  /**
   * Each desired Enabled entry's fetch, by LivePatch. Any other fetch is
   * forgotten: an entry disabled (rollback, abort) or changed fetches nothing
   * more, so its retry must neither wake the loop nor be announced.
   */
  view(desired: readonly DesiredPatch[]): Map<string, FetchState> {
    const wanted = new Map<string, string>(
      desired.filter((d) => d.state === 'Enabled').map((d) => [d.livePatch, keyOf(d)]),
    );
    for (const [livePatch, f] of this.fetches)
      if (wanted.get(livePatch) !== f.key) this.fetches.delete(livePatch);
    return new Map([...this.fetches].map(([livePatch, f]) => [livePatch, f.state]));
  }

  /** Starts the first attempt, or the next one after a wait; never two at once for one entry. */
  start(entry: DesiredPatch): void {
    const key = keyOf(entry);
    const current = this.fetches.get(entry.livePatch);
    const known = current?.key === key ? current.state : undefined;
    if (this.stopping.signal.aborted || (known && known.kind !== 'waiting')) return;
    const attempt = known ? nextAttempt(known) : FIRST_ATTEMPT;
    const record: Fetch = { key, state: attempt };
    this.fetches.set(entry.livePatch, record);
    const run = this.o.fetch(entry.patchName, entry.module, this.stopping.signal).then(
      (path) => {
        this.settle(entry, record, { kind: 'ready', path });
      },
      (err: unknown) => {
        const now = this.o.clock.now();
        this.settle(
          entry,
          record,
          afterFailure(attempt, asFailure(err), now, this.o.policy, entry.livePatch),
        );
      },
    );
    this.running.add(run);
    void run.finally(() => this.running.delete(run));
  }

  /**
   * Abandons the attempts under way and waits until each has removed its
   * partial file: a download must not hold a stopping agent (its socket, its
   * deadline timer) past the pod's grace period, whose SIGKILL skips cleanup.
   */
  async stop(): Promise<void> {
    this.stopping.abort();
    await Promise.allSettled(this.running);
  }

  /** How long until the earliest retry is due, if one waits (of the entries view() last kept). */
  nextRetryIn(now: number): number | undefined {
    const due = [...this.fetches.values()].flatMap((f) =>
      f.state.kind === 'waiting' ? [f.state.retryAt - now] : [],
    );
    return due.length ? Math.max(0, Math.min(...due)) : undefined;
  }

  private settle(entry: DesiredPatch, record: Fetch, state: FetchState): void {
    // The agent stopped, or the entry changed, was disabled or went while this attempt ran: its
    // outcome is for nobody, even if the same entry came back since and started an attempt of its own.
    if (this.stopping.signal.aborted || this.fetches.get(entry.livePatch) !== record) return;
    this.fetches.set(entry.livePatch, { key: record.key, state });
    this.o.onSettled(entry, state);
  }
}
