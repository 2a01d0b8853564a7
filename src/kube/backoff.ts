// How long a watcher waits before it asks the API server again. Jittered, so
// that thousands of agents cut off by one API server restart do not come back
// in step; exponential, so a server that stays away is asked less and less;
// and forgotten after a quiet while, so one blip an hour later starts small
// (the reflector also forgets it once a watch is served again).
// Pure: the caller passes the clock and the random source.

export interface BackoffPolicy {
  readonly initialMs: number;
  /** The step stops growing here; jitter may add up to `jitter` times it on top. */
  readonly capMs: number;
  readonly factor: number;
  /** A delay of d becomes d + random() * jitter * d. */
  readonly jitter: number;
  /** No backoff for this long: the next one starts again from initialMs. */
  readonly resetAfterMs: number;
}

/** The values client-go's reflectors use. */
export const WATCH_BACKOFF: BackoffPolicy = {
  initialMs: 800,
  capMs: 30_000,
  factor: 2,
  jitter: 1,
  resetAfterMs: 120_000,
};

export interface BackoffState {
  /** The un-jittered delay the next backoff takes, unless it comes after a quiet period. */
  readonly stepMs: number;
  /** When the last backoff began (undefined: never). */
  readonly lastAt: number | undefined;
}

export const NO_BACKOFF_YET: BackoffState = { stepMs: 0, lastAt: undefined };

export function nextBackoff(
  policy: BackoffPolicy,
  state: BackoffState,
  now: number,
  random: () => number,
): { readonly delayMs: number; readonly state: BackoffState } {
  const quiet = state.lastAt === undefined || now - state.lastAt > policy.resetAfterMs;
  const stepMs = quiet ? policy.initialMs : state.stepMs;
  return {
    delayMs: stepMs + random() * policy.jitter * stepMs,
    state: { stepMs: Math.min(policy.capMs, stepMs * policy.factor), lastAt: now },
  };
}

/**
 * A Retry-After header in milliseconds from `now`: delta-seconds or an HTTP
 * date. Undefined when absent or unreadable.
 */
export function retryAfterMs(header: string | undefined, now: number): number | undefined {
  if (header === undefined || header.trim() === '') return undefined;
  const text = header.trim();
  if (/^\d+$/.test(text)) return Number(text) * 1000;
  const at = Date.parse(text);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}
