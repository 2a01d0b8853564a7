// How long a watcher waits between attempts: doubling to a cap, spread by
// jitter, and back to the start after a quiet while.
import { describe, expect, test } from '@jest/globals';
import {
  NO_BACKOFF_YET,
  nextBackoff,
  retryAfterMs,
  WATCH_BACKOFF,
  type BackoffState,
} from '../../../src/kube/backoff.js';

/** The delays of `n` backoffs taken `gapMs` apart, with a fixed random draw. */
function delays(n: number, gapMs: number, random: number): number[] {
  let state: BackoffState = NO_BACKOFF_YET;
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const next = nextBackoff(WATCH_BACKOFF, state, i * gapMs, () => random);
    state = next.state;
    out.push(next.delayMs);
  }
  return out;
}

describe('backoff', () => {
  test('doubles from 800 ms and stops growing at 30 s', () => {
    expect(delays(8, 1000, 0)).toEqual([800, 1600, 3200, 6400, 12800, 25600, 30000, 30000]);
  });

  test('jitter adds up to the whole delay again, so agents cut off together come back apart', () => {
    expect(delays(3, 1000, 1)).toEqual([1600, 3200, 6400]);
    expect(delays(7, 1000, 0.5).at(-1)).toBe(45000);
  });

  test('starts again from 800 ms after two quiet minutes, not before', () => {
    let state: BackoffState = NO_BACKOFF_YET;
    for (const at of [0, 1000, 2000]) state = nextBackoff(WATCH_BACKOFF, state, at, () => 0).state;
    expect(nextBackoff(WATCH_BACKOFF, state, 2000 + 120_000, () => 0).delayMs).toBe(6400);
    expect(nextBackoff(WATCH_BACKOFF, state, 2000 + 120_001, () => 0).delayMs).toBe(800);
  });

  test('Retry-After reads seconds or an HTTP date', () => {
    const now = Date.parse('2026-01-01T00:00:00Z');
    expect(retryAfterMs('3', now)).toBe(3000);
    expect(retryAfterMs('Thu, 01 Jan 2026 00:00:05 GMT', now)).toBe(5000);
    expect(retryAfterMs('Thu, 01 Jan 2025 00:00:05 GMT', now)).toBe(0);
    expect(retryAfterMs(undefined, now)).toBeUndefined();
    expect(retryAfterMs('soon', now)).toBeUndefined();
  });
});
