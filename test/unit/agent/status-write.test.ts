// When the agent writes its node's status: a phase change at once, progress
// once it has held and not more than every 10 s, a heartbeat when nothing changed.
import { describe, expect, test } from '@jest/globals';
import {
  agentStatusWrite,
  PROGRESS_SETTLE_MS,
  PROGRESS_WRITE_MS,
  type StatusWriteInputs,
} from '../../../agent/report/status-write.js';

const HEARTBEAT = 30_000;
const written = { json: '{"pending":3}', key: 'Transitioning', at: 0 };

const due = (o: Partial<StatusWriteInputs>): ReturnType<typeof agentStatusWrite> =>
  agentStatusWrite({
    written,
    json: written.json,
    key: written.key,
    differsSince: undefined,
    heartbeatMs: HEARTBEAT,
    now: 1_000,
    ...o,
  });

describe('when the agent writes its status', () => {
  test('the first status is written at once', () => {
    expect(due({ written: undefined }).write).toEqual({ kind: 'now' });
  });

  test('a phase change is written at once, however recent the last write', () => {
    expect(due({ key: 'Patched', json: '{"patched":1}', now: 10 }).write).toEqual({ kind: 'now' });
  });

  test('nothing new: nothing until the heartbeat, then the same status again', () => {
    expect(due({ now: HEARTBEAT - 1 }).write).toEqual({ kind: 'none' });
    expect(due({ now: HEARTBEAT }).write).toEqual({ kind: 'now' });
  });

  test('progress alone waits for 10 s after the last write, and says when to look again', () => {
    const first = due({ json: '{"pending":2}', now: 2_000 });
    expect(first).toEqual({
      write: { kind: 'later', inMs: PROGRESS_WRITE_MS - 2_000 },
      differsSince: 2_000,
    });
    const then = due({ json: '{"pending":1}', differsSince: 2_000, now: PROGRESS_WRITE_MS });
    expect(then.write).toEqual({ kind: 'now' });
  });

  test('progress that has not held for a second is not written yet: a Loading that turns at once costs no write', () => {
    const fresh = due({ json: '{"loading":1}', now: PROGRESS_WRITE_MS + 5_000 });
    expect(fresh.write).toEqual({ kind: 'later', inMs: PROGRESS_SETTLE_MS });
    const held = due({
      json: '{"loading":1}',
      differsSince: fresh.differsSince,
      now: PROGRESS_WRITE_MS + 5_000 + PROGRESS_SETTLE_MS,
    });
    expect(held.write).toEqual({ kind: 'now' });
  });

  test('a status that went back to what was written no longer counts as differing', () => {
    expect(due({ differsSince: 500 }).differsSince).toBeUndefined();
  });
});
