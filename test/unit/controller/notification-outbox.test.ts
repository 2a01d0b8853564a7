// status.notifications as an outbox: recorded before it is sent, tried again
// with backoff, given up after a bound, each decision once.
import { describe, expect, test } from '@jest/globals';
import type { NotificationOutbox } from '../../../src/api/generated/types.js';
import type { DecisionNotice } from '../../../src/controller/notification-decisions.js';
import {
  DEFAULT_RETRY,
  dueNotifications,
  MAX_DONE,
  MAX_PENDING,
  nextDueInMs,
  nextOutbox,
  retryDelayMs,
  tryKey,
  type DeliveryOutcome,
} from '../../../src/controller/notification-outbox.js';
import { T0 } from './fixtures.js';

const notice = (id: string): DecisionNotice => ({
  id,
  decision: 'Complete',
  message: 'rollout complete: 3/3 nodes patched',
  generation: 1,
  attempt: 0,
  phase: 'Complete',
  time: new Date(T0).toISOString(),
});

const NONE = new Map<string, DeliveryOutcome>();
const policy = { ...DEFAULT_RETRY, maxAttempts: 3 };

/** The outbox after each failed try of one notification, until it is given up. */
function failRepeatedly(times: number, outcome: DeliveryOutcome): ReturnType<typeof nextOutbox>[] {
  let outbox = nextOutbox(undefined, [notice('a')], NONE, T0, policy).outbox;
  const passes = [];
  for (let i = 0; i < times; i++) {
    const [p] = outbox?.pending ?? [];
    if (!p) break;
    const pass = nextOutbox(outbox, [], new Map([[tryKey(p), outcome]]), T0 + i * 1000, policy);
    passes.push(pass);
    outbox = pass.outbox;
  }
  return passes;
}

describe('the retry schedule', () => {
  test('2 s doubling, capped at a minute', () => {
    expect([1, 2, 3, 4, 5, 6, 7].map((n) => retryDelayMs(DEFAULT_RETRY, n))).toEqual([
      2000, 4000, 8000, 16_000, 32_000, 60_000, 60_000,
    ]);
  });
});

describe('a decision', () => {
  test('is recorded pending, due at once, before any try', () => {
    const { outbox } = nextOutbox(undefined, [notice('a')], NONE, T0, policy);
    expect(outbox).toEqual({ pending: [{ ...notice('a'), tries: 0 }], done: [] });
    expect(dueNotifications(outbox, T0).map((p) => p.id)).toEqual(['a']);
    expect(nextDueInMs(outbox, T0)).toBeUndefined();
  });

  test('delivered: done, and the same decision derived again is not recorded again', () => {
    const first = nextOutbox(undefined, [notice('a')], NONE, T0, policy).outbox;
    const [p] = first?.pending ?? [];
    if (!p) throw new Error('nothing pending');
    const pass = nextOutbox(first, [], new Map([[tryKey(p), { kind: 'delivered' }]]), T0, policy);
    expect(pass.delivered.map((d) => d.id)).toEqual(['a']);
    expect(pass.outbox).toEqual({ pending: [], done: ['a'] });
    expect(nextOutbox(pass.outbox, [notice('a')], NONE, T0, policy).outbox).toEqual({
      pending: [],
      done: ['a'],
    });
  });

  test('still pending: derived again, it is not recorded twice', () => {
    const first = nextOutbox(undefined, [notice('a')], NONE, T0, policy).outbox;
    expect(nextOutbox(first, [notice('a')], NONE, T0 + 1, policy).outbox).toEqual(first);
  });

  test('nothing ever recorded: no outbox at all', () => {
    expect(nextOutbox(undefined, [], NONE, T0, policy).outbox).toBeUndefined();
  });
});

describe('order', () => {
  test('one at a time, oldest first: the next is due once the one before it is done', () => {
    const both = nextOutbox(undefined, [notice('a'), notice('b')], NONE, T0, policy).outbox;
    expect(dueNotifications(both, T0).map((p) => p.id)).toEqual(['a']);
    const failedA = nextOutbox(
      both,
      [],
      new Map([['a#0', { kind: 'failed', error: 'x' }]]),
      T0,
      policy,
    );
    expect(dueNotifications(failedA.outbox, T0 + 1000)).toEqual([]);
    expect(nextDueInMs(failedA.outbox, T0 + 1000)).toBe(1000);
    const deliveredA = nextOutbox(
      failedA.outbox,
      [],
      new Map([['a#1', { kind: 'delivered' }]]),
      T0 + 2000,
      policy,
    );
    expect(dueNotifications(deliveredA.outbox, T0 + 2000).map((p) => p.id)).toEqual(['b']);
  });
});

describe('a receiver that fails', () => {
  test('is tried again after 2 s, then 4 s, and given up after the last try with why', () => {
    const failed: DeliveryOutcome = {
      kind: 'failed',
      error: 'HTTP 502 from https://hooks.example',
    };
    const passes = failRepeatedly(5, failed);
    expect(passes).toHaveLength(3);
    expect(passes[0]?.retrying).toEqual([
      expect.objectContaining({
        tries: 1,
        nextAttemptAt: new Date(T0 + 2000).toISOString(),
        lastError: 'HTTP 502 from https://hooks.example',
      }),
    ]);
    expect(nextDueInMs(passes[0]?.outbox, T0)).toBe(2000);
    expect(dueNotifications(passes[0]?.outbox, T0 + 1999)).toEqual([]);
    expect(dueNotifications(passes[0]?.outbox, T0 + 2000)).toHaveLength(1);
    expect(passes[1]?.retrying[0]?.nextAttemptAt).toBe(new Date(T0 + 1000 + 4000).toISOString());
    expect(passes[2]?.gaveUp).toEqual([
      {
        notice: expect.objectContaining({ id: 'a', tries: 3 }),
        why: 'after 3 tries: HTTP 502 from https://hooks.example',
      },
    ]);
    expect(passes[2]?.outbox).toEqual({ pending: [], done: ['a'] });
  });

  test("a receiver's Retry-After longer than the backoff is waited out", () => {
    const [pass] = failRepeatedly(1, { kind: 'failed', error: 'HTTP 429', retryAfterMs: 30_000 });
    expect(pass?.retrying[0]?.nextAttemptAt).toBe(new Date(T0 + 30_000).toISOString());
  });

  test("an outcome for another state of the entry (folded in already, or a replaced leader's) counts nothing", () => {
    const first = nextOutbox(undefined, [notice('a')], NONE, T0, policy).outbox;
    const stale = new Map<string, DeliveryOutcome>([
      ['a#1', { kind: 'failed', error: 'x' }],
      ['b#0', { kind: 'delivered' }],
    ]);
    expect(nextOutbox(first, [], stale, T0, policy).outbox).toEqual(first);
  });
});

describe('bounds', () => {
  test(`more than ${MAX_PENDING} waiting: the oldest are given up, said so`, () => {
    const many = Array.from({ length: MAX_PENDING + 2 }, (_, i) => notice(`n${i}`));
    const pass = nextOutbox(undefined, many, NONE, T0, policy);
    expect(pass.outbox?.pending).toHaveLength(MAX_PENDING);
    expect(pass.outbox?.pending?.[0]?.id).toBe('n2');
    expect(pass.gaveUp.map((g) => g.notice.id)).toEqual(['n0', 'n1']);
    expect(pass.gaveUp[0]?.why).toMatch(/^dropped undelivered: more than 16/);
    expect(pass.outbox?.done).toEqual(['n0', 'n1']);
  });

  test(`done keeps the newest ${MAX_DONE} ids`, () => {
    const previous: NotificationOutbox = {
      pending: [{ ...notice('last'), tries: 0 }],
      done: Array.from({ length: MAX_DONE }, (_, i) => `old${i}`),
    };
    const pass = nextOutbox(previous, [], new Map([['last#0', { kind: 'delivered' }]]), T0, policy);
    expect(pass.outbox?.done).toHaveLength(MAX_DONE);
    expect(pass.outbox?.done?.[0]).toBe('old1');
    expect(pass.outbox?.done?.at(-1)).toBe('last');
  });
});
