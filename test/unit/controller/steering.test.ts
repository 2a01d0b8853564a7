// What the controller does with `kubectl livepatch abort` and `retry`: an abort
// annotation naming the current generation rolls every node back (reason
// Aborted); a new generation after RolledBack or Failed is a fresh attempt.
// Pure: the fleet is plain data, time is injected.
import { describe, expect, test } from '@jest/globals';
import { STEERING_ANNOTATIONS } from '../../../src/api/constants.js';
import type { LivePatch } from '../../../src/api/generated/types.js';
import { abortAnnotation, abortValue, type AbortAnnotation } from '../../../src/api/steering.js';
import {
  at,
  edit,
  Fleet,
  livePatch,
  LP,
  reconcile,
  simulate,
  T0,
  withMetadata,
  type Pass,
} from './fixtures.js';

const annotated = (lp: LivePatch, annotations: Record<string, string>): LivePatch =>
  withMetadata(lp, { annotations: { ...lp.metadata.annotations, ...annotations } });

/** What `kubectl livepatch abort` writes: the current attempt, and who asked. */
const aborted = (lp: LivePatch, by = 'alice'): LivePatch =>
  annotated(lp, {
    [STEERING_ANNOTATIONS.abort]: abortValue(lp),
    [STEERING_ANNOTATIONS.requestedBy]: by,
  });

const reasons = (passes: readonly Pass[]): string[] =>
  passes.flatMap((p) => p.events.map((e) => e.reason));

/** A rollout of `count` nodes, two at a time, run until `patched` nodes are patched and two more are in flight. */
function midRollout(count: number, patched: number): { lp: LivePatch; fleet: Fleet; now: number } {
  const fleet = Fleet.of(count, T0);
  let lp = livePatch({ spec: { rollout: { maxUnavailable: 2 } } });
  let now = T0;
  for (;;) {
    lp = reconcile(lp, fleet, now).lp;
    now += 1000;
    if ((lp.status?.nodes?.patched ?? 0) >= patched) break;
    fleet.settle(now);
  }
  return { lp: reconcile(lp, fleet, now).lp, fleet, now: now + 1000 };
}

describe('the abort annotation', () => {
  const abort = STEERING_ANNOTATIONS.abort;
  test.each<[string, Record<string, string> | undefined, AbortAnnotation]>([
    ['absent', undefined, { kind: 'none' }],
    ['the current attempt', { [abort]: 'attempt-2' }, { kind: 'current', names: 'attempt 2' }],
    [
      'the current attempt, with who asked',
      { [abort]: 'attempt-2', [STEERING_ANNOTATIONS.requestedBy]: 'alice' },
      { kind: 'current', names: 'attempt 2', by: 'alice' },
    ],
    [
      'an earlier attempt',
      { [abort]: 'attempt-1' },
      { kind: 'stale', names: 'attempt 1', current: 'attempt 2' },
    ],
    [
      'the current generation, as older plugins wrote',
      { [abort]: '3' },
      { kind: 'current', names: 'generation 3' },
    ],
    [
      'an older generation',
      { [abort]: '2' },
      { kind: 'stale', names: 'generation 2', current: 'generation 3' },
    ],
    ['neither', { [abort]: 'true' }, { kind: 'invalid', value: 'true' }],
    ['generation zero', { [abort]: '0' }, { kind: 'invalid', value: '0' }],
    ['attempt 01', { [abort]: 'attempt-01' }, { kind: 'invalid', value: 'attempt-01' }],
  ])('%s', (_what, annotations, expected) => {
    const lp = withMetadata(
      livePatch({ generation: 3, spec: { rollout: { attempt: 2 } } }),
      annotations ? { annotations } : {},
    );
    expect(abortAnnotation(lp)).toEqual(expected);
  });

  test('an unset spec.rollout.attempt is attempt 0', () => {
    const lp = withMetadata(livePatch(), { annotations: { [abort]: 'attempt-0' } });
    expect(abortAnnotation(lp)).toEqual({ kind: 'current', names: 'attempt 0' });
  });
});

describe('abort', () => {
  test('mid-rollout: every node that has the patch unpatches, in-flight ones first, and the rollout ends RolledBack, reason Aborted', () => {
    const { lp, fleet, now } = midRollout(8, 2);
    const inFlight = fleet.pending();
    expect(inFlight).toHaveLength(2);
    const sim = simulate(aborted(lp), fleet, { now });

    const first = sim.passes[0];
    expect(first?.plan).toMatchObject({ phase: 'RollingBack', reason: 'Aborted' });
    expect([...(first?.plan.started ?? [])].sort()).toEqual([...inFlight].sort());
    expect(sim.lp.status?.phase).toBe('RolledBack');
    const holders = fleet.nodes.map((n) => n.name).filter((n) => fleet.desired(n));
    expect(holders).toHaveLength(4);
    for (const n of holders) {
      expect(fleet.desired(n)?.state).toBe('Disabled');
      expect(fleet.observed(n)?.phase).toBe('Unpatched');
    }
    expect(sim.lp.status?.nodes).toMatchObject({ patched: 0, reverted: 4, transitioning: 0 });
    expect(sim.maxInFlight).toBeLessThanOrEqual(2);
    expect(sim.lp.status?.conditions).toEqual(
      expect.arrayContaining([
        expect.objectContaining({
          type: 'Degraded',
          status: 'True',
          reason: 'Aborted',
          message: `generation 1 aborted by alice (livepatch.io/abort): every node of the patch was reversed. To roll out again: kubectl livepatch retry ${LP}`,
        }),
        expect.objectContaining({ type: 'Progressing', status: 'False', reason: 'Aborted' }),
      ]),
    );
    expect(reasons(sim.passes)).toEqual(['Aborted', 'RollbackFinished']);
    expect(first?.events[0]?.message).toBe(
      'generation 1 aborted by alice: unpatching: 4 node(s) to go',
    );
  });

  test('a controller that takes over mid-abort goes on from the object alone, without a second Aborted Event', () => {
    const { lp, fleet, now } = midRollout(6, 2);
    const started = reconcile(aborted(lp), fleet, now);
    expect(started.events.map((e) => e.reason)).toEqual(['Aborted']);
    // The next replica: nothing in memory, only the LivePatch (with the status just written) and the nodes.
    const next = reconcile(started.lp, fleet, now + 1000);
    expect(next.plan).toMatchObject({ phase: 'RollingBack', reason: 'Aborted' });
    expect(next.events).toEqual([]);
    const rest = simulate(next.lp, fleet, { now: now + 2000 });
    expect(rest.lp.status?.phase).toBe('RolledBack');
    expect(reasons(rest.passes)).toEqual(['RollbackFinished']);
  });

  test('a rollout that started no node yet ends RolledBack at once, with the Aborted Event', () => {
    const lp = livePatch({ spec: { rollout: { paused: true } } });
    const fleet = Fleet.of(3, T0);
    const paused = reconcile(lp, fleet, T0);
    expect(paused.plan.phase).toBe('Paused');
    const pass = reconcile(aborted(paused.lp), fleet, at(1));
    expect(pass.plan).toMatchObject({ phase: 'RolledBack', reason: 'Aborted', writes: new Map() });
    expect(pass.events.map((e) => e.reason)).toEqual(['Aborted', 'RollbackFinished']);
  });

  test('a Complete rollout aborted (an explicit choice in the plugin) unpatches every node', () => {
    const fleet = Fleet.of(4, T0);
    const complete = simulate(livePatch({ spec: { rollout: { maxUnavailable: 2 } } }), fleet);
    expect(complete.lp.status?.phase).toBe('Complete');
    const sim = simulate(aborted(complete.lp), fleet, { now: complete.now });
    expect(sim.lp.status).toMatchObject({
      phase: 'RolledBack',
      nodes: expect.objectContaining({ patched: 0, reverted: 4 }),
    });
  });

  test('pause and resume (new generations) keep it aborted: no node is patched again, no second Aborted Event', () => {
    const { lp, fleet, now } = midRollout(6, 2);
    const back = simulate(aborted(lp), fleet, { now });
    expect(back.lp.status?.phase).toBe('RolledBack');
    const paused = simulate(edit(back.lp, { rollout: { paused: true } }), fleet, { now: back.now });
    const resumed = simulate(edit(paused.lp, { rollout: { paused: false } }), fleet, {
      now: paused.now,
    });
    for (const sim of [paused, resumed]) {
      expect(sim.lp.status).toMatchObject({
        phase: 'RolledBack',
        nodes: expect.objectContaining({ patched: 0, transitioning: 0 }),
      });
      expect(sim.passes.every((p) => p.plan.reason === 'Aborted')).toBe(true);
      expect(reasons(sim.passes)).not.toContain('Aborted');
    }
    expect(resumed.lp.status?.observedGeneration).toBe(3);
  });

  test('an edit while rolling back goes on rolling back', () => {
    const { lp, fleet, now } = midRollout(4, 1);
    const edited = edit(aborted(lp), { stall: { timeout: '5m' } });
    const sim = simulate(edited, fleet, { now });
    expect(sim.lp.status?.phase).toBe('RolledBack');
    expect(reasons(sim.passes)).toContain('Aborted');
  });

  test('an abort naming an earlier attempt does nothing: the retry since then rolls on', () => {
    const { lp, fleet, now } = midRollout(4, 1);
    const retried = edit(aborted(lp), { rollout: { attempt: 1 } });
    const sim = simulate(retried, fleet, { now });
    expect(sim.lp.status?.phase).toBe('Complete');
    expect(reasons(sim.passes)).not.toContain('Aborted');
  });

  test('an abort naming a generation, as older plugins wrote, holds for that generation only', () => {
    const { lp, fleet, now } = midRollout(4, 1);
    const legacy = annotated(lp, { [STEERING_ANNOTATIONS.abort]: '1' });
    expect(reconcile(legacy, fleet, now).plan.reason).toBe('Aborted');
    const sim = simulate(edit(legacy, { stall: { timeout: '5m' } }), fleet, { now });
    expect(sim.lp.status?.phase).toBe('Complete');
  });

  test('an abort annotation that names no generation is ignored', () => {
    const { lp, fleet, now } = midRollout(4, 1);
    const sim = simulate(annotated(lp, { [STEERING_ANNOTATIONS.abort]: 'yes' }), fleet, { now });
    expect(sim.lp.status?.phase).toBe('Complete');
  });

  test('spec.state Disabled wins over an abort: the patch is disabling, not aborted', () => {
    const { lp, fleet, now } = midRollout(4, 1);
    const pass = reconcile(aborted(edit(lp, { state: 'Disabled' })), fleet, now);
    expect(pass.plan).toMatchObject({ phase: 'Disabling', reason: 'Disabling' });
  });
});

describe('retry', () => {
  test('after an abort, a new attempt is a fresh rollout to Complete, announced once with who asked', () => {
    const { lp, fleet, now } = midRollout(6, 2);
    const back = simulate(aborted(lp), fleet, { now });
    expect(back.lp.status?.phase).toBe('RolledBack');
    // The annotation left in place: the new attempt alone ends the abort.
    const retried = annotated(edit(back.lp, { rollout: { attempt: 1 } }), {
      [STEERING_ANNOTATIONS.requestedBy]: 'bob',
    });
    const sim = simulate(retried, fleet, { now: back.now });

    const first = sim.passes[0];
    expect(first?.plan).toMatchObject({
      phase: 'Progressing',
      reason: 'NodesStarted',
      retry: { after: 'RolledBack', attempt: 1, by: 'bob' },
    });
    expect(first?.events[0]).toEqual({
      type: 'Normal',
      reason: 'RetryStarted',
      message: 'generation 2 is a fresh rollout after RolledBack (attempt 1, requested by bob)',
    });
    expect(reasons(sim.passes).filter((r) => r === 'RetryStarted')).toHaveLength(1);
    expect(sim.lp.status).toMatchObject({
      phase: 'Complete',
      summary: '6/6',
      observedGeneration: 2,
    });
    const degraded = sim.lp.status?.conditions?.find((c) => c.type === 'Degraded');
    expect(degraded).toMatchObject({ status: 'False', reason: 'Healthy', observedGeneration: 2 });
  });

  test('after a halt, a new attempt retries the stalled node and goes on', () => {
    const fleet = Fleet.of(4, T0);
    const lp = livePatch({ spec: { rollout: { maxUnavailable: 2 }, stall: { action: 'Halt' } } });
    const first = reconcile(lp, fleet, T0);
    for (const n of first.plan.started.slice(0, 1)) fleet.stallOn.add(n);
    const halted = simulate(first.lp, fleet, { now: at(1) });
    expect(halted.lp.status?.phase).toBe('Failed');
    const sim = simulate(edit(halted.lp, { rollout: { attempt: 1 } }), fleet, { now: halted.now });
    expect(sim.passes[0]?.plan.retry).toEqual({ after: 'Failed', attempt: 1 });
    expect(sim.lp.status).toMatchObject({ phase: 'Complete', summary: '4/4' });
  });

  test('an edit to a rollout in progress is no retry', () => {
    const { lp, fleet, now } = midRollout(4, 1);
    const pass = reconcile(edit(lp, { stall: { timeout: '5m' } }), fleet, now);
    expect(pass.plan.retry).toBeUndefined();
    expect(pass.events.map((e) => e.reason)).not.toContain('RetryStarted');
  });
});
