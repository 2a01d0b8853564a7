// One pass of the agent, the pure part: what rests after a failure, what is
// announced, what the node reports and when it looks again. Injected time, a
// kernel described as data.
import { describe, expect, test } from '@jest/globals';
import type { ActionFailure } from '../../../agent/pass/actions.js';
import {
  BUSY_GIVE_UP_MS,
  FAILURE_REST_MS,
  REFUSAL_REST_MS,
} from '../../../agent/pass/cooldowns.js';
import { kernelProfile } from '../../../agent/kernel/profile.js';
import type { KernelPatch } from '../../../agent/kernel/types.js';
import type { FetchState } from '../../../agent/module/fetch-retry.js';
import type { KernelView, NodeAction, NodeDecision } from '../../../agent/pass/node-machine.js';
import {
  afterAction,
  beginPass,
  busyExplained,
  decide,
  EMPTY_MEMORY,
  endPass,
  nodeStatus,
  readyCondition,
  withTaintAtLoad,
  type PassMemory,
  type PassTimings,
} from '../../../agent/pass/pass.js';
import type { DesiredPatch, ObservedPatch } from '../../../src/api/generated/types.js';
import { kernelRelease, type LivePatchName, type PatchName } from '../../../src/api/names.js';
import { desiredPatch } from '../../support/desired-patch.js';

const T0 = Date.UTC(2026, 10, 25, 12, 0, 0);
const at = (s: number): number => T0 + s * 1000;
const iso = (s: number): string => new Date(at(s)).toISOString();
const P = 'livepatch_a' as PatchName;
const LP = 'cve-a' as LivePatchName;
const RELEASE = kernelRelease('6.1.0-50-amd64');
const TIMINGS: PassTimings = { pollMs: 1000, heartbeatMs: 30_000, failureRestMs: FAILURE_REST_MS };

const entry = desiredPatch;

const kernel = (patches: Partial<KernelPatch>[] = []): KernelView => {
  const list = patches.map((p) => ({ name: P, enabled: true, transition: false, ...p }));
  return {
    profile: kernelProfile(RELEASE),
    patches: list,
    loaded: new Set(list.map((p) => p.name as PatchName)),
  };
};

const observed = (o: Partial<ObservedPatch>): ObservedPatch => ({
  livePatch: LP,
  patchName: P,
  phase: 'Pending',
  observedGeneration: 1,
  ...o,
});

const load: NodeAction = { kind: 'load', livePatch: LP, patchName: P, path: '/m.ko' };
const busy: ActionFailure = {
  message:
    'waiting: load livepatch_a answered EBUSY (another livepatch is in transition, or ftrace refuses the handler); trying again',
  retryable: true,
  busy: {
    answer:
      'load livepatch_a answered EBUSY (another livepatch is in transition, or ftrace refuses the handler)',
  },
  reason: 'KernelBusy',
};
const transient: ActionFailure = {
  message: 'load livepatch_a: the module file vanished',
  retryable: true,
  reason: 'AgentError',
};
const refused: ActionFailure = {
  message: 'module is not signed',
  retryable: false,
  reason: 'ModuleRefused',
};

const loading = (): NodeDecision => ({
  patches: [observed({ phase: 'Loading' })],
  unmanaged: [],
  action: load,
});

const memoryWith = (previous: ObservedPatch[]): PassMemory => ({ ...EMPTY_MEMORY, previous });

describe('a busy kernel (EBUSY) is waited out, in flight, within a bound', () => {
  const busyAt = (memory: PassMemory, s: number, failure: ActionFailure | undefined = busy) =>
    afterAction(memory, loading(), {
      action: load,
      failure,
      now: at(s),
      failureRestMs: FAILURE_REST_MS,
    });

  test("the node stays Loading (not Failed, no failure of the rollout) with the kernel's answer, rests 10 s, then loads again", () => {
    const { memory, announcements } = busyAt(EMPTY_MEMORY, 0);
    expect(memory.previous[0]).toMatchObject({ phase: 'Loading', message: busy.message });
    expect(announcements).toEqual([]);
    const absent = kernel();
    const resting = decide(
      [entry()],
      absent,
      beginPass(memory, at(9)),
      { fetches: new Map() },
      at(9),
    );
    expect(resting.action).toBeUndefined();
    expect(resting.patches[0]).toMatchObject({ phase: 'Loading', message: busy.message });
    const ready = new Map<string, FetchState>([[LP, { kind: 'ready', path: '/m.ko' }]]);
    expect(
      decide([entry()], absent, beginPass(memory, at(10)), { fetches: ready }, at(10)).action,
    ).toEqual(load);
  });

  test('EBUSY that no transition explains for 2 minutes fails the patch, quoting the kernel and saying what to do', () => {
    let memory = EMPTY_MEMORY;
    for (let s = 0; s < BUSY_GIVE_UP_MS / 1000; s += 10) {
      memory = busyAt(memory, s).memory;
      expect(memory.previous[0]?.phase).toBe('Loading');
    }
    const answer =
      "load livepatch_a answered EBUSY (kernel: livepatch: failed to register ftrace handler for function 'cmdline_proc_show' (-16))";
    const ftrace: ActionFailure = {
      ...busy,
      busy: { answer },
      message: `waiting: ${answer}; trying again`,
    };
    const { memory: failed, announcements } = busyAt(memory, BUSY_GIVE_UP_MS / 1000, ftrace);
    expect(failed.previous[0]?.phase).toBe('Failed');
    expect(failed.previous[0]?.message).toBe(
      "load livepatch_a answered EBUSY (kernel: livepatch: failed to register ftrace handler for function 'cmdline_proc_show' (-16)) " +
        "for 120s while no other livepatch was in transition, so the agent stopped trying: ftrace refuses the patch's handler. " +
        'Check that sysctl kernel.ftrace_enabled is 1 and that no other tool (a kprobe, a BPF trampoline, another patching tool) ' +
        'modifies the patched functions, then change the LivePatch to try again',
    );
    expect(announcements).toMatchObject([{ reason: 'KernelBusy', once: true }]);
    // A refusal: it stays Failed for this generation.
    const later = beginPass(failed, at(BUSY_GIVE_UP_MS / 1000 + REFUSAL_REST_MS / 1000));
    expect(later.previous[0]?.phase).toBe('Failed');
  });

  test('a transition the kernel shows explains the EBUSY: the 2 minutes start again after it', () => {
    let memory = busyAt(EMPTY_MEMORY, 0).memory;
    memory = busyExplained(memory, kernel([{ name: 'vendor_lp', transition: true }]));
    memory = busyAt(memory, BUSY_GIVE_UP_MS / 1000).memory;
    expect(memory.previous[0]?.phase).toBe('Loading');
    // Without a transition in view nothing is explained.
    expect(busyExplained(memory, kernel())).toBe(memory);
  });

  test('a load that succeeds ends the wait', () => {
    const waited = busyAt(EMPTY_MEMORY, 0).memory;
    expect(waited.busySince.size).toBe(1);
    const loaded = afterAction(waited, loading(), {
      action: load,
      failure: undefined,
      now: at(10),
      failureRestMs: FAILURE_REST_MS,
    });
    expect(loaded.memory.busySince.size).toBe(0);
  });
});

describe('a patch whose action failed rests, then is tried again', () => {
  test('a failure a later try may fix: Failed with its message, no action for 10 s, then tried afresh', () => {
    const failed = afterAction(EMPTY_MEMORY, loading(), {
      action: load,
      failure: transient,
      now: at(0),
      failureRestMs: FAILURE_REST_MS,
    }).memory;
    expect(failed.previous[0]).toMatchObject({ phase: 'Failed', message: transient.message });

    const absent = kernel();
    const resting = decide(
      [entry()],
      absent,
      beginPass(failed, at(9)),
      { fetches: new Map() },
      at(9),
    );
    expect(resting.action).toBeUndefined();
    expect(resting.patches[0]).toMatchObject({ phase: 'Failed', message: transient.message });

    const rested = beginPass(failed, at(10));
    expect(rested.previous).toEqual([]);
    expect(decide([entry()], absent, rested, { fetches: new Map() }, at(10)).action).toMatchObject({
      kind: 'fetch',
    });
  });

  test('a refusal stays Failed after its rest: only a new generation would differ', () => {
    const failed = afterAction(EMPTY_MEMORY, loading(), {
      action: load,
      failure: refused,
      now: at(0),
      failureRestMs: FAILURE_REST_MS,
    }).memory;
    const later = beginPass(failed, at(REFUSAL_REST_MS / 1000));
    expect(later.cooldowns.size).toBe(0);
    expect(later.previous[0]).toMatchObject({ phase: 'Failed', message: refused.message });
  });

  test('a failed unload keeps the phase (a Stalled node stays Stalled) and says why', () => {
    const unload: NodeAction = { kind: 'unload', livePatch: LP, patchName: P };
    const decision: NodeDecision = {
      patches: [observed({ phase: 'Stalled', message: 'transition stalled' })],
      unmanaged: [],
      action: unload,
    };
    const { memory } = afterAction(EMPTY_MEMORY, decision, {
      action: unload,
      failure: refused,
      now: at(0),
      failureRestMs: FAILURE_REST_MS,
    });
    expect(memory.previous[0]?.phase).toBe('Stalled');
    expect(memory.previous[0]?.message).toContain('unloading failed: module is not signed');
    // Retryable whatever the kernel said: a module still in use may be free later.
    expect(beginPass(memory, at(10)).cooldowns.size).toBe(0);
  });
});

describe('what a node announces', () => {
  const act = (failure: ActionFailure | undefined, action: NodeAction = load) =>
    afterAction(
      EMPTY_MEMORY,
      { ...loading(), action },
      {
        action,
        failure,
        now: at(0),
        failureRestMs: FAILURE_REST_MS,
      },
    ).announcements;

  test('a refused module, once per distinct message', () => {
    expect(act(refused)).toEqual([
      { livePatch: LP, reason: 'ModuleRefused', message: refused.message, once: true },
    ]);
  });

  test('nothing for a failure a retry may fix, nor for an action that worked', () => {
    expect(act(busy)).toEqual([]);
    expect(act(undefined)).toEqual([]);
  });

  test('a stall this node reversed, every time it does', () => {
    const reverse: NodeAction = {
      kind: 'setEnabled',
      livePatch: LP,
      patchName: P,
      enabled: false,
      why: 'stalled',
    };
    const decision: NodeDecision = {
      patches: [observed({ phase: 'Stalled', message: 'stalled 60s on qemu-kvm' })],
      unmanaged: [],
      action: reverse,
    };
    const { announcements } = afterAction(EMPTY_MEMORY, decision, {
      action: reverse,
      failure: undefined,
      now: at(0),
      failureRestMs: FAILURE_REST_MS,
    });
    expect(announcements).toEqual([
      { livePatch: LP, reason: 'NodeStalled', message: 'stalled 60s on qemu-kvm', once: false },
    ]);
  });
});

describe('how a pass ends', () => {
  const end = (o: {
    memory?: PassMemory;
    view?: KernelView;
    decision: NodeDecision;
    desired?: DesiredPatch[];
    now?: number;
    fetchRetryIn?: number;
  }) =>
    endPass({
      desired: o.desired ?? [entry()],
      before: o.memory ?? EMPTY_MEMORY,
      memory: o.memory ?? EMPTY_MEMORY,
      view: o.view ?? kernel(),
      decision: o.decision,
      tainted: 0,
      now: o.now ?? at(0),
      fetchRetryIn: o.fetchRetryIn,
      timings: TIMINGS,
    });

  test('an idle node sleeps until its heartbeat', () => {
    const patched = observed({ phase: 'Patched', patchedTime: iso(-100), taintAfterBake: 0 });
    const r = end({
      memory: memoryWith([patched]),
      view: kernel([{}]),
      decision: { patches: [patched], unmanaged: [] },
    });
    expect(r.wakeInMs).toBe(30_000);
  });

  test('a transition under way: looked at again just after the kernel’s next retry tick', () => {
    const running = observed({
      phase: 'Transitioning',
      transition: true,
      transitionStartTime: iso(0),
    });
    const r = end({
      view: kernel([{ transition: true }]),
      decision: { patches: [running], unmanaged: [] },
      now: at(0.5),
    });
    expect(r.wakeInMs).toBe(520);
  });

  test('a resting patch wakes the node when its rest ends, a waiting fetch when it is retried', () => {
    const failed = afterAction(EMPTY_MEMORY, loading(), {
      action: load,
      failure: busy,
      now: at(0),
      failureRestMs: FAILURE_REST_MS,
    }).memory;
    const quiet: NodeDecision = { patches: failed.previous.slice(), unmanaged: [] };
    expect(end({ memory: failed, decision: quiet, now: at(4) }).wakeInMs).toBe(6_000);
    expect(end({ decision: { patches: [], unmanaged: [] }, fetchRetryIn: 2_500 }).wakeInMs).toBe(
      2_500,
    );
  });

  test('a bake reaches its end on time: the node looks again when it is over, and stamps the taint then', () => {
    const desired = [entry({ bakeTime: '5m' })];
    const patched = observed({ phase: 'Patched', patchedTime: iso(0), taintBeforeLoad: 0 });
    const memory = memoryWith([patched]);
    const decision: NodeDecision = { patches: [patched], unmanaged: [] };
    const baking = end({ memory, desired, view: kernel([{}]), decision, now: at(60) });
    expect(baking.wakeInMs).toBe(30_000);
    expect(baking.memory.previous[0]?.taintAfterBake).toBeUndefined();
    const almost = end({ memory, desired, view: kernel([{}]), decision, now: at(290) });
    expect(almost.wakeInMs).toBe(10_000);
    const over = end({ memory, desired, view: kernel([{}]), decision, now: at(300) });
    expect(over.memory.previous[0]?.taintAfterBake).toBe(0);
  });

  test('the taint before a load is kept on the entry for the bake’s verdict', () => {
    const memory = withTaintAtLoad(EMPTY_MEMORY, LP, 1 << 12);
    const r = end({
      memory,
      decision: { patches: [observed({ phase: 'Transitioning' })], unmanaged: [] },
    });
    expect(r.memory.previous[0]?.taintBeforeLoad).toBe(1 << 12);
  });
});

describe('the status a node reports', () => {
  const status = (
    view: KernelView,
    previous: ObservedPatch[],
    refusal?: { reason: string; message: string },
  ) =>
    nodeStatus({
      previous,
      unmanaged: undefined,
      view,
      tainted: 1 << 15,
      release: RELEASE,
      backend: 'simulator',
      version: '0.1.0',
      ready: readyCondition(
        { profile: kernelProfile(RELEASE), ...(refusal ? { refusal } : {}) },
        { version: '0.1.0', backend: 'simulator', now: at(0) },
      ),
    });

  test('counts what is patched, names the patch in transition, and is Ready', () => {
    const s = status(kernel([{ transition: true }]), [
      observed({ phase: 'Patched' }),
      observed({ livePatch: 'cve-b' as LivePatchName, phase: 'Transitioning' }),
    ]);
    expect(s).toMatchObject({
      patchedCount: 1,
      transitioning: P,
      kernelTainted: 1 << 15,
      unmanaged: [],
    });
    expect(s.conditions?.[0]).toMatchObject({
      type: 'Ready',
      status: 'True',
      reason: 'AgentRunning',
    });
  });

  test('a kernel that cannot take livepatches: not Ready, and says why', () => {
    const s = status(kernel(), [], {
      reason: 'NoLivepatchSupport',
      message: 'no /sys/kernel/livepatch',
    });
    expect(s.transitioning).toBeUndefined();
    expect(s.conditions?.[0]).toMatchObject({
      status: 'False',
      reason: 'NoLivepatchSupport',
      message: 'no /sys/kernel/livepatch',
    });
  });
});
