// The retry schedule of a module fetch that may work later: how long a node
// waits, Loading, before each attempt, and when it gives up and fails.
import { describe, expect, test } from '@jest/globals';
import {
  afterFailure,
  DEFAULT_RETRY_POLICY,
  FIRST_ATTEMPT,
  nextAttempt,
  retryDelayMs,
  type FetchState,
} from '../../../agent/module/fetch-retry.js';

const T0 = Date.UTC(2026, 10, 25, 12, 0, 0);
const at = (s: number): number => T0 + s * 1000;
const outage = {
  message: 'cannot download http://mirror/a.ko: the server answers HTTP 503 Service Unavailable',
  retryable: true,
  reason: 'ModuleUnavailable',
};

describe('the retry schedule', () => {
  test('waits double after each failed attempt, capped at a minute', () => {
    const waits = [1, 2, 3, 4, 5, 6, 7, 8, 9].map(
      (n) => retryDelayMs(n, DEFAULT_RETRY_POLICY) / 1000,
    );
    expect(waits).toEqual([1, 2, 4, 8, 16, 32, 60, 60, 60]);
  });

  test('a mirror down for a few seconds: the node waits, then the next attempt is numbered and remembers the cause', () => {
    const first = afterFailure(FIRST_ATTEMPT, outage, at(0), DEFAULT_RETRY_POLICY, 'cve-a');
    expect(first).toEqual({
      kind: 'waiting',
      attempt: 1,
      firstFailure: at(0),
      retryAt: at(1),
      giveUpAt: at(300),
      cause: outage.message,
      reason: 'ModuleUnavailable',
    });
    if (first.kind !== 'waiting') throw new Error('not waiting');
    expect(nextAttempt(first)).toEqual({
      kind: 'fetching',
      attempt: 2,
      firstFailure: at(0),
      lastCause: outage.message,
    });
  });

  test('a mirror down for good: the node fails once the next attempt would start past 5 minutes, saying what to do', () => {
    let attempt = FIRST_ATTEMPT;
    let now = at(0);
    const attempts: number[] = [];
    let state: FetchState;
    for (;;) {
      attempts.push((now - at(0)) / 1000);
      state = afterFailure(attempt, outage, now, DEFAULT_RETRY_POLICY, 'cve-a');
      if (state.kind !== 'waiting') break;
      now = state.retryAt;
      attempt = nextAttempt(state);
    }
    expect(attempts).toEqual([0, 1, 3, 7, 15, 31, 63, 123, 183, 243]);
    expect(state.kind).toBe('failed');
    if (state.kind !== 'failed') return;
    expect(state.message).toBe(
      `${outage.message}: still failing after 10 attempts over 4m3s, so the agent stopped trying; ` +
        'nothing was loaded. Make the module reachable from the node (the mirror, its address, the network), ' +
        'then kubectl livepatch retry cve-a (or edit the LivePatch)',
    );
  });

  test('a failure no retry fixes (404, checksum): failed at once, in its own words', () => {
    const missing = {
      message: 'the server answers HTTP 404 Not Found',
      retryable: false,
      reason: 'ModuleUnavailable',
    };
    expect(afterFailure(FIRST_ATTEMPT, missing, at(0), DEFAULT_RETRY_POLICY, 'cve-a')).toEqual({
      kind: 'failed',
      message: missing.message,
      reason: 'ModuleUnavailable',
    });
  });
});
