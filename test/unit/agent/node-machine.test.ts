// The agent's decisions with injected time and a kernel described as data.
import { describe, expect, test } from '@jest/globals';
import { decideNode, type KernelView } from '../../../agent/pass/node-machine.js';
import type { FetchState } from '../../../agent/module/fetch-retry.js';
import { kernelProfile } from '../../../agent/kernel/profile.js';
import type { KernelPatch } from '../../../agent/kernel/types.js';
import type { DesiredPatch, ObservedPatch } from '../../../src/api/generated/types.js';
import { kernelRelease, type LivePatchName, type PatchName } from '../../../src/api/names.js';
import { desiredPatch } from '../../support/desired-patch.js';

const T0 = Date.UTC(2026, 10, 25, 12, 0, 0);
const at = (s: number): number => T0 + s * 1000;
const iso = (s: number): string => new Date(at(s)).toISOString();
const P = 'livepatch_a' as PatchName;
const LP = 'cve-a' as LivePatchName;

const entry = desiredPatch;

/** A kernel described as data; 6.1 by default (no replace or stack_order files, 5.18+ force rules). */
function kernel(
  patches: Partial<KernelPatch>[] = [],
  o: { loaded?: string[]; pending?: number; release?: string } = {},
): KernelView {
  const list = patches.map((p) => ({ name: P, enabled: true, transition: false, ...p }));
  const inFlight = list.find((p) => p.transition);
  const blocking = [{ pid: 812, comm: 'qemu-kvm' }];
  return {
    profile: kernelProfile(kernelRelease(o.release ?? '6.1.0-50-amd64')),
    patches: list,
    loaded: new Set((o.loaded ?? list.map((p) => p.name)) as PatchName[]),
    ...(inFlight
      ? { tasks: { name: inFlight.name as PatchName, pending: o.pending ?? 1, blocking } }
      : {}),
  };
}

function prev(o: Partial<ObservedPatch>): ObservedPatch[] {
  return [{ livePatch: LP, patchName: P, phase: 'Pending', observedGeneration: 1, ...o }];
}

describe('what the agent refuses on its own, whatever the schema let through', () => {
  test.each(['../../etc/evil', 'lp/x', 'a-dash', 'x'.repeat(56)])(
    'patchName %s: Failed, no kernel action, and the other entries still served',
    (bad) => {
      const other = entry({
        livePatch: 'cve-b' as LivePatchName,
        patchName: 'livepatch_b' as PatchName,
      });
      const d = decideNode(
        [entry({ patchName: bad as PatchName }), other],
        kernel([], { loaded: [] }),
        [],
        at(0),
      );
      expect(d.patches[0]).toMatchObject({ phase: 'Failed' });
      expect(d.patches[0]?.message).toContain('is not a module name');
      expect(d.action).toMatchObject({ kind: 'fetch', patchName: 'livepatch_b' });
    },
  );
});

describe('enabling a patch on a node', () => {
  test('an idle kernel without the patch: fetch its module', () => {
    const d = decideNode([entry()], kernel([], { loaded: [] }), [], at(0));
    expect(d.action).toMatchObject({ kind: 'fetch', patchName: P });
    expect(d.patches[0]?.phase).toBe('Loading');
  });

  const fetching = (state: FetchState): Map<string, FetchState> => new Map([[LP, state]]);
  const absent = (): KernelView => kernel([], { loaded: [] });

  test('the module fetched: load that file', () => {
    const d = decideNode([entry()], absent(), [], at(0), {
      fetches: fetching({ kind: 'ready', path: '/m/a.ko' }),
    });
    expect(d.action).toMatchObject({ kind: 'load', patchName: P, path: '/m/a.ko' });
    expect(d.patches[0]).toMatchObject({ phase: 'Loading', message: 'loading the module' });
  });

  test('a fetch under way: Loading, and nothing more to do until it ends', () => {
    const d = decideNode([entry()], absent(), [], at(0), {
      fetches: fetching({ kind: 'fetching', attempt: 1 }),
    });
    expect(d.action).toBeUndefined();
    expect(d.patches[0]).toMatchObject({ phase: 'Loading', message: 'fetching the module' });
  });

  const waiting: FetchState = {
    kind: 'waiting',
    attempt: 2,
    firstFailure: at(0),
    retryAt: at(3),
    giveUpAt: at(300),
    cause: 'cannot download http://mirror/a.ko: the server answers HTTP 503 Service Unavailable',
    reason: 'ModuleUnavailable',
  };

  test('a mirror that may answer later: the node stays Loading (in flight, not Failed), saying why, which attempt, and when the next', () => {
    const d = decideNode([entry()], absent(), prev({ phase: 'Loading' }), at(1), {
      fetches: fetching(waiting),
    });
    expect(d.action).toBeUndefined();
    expect(d.patches[0]?.phase).toBe('Loading');
    expect(d.patches[0]?.message).toBe(
      'cannot download http://mirror/a.ko: the server answers HTTP 503 Service Unavailable; ' +
        `attempt 2 failed, retrying at ${iso(3)} (the node fails if the module cannot be had by ${iso(300)})`,
    );
  });

  test('its retry due: fetch again, still Loading', () => {
    const d = decideNode([entry()], absent(), prev({ phase: 'Loading' }), at(3), {
      fetches: fetching(waiting),
    });
    expect(d.action).toMatchObject({ kind: 'fetch', patchName: P });
    expect(d.patches[0]?.phase).toBe('Loading');
  });

  test('a fetch that failed for good: Failed with its words, and no action', () => {
    const failed: FetchState = {
      kind: 'failed',
      message: 'checksum mismatch: …',
      reason: 'ModuleUnavailable',
    };
    const d = decideNode([entry()], absent(), prev({ phase: 'Loading' }), at(0), {
      fetches: fetching(failed),
    });
    expect(d.action).toBeUndefined();
    expect(d.patches[0]).toMatchObject({ phase: 'Failed', message: 'checksum mismatch: …' });
  });

  test('another patch in transition: wait, do not ask the kernel for a second one (EBUSY)', () => {
    const other = { name: 'kpatch_other' as PatchName, transition: true };
    const d = decideNode([entry()], kernel([other], { loaded: [] }), [], at(0));
    expect(d.action).toBeUndefined();
    expect(d.patches[0]).toMatchObject({
      phase: 'Pending',
      message:
        "waiting for kpatch_other's transition to finish (loaded outside livepatch-operator): the kernel runs one transition at a time",
    });
    expect(d.unmanaged).toEqual([{ patchName: 'kpatch_other', enabled: true, transition: true }]);
  });

  test('in transition within the stall timeout: Transitioning with the tasks still on the old code', () => {
    const d = decideNode(
      [entry()],
      kernel([{ transition: true }], { pending: 3 }),
      prev({ phase: 'Loading' }),
      at(5),
    );
    expect(d.action).toBeUndefined();
    expect(d.patches[0]).toMatchObject({
      phase: 'Transitioning',
      pendingTasks: 3,
      blockingTasks: [{ pid: 812, comm: 'qemu-kvm' }],
      transitionStartTime: iso(5),
    });
    expect(d.patches[0]?.message).toContain('3 tasks still on the old code (qemu-kvm[812])');
  });

  test('the transition start time is kept across reads and agent restarts', () => {
    const before = prev({
      phase: 'Transitioning',
      enabled: true,
      transition: true,
      transitionStartTime: iso(0),
    });
    const d = decideNode([entry()], kernel([{ transition: true }]), before, at(30));
    expect(d.patches[0]?.transitionStartTime).toBe(iso(0));
  });

  test('past the stall timeout: Stalled, and the node reverses it by writing enabled=0', () => {
    const before = prev({
      phase: 'Transitioning',
      enabled: true,
      transition: true,
      transitionStartTime: iso(0),
    });
    const d = decideNode([entry()], kernel([{ transition: true }]), before, at(61));
    expect(d.action).toMatchObject({ kind: 'setEnabled', enabled: false, why: 'stalled' });
    expect(d.patches[0]?.phase).toBe('Stalled');
    expect(d.patches[0]?.message).toContain('did not finish within 60s (blocked by qemu-kvm[812])');
  });

  test('while the reversal runs: Reversing, keeping the tasks that caused the stall', () => {
    const stalled = prev({
      phase: 'Stalled',
      enabled: true,
      transition: true,
      transitionStartTime: iso(0),
      blockingTasks: [{ pid: 812, comm: 'qemu-kvm' }],
    });
    const d = decideNode(
      [entry()],
      kernel([{ enabled: false, transition: true }], { pending: 20 }),
      stalled,
      at(62),
    );
    expect(d.action).toBeUndefined();
    expect(d.patches[0]).toMatchObject({
      phase: 'Reversing',
      blockingTasks: [{ pid: 812, comm: 'qemu-kvm' }],
    });
    expect(d.patches[0]?.transitionStartTime).toBe(iso(62));
  });

  test('a reversal that stalls too is forced only when allowForce is set', () => {
    const reversing = prev({
      phase: 'Reversing',
      enabled: false,
      transition: true,
      transitionStartTime: iso(0),
    });
    const view = kernel([{ enabled: false, transition: true }]);
    const refused = decideNode([entry()], view, reversing, at(61));
    expect(refused.action).toBeUndefined();
    expect(refused.patches[0]?.message).toContain('spec.stall.allowForce');
    const forced = decideNode([entry({ allowForce: true })], view, reversing, at(61));
    expect(forced.action).toMatchObject({ kind: 'force' });
    // Forcing the reversal of an enable is forcing a disable: the kernel keeps the module forever.
    expect(forced.patches[0]).toMatchObject({ forced: true, pinned: true });
    expect(forced.patches[0]?.message).toContain('the module can never be unloaded afterwards');
  });

  test('forcing the reversal of a stalled disable (an enable) leaves the module removable on 5.18+, not before', () => {
    const reversing = prev({
      phase: 'Reversing',
      enabled: true,
      transition: true,
      transitionStartTime: iso(0),
    });
    const disabled = entry({ state: 'Disabled', allowForce: true });
    const onNew = kernel([{ enabled: true, transition: true }]);
    const d = decideNode([disabled], onNew, reversing, at(61));
    expect(d.action).toMatchObject({ kind: 'force' });
    expect(d.patches[0]?.pinned).toBeUndefined();
    const onOld = kernel([{ enabled: true, transition: true }], { release: '5.15.0-105-generic' });
    expect(decideNode([disabled], onOld, reversing, at(61)).patches[0]?.pinned).toBe(true);
  });

  test('before 5.18 a force pins every loaded patch, not only the forced one', () => {
    const Q = 'livepatch_b' as PatchName;
    const other: DesiredPatch = entry({ livePatch: 'cve-b' as LivePatchName, patchName: Q });
    const previous = [
      ...prev({
        phase: 'Reversing',
        enabled: false,
        transition: true,
        transitionStartTime: iso(0),
      }),
      {
        livePatch: other.livePatch,
        patchName: Q,
        phase: 'Patched' as const,
        observedGeneration: 1,
      },
    ];
    const view = kernel([{ enabled: false, transition: true }, { name: Q }], {
      release: '5.15.0-105-generic',
    });
    const d = decideNode([entry({ allowForce: true }), other], view, previous, at(61));
    expect(d.action).toMatchObject({ kind: 'force', patchName: P });
    expect(d.patches.map((p) => p.pinned)).toEqual([true, true]);
  });

  test('a force pins only the patches the kernel marks: those with a sysfs directory, not a loaded module without one', () => {
    const Q = 'livepatch_b' as PatchName;
    const other: DesiredPatch = entry({ livePatch: 'cve-b' as LivePatchName, patchName: Q });
    const previous = [
      ...prev({
        phase: 'Reversing',
        enabled: false,
        transition: true,
        transitionStartTime: iso(0),
      }),
      {
        livePatch: other.livePatch,
        patchName: Q,
        phase: 'Unpatching' as const,
        observedGeneration: 1,
      },
    ];
    // livepatch_b was disabled: its module is still loaded, its directory is gone.
    const view = kernel([{ enabled: false, transition: true }], {
      release: '5.15.0-105-generic',
      loaded: [P, Q],
    });
    const d = decideNode(
      [entry({ allowForce: true }), { ...other, state: 'Disabled' }],
      view,
      previous,
      at(61),
    );
    expect(d.action).toMatchObject({ kind: 'force', patchName: P });
    expect(d.patches.map((p) => p.pinned)).toEqual([true, undefined]);
  });

  test('once reversed: unload the module and stay Stalled for this generation, never reloading it', () => {
    const reversing = prev({ phase: 'Reversing', blockingTasks: [{ pid: 812, comm: 'qemu-kvm' }] });
    const unload = decideNode([entry()], kernel([], { loaded: [P] }), reversing, at(70));
    expect(unload.action).toMatchObject({ kind: 'unload' });
    expect(unload.patches[0]?.phase).toBe('Stalled');
    const after = decideNode([entry()], kernel([], { loaded: [] }), unload.patches, at(71));
    expect(after.action).toBeUndefined();
    expect(after.patches[0]?.message).toContain('reversed on the node and unloaded');
  });

  test('a new generation after a stall tries again', () => {
    const stalled = prev({ phase: 'Stalled' });
    const d = decideNode([entry({ generation: 2 })], kernel([], { loaded: [] }), stalled, at(0));
    expect(d.action).toMatchObject({ kind: 'fetch' });
  });

  test('a failure stays for its generation; a new one retries', () => {
    const failed = prev({ phase: 'Failed', message: 'checksum mismatch' });
    expect(decideNode([entry()], kernel([], { loaded: [] }), failed, at(0)).action).toBeUndefined();
    expect(
      decideNode([entry({ generation: 2 })], kernel([], { loaded: [] }), failed, at(0)).action,
    ).toMatchObject({ kind: 'fetch' });
  });

  test('enabled and settled: Patched', () => {
    const d = decideNode([entry()], kernel([{}]), prev({ phase: 'Transitioning' }), at(0));
    expect(d.patches[0]).toMatchObject({ phase: 'Patched', enabled: true, transition: false });
    expect(d.action).toBeUndefined();
  });

  test('a patched patch whose directory vanished was replaced by an atomic-replace patch', () => {
    const newer = { name: 'livepatch_cumulative' as PatchName, replace: true };
    const d = decideNode(
      [entry()],
      kernel([newer], { loaded: [P] }),
      prev({ phase: 'Patched' }),
      at(0),
    );
    expect(d.patches[0]).toMatchObject({
      phase: 'Replaced',
      message: 'replaced by the atomic-replace patch livepatch_cumulative',
    });
    expect(d.action).toBeUndefined();
  });

  test('after a reboot the kernel has nothing: a patched node loads the patch again, it was not replaced', () => {
    const d = decideNode([entry()], kernel([], { loaded: [] }), prev({ phase: 'Patched' }), at(0));
    expect(d.action).toMatchObject({ kind: 'fetch' });
  });

  test('after a reboot the status says so from the load through the transition to Patched again', () => {
    const ready = new Map<string, FetchState>([[LP, { kind: 'ready', path: '/m/a.ko' }]]);
    const empty = kernel([], { loaded: [] });
    const loading = decideNode([entry()], empty, prev({ phase: 'Patched' }), at(0), {
      fetches: ready,
    });
    expect(loading.action).toMatchObject({ kind: 'load' });
    expect(loading.patches[0]?.phase).toBe('Loading');
    expect(loading.patches[0]?.message).toMatch(
      /^the node rebooted without the patch: loading it again/,
    );
    const moving = decideNode([entry()], kernel([{ transition: true }]), loading.patches, at(1));
    expect(moving.patches[0]).toMatchObject({ phase: 'Transitioning' });
    expect(moving.patches[0]?.message).toMatch(/^the node rebooted without the patch: /);
    const patched = decideNode([entry()], kernel([{}]), moving.patches, at(2));
    expect(patched.patches[0]).toMatchObject({
      phase: 'Patched',
      message: 'the node rebooted without the patch: re-patched; enabled, transition complete',
    });
    const first = decideNode([entry()], kernel([{}]), prev({ phase: 'Loading' }), at(0));
    expect(first.patches[0]?.message).toBe('enabled; transition complete');
  });

  test('a rebooted node whose entry was given to its earlier boot waits for a new slot, then loads', () => {
    const empty = kernel([], { loaded: [] });
    const earlier = entry({ bootID: 'boot-1' });
    const waiting = decideNode([earlier], empty, prev({ phase: 'Patched' }), at(0), {
      bootID: 'boot-2',
    });
    expect(waiting.action).toBeUndefined();
    expect(waiting.patches[0]).toMatchObject({
      phase: 'Pending',
      message:
        'the node rebooted without the patch: waiting for the controller to give it a rollout slot (maxUnavailable)',
    });
    const given = decideNode([entry({ bootID: 'boot-2' })], empty, waiting.patches, at(1), {
      bootID: 'boot-2',
    });
    expect(given.action).toMatchObject({ kind: 'fetch' });
    expect(given.patches[0]?.message).toMatch(
      /^the node rebooted without the patch: loading it again/,
    );
    const sameBoot = decideNode([earlier], empty, [], at(0), { bootID: 'boot-1' });
    expect(sameBoot.action).toMatchObject({ kind: 'fetch' });
  });

  test('a replaced patch that is then disabled is unloaded', () => {
    const newer = { name: 'livepatch_cumulative' as PatchName, replace: true };
    const d = decideNode(
      [entry({ state: 'Disabled' })],
      kernel([newer], { loaded: [P] }),
      prev({ phase: 'Replaced' }),
      at(0),
    );
    expect(d.action).toMatchObject({ kind: 'unload', patchName: P });
  });

  test('a pinned module is never unloaded after its stall was reversed, and the status says why', () => {
    const reversing = prev({ phase: 'Reversing', forced: true, pinned: true });
    const d = decideNode([entry()], kernel([], { loaded: [P] }), reversing, at(70));
    expect(d.action).toBeUndefined();
    expect(d.patches[0]).toMatchObject({ phase: 'Stalled', pinned: true });
    expect(d.patches[0]?.message).toContain('the kernel holds the module forever');
  });

  test('a pinned module of a disabled patch is Unpatched without an unload that can never succeed', () => {
    const pinned = prev({ phase: 'Stalled', forced: true, pinned: true });
    const d = decideNode(
      [entry({ state: 'Disabled', generation: 2 })],
      kernel([], { loaded: [P] }),
      pinned,
      at(0),
    );
    expect(d.action).toBeUndefined();
    expect(d.patches[0]).toMatchObject({ phase: 'Unpatched', pinned: true });
    expect(d.patches[0]?.message).toContain('cannot be unloaded until the node reboots');
  });

  test('a pinned module cannot be loaded again: Failed, saying to publish a new patchName or reboot', () => {
    const pinned = prev({ phase: 'Stalled', forced: true, pinned: true });
    const d = decideNode([entry({ generation: 2 })], kernel([], { loaded: [P] }), pinned, at(0));
    expect(d.action).toBeUndefined();
    expect(d.patches[0]?.phase).toBe('Failed');
    expect(d.patches[0]?.message).toContain('Publish the build under a new patchName, or reboot');
  });

  test('a reboot clears the pin with the module', () => {
    const pinned = prev({ phase: 'Stalled', forced: true, pinned: true });
    const d = decideNode([entry({ generation: 2 })], kernel([], { loaded: [] }), pinned, at(0));
    expect(d.action).toMatchObject({ kind: 'fetch' });
    expect(d.patches[0]?.pinned).toBeUndefined();
  });

  test('before 6.11 (no replace file): a patched patch whose directory vanished beside another enabled patch was replaced, and is never loaded again on top', () => {
    const newer = { name: 'livepatch_cumulative' as PatchName };
    const d = decideNode(
      [entry()],
      kernel([newer], { loaded: [P] }),
      prev({ phase: 'Patched' }),
      at(0),
    );
    expect(d.action).toBeUndefined();
    expect(d.patches[0]).toMatchObject({
      phase: 'Replaced',
      message: 'replaced by the atomic-replace patch livepatch_cumulative',
    });
    const later = decideNode([entry()], kernel([newer], { loaded: [P] }), d.patches, at(30));
    expect(later.action).toBeUndefined();
    expect(later.patches[0]?.phase).toBe('Replaced');
  });

  test('from 6.11 the replace file decides: a non-replace patch beside a vanished one did not replace it', () => {
    const other = { name: 'livepatch_other' as PatchName, replace: false };
    const d = decideNode(
      [entry()],
      kernel([other], { loaded: [P], release: '6.12.95+deb12-amd64' }),
      prev({ phase: 'Patched' }),
      at(0),
    );
    expect(d.action).toMatchObject({ kind: 'unload' });
  });

  test('an unmanaged patch with a name no LivePatch could use still blocks loads while in transition', () => {
    const other = { name: 'kpatch_CVE-2024-1', transition: true };
    const d = decideNode([entry()], kernel([other], { loaded: [] }), [], at(0));
    expect(d.action).toBeUndefined();
    expect(d.patches[0]?.message).toContain("waiting for kpatch_CVE-2024-1's transition to finish");
    expect(d.unmanaged).toEqual([
      { patchName: 'kpatch_CVE-2024-1', enabled: true, transition: true },
    ]);
  });

  test('a loaded module without its directory is unloaded before loading afresh (never EEXIST)', () => {
    const d = decideNode([entry()], kernel([], { loaded: [P] }), [], at(0));
    expect(d.action).toMatchObject({ kind: 'unload' });
  });
});

describe('disabling a patch on a node', () => {
  test('enabled and settled: write enabled=0', () => {
    const d = decideNode(
      [entry({ state: 'Disabled' })],
      kernel([{}]),
      prev({ phase: 'Patched' }),
      at(0),
    );
    expect(d.action).toMatchObject({ kind: 'setEnabled', enabled: false });
    expect(d.patches[0]?.phase).toBe('Unpatching');
  });

  test('disabled mid-enable: reverse the transition', () => {
    const d = decideNode(
      [entry({ state: 'Disabled' })],
      kernel([{ transition: true }]),
      prev({ phase: 'Transitioning' }),
      at(0),
    );
    expect(d.action).toMatchObject({ kind: 'setEnabled', enabled: false });
  });

  test('a disable that stalled and was reversed stays Stalled for its generation, never retried in a loop', () => {
    const reversing = prev({
      phase: 'Reversing',
      enabled: true,
      transition: true,
      blockingTasks: [{ pid: 812, comm: 'qemu-kvm' }],
    });
    const d = decideNode([entry({ state: 'Disabled' })], kernel([{}]), reversing, at(70));
    expect(d.action).toBeUndefined();
    expect(d.patches[0]).toMatchObject({
      phase: 'Stalled',
      blockingTasks: [{ pid: 812, comm: 'qemu-kvm' }],
    });
    expect(d.patches[0]?.message).toContain(
      'the disable was reversed on the node, the patch is still enabled',
    );
    const again = decideNode([entry({ state: 'Disabled' })], kernel([{}]), d.patches, at(80));
    expect(again.action).toBeUndefined();
  });

  test('directory gone, module loaded: unload; then Unpatched', () => {
    const unload = decideNode(
      [entry({ state: 'Disabled' })],
      kernel([], { loaded: [P] }),
      prev({ phase: 'Unpatching' }),
      at(0),
    );
    expect(unload.action).toMatchObject({ kind: 'unload' });
    const done = decideNode(
      [entry({ state: 'Disabled' })],
      kernel([], { loaded: [] }),
      unload.patches,
      at(1),
    );
    expect(done.patches[0]).toMatchObject({ phase: 'Unpatched' });
    expect(done.action).toBeUndefined();
  });
});

describe('several patches on one node', () => {
  test('reversing a stall comes before loading another patch', () => {
    const other = entry({
      livePatch: 'cve-b' as LivePatchName,
      patchName: 'livepatch_b' as PatchName,
    });
    const stalling = prev({
      phase: 'Transitioning',
      enabled: true,
      transition: true,
      transitionStartTime: iso(0),
    });
    const d = decideNode([other, entry()], kernel([{ transition: true }]), stalling, at(61));
    expect(d.action).toMatchObject({ kind: 'setEnabled', why: 'stalled', patchName: P });
    expect(d.patches[0]?.phase).toBe('Pending');
  });

  // As the agent's loop asks: a fetch starts in the background, so the next decision, in the
  // same pass, starts the other; both modules download at once, and both nodes report Loading.
  test('two new patches: one fetch started per decision, both running at once', () => {
    const b = entry({ livePatch: 'cve-b' as LivePatchName, patchName: 'livepatch_b' as PatchName });
    const none = kernel([], { loaded: [] });
    const first = decideNode([entry(), b], none, [], at(0));
    expect(first.action).toMatchObject({ kind: 'fetch', livePatch: LP });
    const fetching: FetchState = { kind: 'fetching', attempt: 1 };
    const second = decideNode([entry(), b], none, first.patches, at(0), {
      fetches: new Map([[LP, fetching]]),
    });
    expect(second.action).toMatchObject({ kind: 'fetch', livePatch: 'cve-b' });
    const both = decideNode([entry(), b], none, second.patches, at(0), {
      fetches: new Map([
        [LP, fetching],
        ['cve-b', fetching],
      ]),
    });
    expect(both.action).toBeUndefined();
    expect(both.patches.map((p) => p.phase)).toEqual(['Loading', 'Loading']);
  });
});
