// A series of cumulative atomic-replace builds (spec.series): the agent never
// loads a member older than a newer one asked for on its node, whatever order
// the entries come in or the kernel loads them after a reboot, and falls back
// to the older build only when the controller starts it again.
import { describe, expect, test } from '@jest/globals';
import { decideNode, type KernelView } from '../../../agent/pass/node-machine.js';
import { kernelProfile } from '../../../agent/kernel/profile.js';
import type { KernelPatch } from '../../../agent/kernel/types.js';
import type { DesiredPatch, ObservedPatch } from '../../../src/api/generated/types.js';
import { kernelRelease, type LivePatchName, type PatchName } from '../../../src/api/names.js';

const NOW = Date.UTC(2026, 10, 25, 12, 0, 0);
const OLD = { lp: 'fix-v1' as LivePatchName, patch: 'lpt_cmdline' as PatchName };
const NEW = { lp: 'fix-v2' as LivePatchName, patch: 'lpt_cmdline_v2' as PatchName };

function member(who: typeof OLD, sequence: number, o: Partial<DesiredPatch> = {}): DesiredPatch {
  return {
    livePatch: who.lp,
    patchName: who.patch,
    state: 'Enabled',
    module: { hostPath: `/${who.patch}.ko`, sha256: 'a'.repeat(64) },
    generation: 1,
    stallTimeout: '60s',
    allowForce: false,
    series: { name: 'cmdline', sequence },
    ...o,
  };
}

const report = (
  who: typeof OLD,
  phase: ObservedPatch['phase'],
  o: Partial<ObservedPatch> = {},
): ObservedPatch => ({
  livePatch: who.lp,
  patchName: who.patch,
  phase,
  observedGeneration: 1,
  ...o,
});

function kernel(
  patches: Partial<KernelPatch>[],
  loaded: string[] = patches.map((p) => p.name ?? ''),
  release = '6.12.48+deb13-amd64',
): KernelView {
  return {
    profile: kernelProfile(kernelRelease(release)),
    patches: patches.map((p) => ({ name: OLD.patch, enabled: true, transition: false, ...p })),
    loaded: new Set(loaded as PatchName[]),
  };
}

const ready = (
  ...who: (typeof OLD)[]
): { fetches: Map<string, { kind: 'ready'; path: string }> } => ({
  fetches: new Map(
    who.map((w) => [w.lp, { kind: 'ready' as const, path: `/cache/${w.patch}.ko` }]),
  ),
});

const phaseOf = (d: ReturnType<typeof decideNode>, who: typeof OLD): ObservedPatch | undefined =>
  d.patches.find((p) => p.livePatch === who.lp);

describe('after a reboot (the kernel has nothing) with two members enabled', () => {
  const before = [report(OLD, 'Replaced', { replacedBy: NEW.lp }), report(NEW, 'Patched')];
  test.each([
    ['older entry first', [member(OLD, 1), member(NEW, 2)]],
    ['newer entry first', [member(NEW, 2), member(OLD, 1)]],
  ])('%s: only the newer build is loaded, the older reports Replaced by it', (_, entries) => {
    const d = decideNode(entries, kernel([], []), before, NOW, ready(OLD, NEW));
    expect(d.action).toMatchObject({ kind: 'load', livePatch: NEW.lp });
    expect(phaseOf(d, OLD)).toMatchObject({ phase: 'Replaced', replacedBy: NEW.lp });
    expect(phaseOf(d, OLD)?.message).toContain('superseded by LivePatch fix-v2');
  });

  test.each(['5.10.0-35-amd64', '6.1.0-50-amd64', '6.12.48+deb13-amd64'])(
    'kernel %s: the newer build running, the older member is never loaded on top',
    (release) => {
      const k = kernel([{ name: NEW.patch, replace: true }], [NEW.patch], release);
      const d = decideNode([member(OLD, 1), member(NEW, 2)], k, before, NOW, ready(OLD));
      expect(d.action).toBeUndefined();
      expect(phaseOf(d, OLD)).toMatchObject({ phase: 'Replaced', replacedBy: NEW.lp });
      expect(phaseOf(d, NEW)?.phase).toBe('Patched');
    },
  );
});

describe('arrival order', () => {
  test('an older member arriving on a node where the newer one runs is not loaded', () => {
    const k = kernel([{ name: NEW.patch }], [NEW.patch], '6.1.0-50-amd64');
    const d = decideNode(
      [member(NEW, 2), member(OLD, 1)],
      k,
      [report(NEW, 'Patched')],
      NOW,
      ready(OLD),
    );
    expect(d.action).toBeUndefined();
    expect(phaseOf(d, OLD)).toMatchObject({ phase: 'Replaced', replacedBy: NEW.lp });
  });

  test('a newer member arriving where the older one runs loads, and the older one keeps running until replaced', () => {
    const k = kernel([{ name: OLD.patch }], [OLD.patch], '6.1.0-50-amd64');
    const d = decideNode(
      [member(OLD, 1), member(NEW, 2)],
      k,
      [report(OLD, 'Patched')],
      NOW,
      ready(NEW),
    );
    expect(d.action).toMatchObject({ kind: 'load', livePatch: NEW.lp });
    expect(phaseOf(d, OLD)?.phase).toBe('Patched');
  });

  test('a newer member that failed on this node supersedes nothing: the older one loads', () => {
    const d = decideNode(
      [member(OLD, 1), member(NEW, 2)],
      kernel([], []),
      [report(NEW, 'Failed', { message: 'checksum mismatch' })],
      NOW,
      ready(OLD, NEW),
    );
    expect(d.action).toMatchObject({ kind: 'load', livePatch: OLD.lp });
  });
});

describe('falling back when the newer member goes', () => {
  const replaced = [report(OLD, 'Replaced', { replacedBy: NEW.lp })];

  test('the newer entry gone: the older build waits for the controller, nothing is loaded', () => {
    const d = decideNode([member(OLD, 1)], kernel([], [OLD.patch]), replaced, NOW, ready(OLD));
    expect(d.action).toBeUndefined();
    expect(phaseOf(d, OLD)).toMatchObject({ phase: 'Replaced', replacedBy: NEW.lp });
    expect(phaseOf(d, OLD)?.message).toContain('the controller loads this build again');
  });

  test('the newer entry Disabled counts as gone', () => {
    const d = decideNode(
      [member(OLD, 1), member(NEW, 2, { state: 'Disabled' })],
      kernel([], []),
      replaced,
      NOW,
      ready(OLD),
    );
    expect(d.action).toBeUndefined();
    expect(phaseOf(d, OLD)?.phase).toBe('Replaced');
  });

  test('started again by the controller (fallback): the leftover module is unloaded, then the build loaded', () => {
    const entries = [member(OLD, 1, { fallback: true })];
    const d = decideNode(entries, kernel([], [OLD.patch]), replaced, NOW, ready(OLD));
    expect(d.action).toMatchObject({ kind: 'unload', livePatch: OLD.lp });
    const next = decideNode(entries, kernel([], []), d.patches, NOW, ready(OLD));
    expect(next.action).toMatchObject({ kind: 'load', livePatch: OLD.lp });
  });

  test('before 6.11 a fallback loads even beside another enabled patch the agent would take for its replacer', () => {
    const k = kernel(
      [{ name: 'livepatch_other' }],
      [OLD.patch, 'livepatch_other'],
      '5.10.0-35-amd64',
    );
    const d = decideNode([member(OLD, 1, { fallback: true })], k, replaced, NOW, ready(OLD));
    expect(d.action).toMatchObject({ kind: 'unload', livePatch: OLD.lp });
  });
});

describe('an order that is not declared', () => {
  test('two LivePatches with one series and sequence: neither loads, both Failed with what to do', () => {
    const twin = { lp: 'fix-v1-again' as LivePatchName, patch: 'lpt_cmdline_v2' as PatchName };
    const d = decideNode(
      [member(OLD, 1), member(twin, 1)],
      kernel([], []),
      [],
      NOW,
      ready(OLD, twin),
    );
    expect(d.action).toBeUndefined();
    for (const who of [OLD, twin]) {
      expect(phaseOf(d, who)?.phase).toBe('Failed');
      expect(phaseOf(d, who)?.message).toContain('Give one of them another spec.series.sequence');
    }
  });

  test('members of different series, and entries without a series, do not hold each other back', () => {
    const other = member(NEW, 2, { series: { name: 'other', sequence: 2 } });
    const d = decideNode([member(OLD, 1), other], kernel([], []), [], NOW, ready(OLD, NEW));
    expect(d.action?.kind).toBe('load');
    expect(phaseOf(d, OLD)?.phase).not.toBe('Replaced');
  });
});
