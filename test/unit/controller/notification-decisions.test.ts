// Which decisions of a rollout a webhook hears, each once: the rule from one
// status to the next, run over whole simulated rollouts.
import { describe, expect, test } from '@jest/globals';
import type { LivePatch } from '../../../src/api/generated/types.js';
import { STEERING_ANNOTATIONS } from '../../../src/api/constants.js';
import type { LivePatchStatus } from '../../../src/api/generated/types.js';
import {
  notificationDecisions,
  type DecisionNotice,
} from '../../../src/controller/notification-decisions.js';
import {
  edit,
  Fleet,
  livePatch,
  lpn,
  LP,
  node,
  nodeName,
  reconcile,
  simulate,
  T0,
  withMetadata,
  type Pass,
} from './fixtures.js';
import { completed, stallingFleet } from './plan-helpers.js';

const UID = '6f1c0d2e-0000-4000-8000-000000000001';

/** The notices each pass of a simulation derives, from the status before it to its own. */
function noticesOf(start: LivePatch, passes: readonly Pass[]): DecisionNotice[] {
  return passes.flatMap((p, i) =>
    notificationDecisions(p.lp, i ? passes[i - 1]?.status : start.status, p.status, p.plan, T0),
  );
}

const decisions = (notices: readonly DecisionNotice[]): string[] => notices.map((n) => n.decision);

const withUid = (lp: LivePatch): LivePatch => withMetadata(lp, { uid: UID });

describe('a rollout that goes through', () => {
  test('is announced once when it starts and once when it completes', () => {
    const start = withUid(livePatch({ spec: { rollout: { maxUnavailable: 2 } } }));
    const sim = simulate(start, Fleet.of(5, T0));
    const notices = noticesOf(start, sim.passes);
    expect(decisions(notices)).toEqual(['Started', 'Complete']);
    expect(notices[0]).toMatchObject({
      id: `${UID}/1/Started`,
      generation: 1,
      attempt: 0,
      phase: 'Progressing',
      time: new Date(T0).toISOString(),
    });
    expect(notices[0]?.message).toMatch(
      /^rollout started: 5 node\(s\) targeted, at most 2 at a time; first: node-0\d, node-0\d$/,
    );
    expect(notices[1]).toMatchObject({
      id: `${UID}/1/Complete`,
      message: 'rollout complete: 5/5 nodes patched',
    });
  });

  test('a node joining a Complete rollout starts nothing new, and its Complete has the same id (the outbox has it done)', () => {
    const { fleet, lp, now } = completed(3);
    const start = withUid(lp);
    expect(noticesOf(start, [reconcile(start, fleet, now)])).toEqual([]);
    fleet.nodes = [...fleet.nodes, node(nodeName(9))];
    fleet.lpns.set(nodeName(9), lpn(nodeName(9), { heartbeat: now }));
    const sim = simulate(start, fleet, { now });
    expect(sim.lp.status?.summary).toBe('4/4');
    const again = noticesOf(start, sim.passes);
    expect(decisions(again)).toEqual(['Complete']);
    expect(again[0]?.id).toBe(`${UID}/1/Complete`);
  });

  test('a rollout held part way by its window goes on without a new start; one held before any node starts, starts', () => {
    const fleet = Fleet.of(3, T0);
    const pass = reconcile(withUid(livePatch()), fleet, T0);
    const going = { ...pass.status, phase: 'Progressing' as const, observedGeneration: 1 };
    const waited = (patched: number): LivePatchStatus => ({
      phase: 'Waiting',
      observedGeneration: 1,
      nodes: { targeted: 3, patched },
    });
    expect(notificationDecisions(pass.lp, waited(2), going, pass.plan, T0)).toEqual([]);
    expect(decisions(notificationDecisions(pass.lp, waited(0), going, pass.plan, T0))).toEqual([
      'Started',
    ]);
  });

  test('a pause step is announced once, with its step in the id; the resume is no new start', () => {
    const start = withUid(
      livePatch({
        spec: { rollout: { maxUnavailable: 1, steps: [{ nodes: 1 }, { pause: {} }] } },
      }),
    );
    const fleet = Fleet.of(3, T0);
    const held = simulate(start, fleet, { maxPasses: 8 });
    expect(held.lp.status?.phase).toBe('Paused');
    const before = noticesOf(start, held.passes);
    expect(decisions(before)).toEqual(['Started', 'Paused']);
    expect(before[1]).toMatchObject({
      id: `${UID}/1/Paused/step-2`,
      message: `paused at step 2 until spec.rollout.paused is changed, or until kubectl livepatch promote ${LP}`,
    });
    // Flipping spec.rollout.paused twice releases an empty pause (each flip a generation).
    const flipped = simulate(edit(held.lp, { rollout: { paused: true } }), fleet, {
      now: held.now,
      maxPasses: 2,
    });
    const resumed = edit(flipped.lp, { rollout: { paused: false } });
    const rest = simulate(resumed, fleet, { now: flipped.now });
    expect(rest.lp.status?.phase).toBe('Complete');
    const after = noticesOf(held.lp, [...flipped.passes, ...rest.passes]);
    expect(decisions(after)).toEqual(['Complete']);
    expect(after[0]?.id).toBe(`${UID}/3/Complete`);
  });

  test('spec.rollout.paused, a person holding the rollout, is not announced', () => {
    const start = withUid(livePatch({ spec: { rollout: { paused: true } } }));
    const sim = simulate(start, Fleet.of(2, T0), { maxPasses: 3 });
    expect(sim.lp.status?.phase).toBe('Paused');
    expect(noticesOf(start, sim.passes)).toEqual([]);
  });
});

describe('a rollout that stalls', () => {
  test('Rollback: stalled, rolling back, rolled back, each once, the stall naming node and task', () => {
    const { fleet, stalled } = stallingFleet(4, 1);
    const start = withUid(livePatch({ spec: { rollout: { maxUnavailable: 2 } } }));
    const sim = simulate(start, fleet);
    expect(sim.lp.status?.phase).toBe('RolledBack');
    const notices = noticesOf(start, sim.passes);
    expect(decisions(notices)).toEqual(['Started', 'Stalled', 'RollingBack', 'RolledBack']);
    const stall = notices[1];
    expect(stall?.id).toBe(`${UID}/1/Stalled/${stalled[0] ?? ''}`);
    expect(stall?.message).toBe(
      `1 node(s) stalled, their agents reversed the transition: ${stalled[0] ?? ''} (blocked by qemu-kvm[812]); stall.action Rollback: every node of the patch is being reversed`,
    );
    expect(notices[2]?.message).toMatch(
      /^rolling back: stall\.action Rollback fired \(unpatching: /,
    );
    expect(notices[3]?.message).toMatch(
      /^rolled back: every node has unpatched \(\d reverted, 1 stalled\)$/,
    );
    expect(new Set(notices.map((n) => n.id)).size).toBe(notices.length);
  });

  test('Halt: stalled, then failed with the reason', () => {
    const { fleet } = stallingFleet(4, 0);
    const start = withUid(
      livePatch({ spec: { rollout: { maxUnavailable: 1 }, stall: { action: 'Halt' } } }),
    );
    const notices = noticesOf(start, simulate(start, fleet).passes);
    expect(decisions(notices)).toEqual(['Started', 'Stalled', 'Failed']);
    expect(notices[1]?.message).toMatch(/stall\.action Halt: no new node starts$/);
    expect(notices[2]?.message).toMatch(/^failed \(Halted\): 1 node\(s\) stalled or failed/);
  });

  test('within the failure budget: the stall is announced and the rollout goes on to Complete', () => {
    const { fleet } = stallingFleet(4, 1);
    const start = withUid(livePatch({ spec: { failureBudget: 1 } }));
    const notices = noticesOf(start, simulate(start, fleet).passes);
    expect(decisions(notices)).toEqual(['Started', 'Stalled', 'Complete']);
    expect(notices[1]?.message).toMatch(/within the failure budget, the rollout goes on$/);
  });

  test('an abort says who asked; the retry after it is a new start with its attempt', () => {
    const fleet = Fleet.of(3, T0);
    const start = withUid(livePatch());
    const first = simulate(start, fleet, { maxPasses: 2 });
    const aborted = withMetadata(first.lp, {
      annotations: {
        [STEERING_ANNOTATIONS.abort]: 'attempt-0',
        [STEERING_ANNOTATIONS.requestedBy]: 'alice',
      },
    });
    const back = simulate(aborted, fleet, { now: first.now });
    expect(back.lp.status?.phase).toBe('RolledBack');
    const notices = noticesOf(first.lp, back.passes);
    expect(decisions(notices)).toEqual(['RollingBack', 'RolledBack']);
    expect(notices[0]?.message).toMatch(/^rolling back: aborted by alice: unpatching/);
    const retried = edit(withMetadata(back.lp, { annotations: {} }), { rollout: { attempt: 1 } });
    const again = simulate(retried, fleet, { now: back.now });
    const more = noticesOf(back.lp, again.passes);
    expect(decisions(more)).toEqual(['Started', 'Complete']);
    expect(more[0]).toMatchObject({ id: `${UID}/2/Started`, attempt: 1, generation: 2 });
  });
});
