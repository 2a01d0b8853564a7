// Each test is one rule of docs/kernel.md, checked on the simulator with a
// manual clock: a minute of kernel time runs in a millisecond.
import { beforeAll, describe, expect, test } from '@jest/globals';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { kernelRelease, patchName, type PatchName } from '../../../src/api/names.js';
import { ManualClock } from '../../../src/clock.js';
import {
  DEFAULT_SIM_KNOBS,
  knobsFromAnnotations,
  type SimKnobs,
} from '../../../agent/kernel/sim/sim-knobs.js';
import { buildSimModule, serializeSimModule } from '../../../agent/kernel/sim/sim-module.js';
import { SimulatedKernel, type SimKernelState } from '../../../agent/kernel/sim/simulator.js';
import { KernelError, kstrtobool } from '../../../agent/kernel/types.js';
import { TAINT_LIVEPATCH } from '../../../src/api/taint.js';

const RELEASE = kernelRelease('6.1.0-26-amd64');
let dir = '';

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'sim-test-'));
});

async function moduleFile(
  name: string,
  opts: Partial<Parameters<typeof buildSimModule>[0]> = {},
): Promise<string> {
  const path = join(dir, `${name}-${opts.kernel ?? RELEASE}.ko`);
  const module = buildSimModule({ ...opts, name, kernel: opts.kernel ?? RELEASE });
  await writeFile(path, serializeSimModule(module));
  return path;
}

function setup(
  knobs: Partial<SimKnobs> = {},
  o: { release?: string; livepatch?: boolean } = {},
): {
  kernel: SimulatedKernel;
  clock: ManualClock;
  k: { value: SimKnobs };
} {
  const clock = new ManualClock();
  const k = { value: { ...DEFAULT_SIM_KNOBS, transitionSeconds: 5, ...knobs } };
  const kernel = new SimulatedKernel({
    release: kernelRelease(o.release ?? RELEASE),
    clock,
    knobs: () => k.value,
    ...(o.livepatch === undefined ? {} : { livepatch: o.livepatch }),
  });
  return { kernel, clock, k };
}

async function errnoOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (err) {
    if (err instanceof KernelError) return err.errno;
    throw err;
  }
  return 'no error';
}

async function state(kernel: SimulatedKernel, name: PatchName): Promise<string> {
  const p = (await kernel.patches()).find((x) => x.name === name);
  return p ? `enabled=${p.enabled ? 1 : 0} transition=${p.transition ? 1 : 0}` : 'absent';
}

const A = patchName('livepatch_a');
const B = patchName('livepatch_b');

describe('the simulated kernel follows docs/kernel.md', () => {
  test('insmod enables the patch at once and starts its transition, which completes as tasks switch', async () => {
    const { kernel, clock } = setup({ transitionSeconds: 5 });
    await kernel.load(await moduleFile('livepatch_a'));
    expect(await state(kernel, A)).toBe('enabled=1 transition=1');
    expect((await kernel.transitionTasks(A, 10)).pending).toBe(40);
    clock.advance(3000);
    const midway = (await kernel.transitionTasks(A, 10)).pending;
    expect(midway).toBeGreaterThan(0);
    expect(midway).toBeLessThan(40);
    clock.advance(3000);
    expect(await state(kernel, A)).toBe('enabled=1 transition=0');
  });

  test('a small patch can finish before insmod returns', async () => {
    const { kernel } = setup({ transitionSeconds: 0 });
    await kernel.load(await moduleFile('livepatch_a'));
    expect(await state(kernel, A)).toBe('enabled=1 transition=0');
  });

  test('one transition at a time: insmod of another livepatch meanwhile fails with EBUSY at once, like the kernel', async () => {
    const { kernel, clock } = setup({ stuckTasks: 1 });
    await kernel.load(await moduleFile('livepatch_a'));
    const before = clock.now();
    expect(await errnoOf(kernel.load(await moduleFile('livepatch_b')))).toBe('EBUSY');
    expect(clock.now() - before).toBe(0);
    expect(await kernel.isLoaded(B)).toBe(false);
  });

  test('after EBUSY the same insmod succeeds once the other transition completes', async () => {
    const { kernel, clock } = setup({ transitionSeconds: 3 });
    await kernel.load(await moduleFile('livepatch_a'));
    expect(await errnoOf(kernel.load(await moduleFile('livepatch_b')))).toBe('EBUSY');
    clock.advance(10_000);
    await kernel.load(await moduleFile('livepatch_b'));
    expect(await state(kernel, B)).toBe('enabled=1 transition=1');
  });

  test("with kernel.ftrace_enabled=0 a livepatch load is EBUSY with the kernel's ftrace line; ftrace cannot be turned off under a patch", async () => {
    const { kernel } = setup({ transitionSeconds: 0 });
    kernel.setFtraceEnabled(false);
    const err = await kernel.load(await moduleFile('livepatch_a')).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(KernelError);
    expect((err as KernelError).errno).toBe('EBUSY');
    expect((err as KernelError).kernelLog[0]).toBe(
      "livepatch: failed to register ftrace handler for function 'cmdline_proc_show' (-16)",
    );
    expect(await kernel.isLoaded(A)).toBe(false);
    kernel.setFtraceEnabled(true);
    await kernel.load(await moduleFile('livepatch_a'));
    expect(() => {
      kernel.setFtraceEnabled(false);
    }).toThrow(/EBUSY/);
    expect(kernel.state().ftraceEnabled).toBe(true);
  });

  test('writing the value enabled already has is EINVAL', async () => {
    const { kernel, clock } = setup();
    await kernel.load(await moduleFile('livepatch_a'));
    expect(await errnoOf(kernel.setEnabled(A, true))).toBe('EINVAL');
    clock.advance(10_000);
    expect(await errnoOf(kernel.setEnabled(A, true))).toBe('EINVAL');
  });

  test('writing 0 while a different patch is in transition is EBUSY', async () => {
    const { kernel, k } = setup({ transitionSeconds: 0 });
    await kernel.load(await moduleFile('livepatch_a'));
    k.value = { ...k.value, stuckTasks: 1 };
    await kernel.load(await moduleFile('livepatch_b'));
    expect(await errnoOf(kernel.setEnabled(A, false))).toBe('EBUSY');
    expect(await state(kernel, A)).toBe('enabled=1 transition=0');
  });

  test('reversal mid-transition: writing the opposite value flips the target and switched tasks go back', async () => {
    const { kernel, clock } = setup({ transitionSeconds: 10, stuckTasks: 2 });
    await kernel.load(await moduleFile('livepatch_a'));
    clock.advance(12_000);
    expect((await kernel.transitionTasks(A, 10)).pending).toBe(2);
    await kernel.setEnabled(A, false);
    expect(await state(kernel, A)).toBe('enabled=0 transition=1');
    // The two stuck tasks never left the old state, so only the 38 that switched must come back.
    expect((await kernel.transitionTasks(A, 10)).pending).toBe(38);
    clock.advance(11_000);
    expect(await state(kernel, A)).toBe('absent');
    expect(await kernel.isLoaded(A)).toBe(true);
  });

  test('reversing a reversal re-enables the patch in transition', async () => {
    const { kernel, clock } = setup({ transitionSeconds: 10 });
    await kernel.load(await moduleFile('livepatch_a'));
    clock.advance(2000);
    await kernel.setEnabled(A, false);
    await kernel.setEnabled(A, true);
    expect(await state(kernel, A)).toBe('enabled=1 transition=1');
    clock.advance(11_000);
    expect(await state(kernel, A)).toBe('enabled=1 transition=0');
  });

  test('the 15 s signal rule: signal-only tasks switch only after the fake signal', async () => {
    const { kernel, clock } = setup({ transitionSeconds: 2, signalTasks: 3 });
    await kernel.load(await moduleFile('livepatch_a'));
    clock.advance(14_000);
    const waiting = await kernel.transitionTasks(A, 10);
    expect(waiting.pending).toBe(3);
    expect(waiting.blocking.map((t) => t.comm)).toEqual(['sleep', 'sleep', 'sleep']);
    clock.advance(2000);
    expect(await state(kernel, A)).toBe('enabled=1 transition=0');
  });

  test('the signal counter restarts on reversal', async () => {
    const { kernel, clock } = setup({ transitionSeconds: 1, signalTasks: 1 });
    await kernel.load(await moduleFile('livepatch_a'));
    clock.advance(16_000);
    expect(await state(kernel, A)).toBe('enabled=1 transition=0');
    await kernel.setEnabled(A, false);
    clock.advance(10_000);
    expect((await kernel.transitionTasks(A, 10)).pending).toBe(1);
    clock.advance(6000);
    expect(await state(kernel, A)).toBe('absent');
  });

  test('stuck tasks block indefinitely and are reported with pid and comm', async () => {
    const { kernel, clock } = setup({ tasks: 10, stuckTasks: 1 });
    await kernel.load(await moduleFile('livepatch_a'));
    clock.advance(3_600_000);
    expect(await state(kernel, A)).toBe('enabled=1 transition=1');
    expect(await kernel.transitionTasks(A, 10)).toEqual({
      pending: 1,
      blocking: [{ pid: 1009, comm: 'qemu-kvm' }],
    });
  });

  test('a completed disable removes the sysfs directory; the module stays loaded until rmmod', async () => {
    const { kernel, clock } = setup({ transitionSeconds: 1 });
    await kernel.load(await moduleFile('livepatch_a'));
    clock.advance(2000);
    await kernel.setEnabled(A, false);
    expect(await state(kernel, A)).toBe('enabled=0 transition=1');
    clock.advance(2000);
    expect(await state(kernel, A)).toBe('absent');
    expect(await kernel.isLoaded(A)).toBe(true);
    await kernel.unload(A, 1000);
    expect(await kernel.isLoaded(A)).toBe(false);
  });

  test('a disabled patch cannot be re-enabled: its directory is gone, reload the module', async () => {
    const { kernel, clock } = setup({ transitionSeconds: 0 });
    await kernel.load(await moduleFile('livepatch_a'));
    await kernel.setEnabled(A, false);
    clock.advance(1000);
    expect(await errnoOf(kernel.setEnabled(A, true))).toBe('ENOENT');
  });

  test('refcnt: rmmod waits while the patch holds its module and gives up with EBUSY', async () => {
    const { kernel, clock } = setup({ transitionSeconds: 0 });
    await kernel.load(await moduleFile('livepatch_a'));
    const before = clock.now();
    expect(await errnoOf(kernel.unload(A, 5000))).toBe('EBUSY');
    expect(clock.now() - before).toBeGreaterThanOrEqual(5000);
    expect(await kernel.isLoaded(A)).toBe(true);
  });

  test('rmmod waits for refcnt 0 while a disable completes', async () => {
    const { kernel, clock } = setup({ transitionSeconds: 3 });
    await kernel.load(await moduleFile('livepatch_a'));
    clock.advance(4000);
    await kernel.setEnabled(A, false);
    const before = clock.now();
    await kernel.unload(A, 10_000);
    expect(clock.now() - before).toBeGreaterThanOrEqual(3000);
    expect(await kernel.isLoaded(A)).toBe(false);
  });

  test('force completes the transition; a forced disable makes rmmod impossible forever', async () => {
    const { kernel, clock, k } = setup({ transitionSeconds: 0 });
    await kernel.load(await moduleFile('livepatch_a'));
    k.value = { ...k.value, stuckTasks: 1 };
    await kernel.setEnabled(A, false);
    clock.advance(70_000);
    await kernel.force(A);
    clock.advance(1000);
    expect(await state(kernel, A)).toBe('absent');
    const err = await kernel.unload(A, 10_000).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(KernelError);
    expect((err as KernelError).errno).toBe('EBUSY');
    expect((err as KernelError).message).toContain('forced');
  });

  test('from 5.18 a forced enable leaves the module removable once disabled', async () => {
    const { kernel, clock, k } = setup({ stuckTasks: 1 });
    await kernel.load(await moduleFile('livepatch_a'));
    clock.advance(70_000);
    await kernel.force(A);
    clock.advance(1000);
    expect(await state(kernel, A)).toBe('enabled=1 transition=0');
    k.value = { ...k.value, stuckTasks: 0 };
    await kernel.setEnabled(A, false);
    clock.advance(5000);
    await kernel.unload(A, 10_000);
    expect(await kernel.isLoaded(A)).toBe(false);
  });

  test('before 5.18 a force pins every loaded patch, whatever the direction', async () => {
    const old = '5.15.0-105-generic';
    const { kernel, clock, k } = setup({ transitionSeconds: 0 }, { release: old });
    await kernel.load(await moduleFile('livepatch_a', { kernel: old }));
    k.value = { ...k.value, stuckTasks: 1 };
    await kernel.load(await moduleFile('livepatch_b', { kernel: old }));
    clock.advance(70_000);
    await kernel.force(B);
    clock.advance(1000);
    k.value = { ...k.value, stuckTasks: 0 };
    await kernel.setEnabled(A, false);
    clock.advance(2000);
    expect(await errnoOf(kernel.unload(A, 2000))).toBe('EBUSY');
  });

  test('from 5.18 forcing a replace patch pins the patches it replaces', async () => {
    const { kernel, clock, k } = setup({ transitionSeconds: 0 });
    await kernel.load(await moduleFile('livepatch_a'));
    k.value = { ...k.value, stuckTasks: 1 };
    await kernel.load(await moduleFile('livepatch_b', { replace: true }));
    clock.advance(70_000);
    await kernel.force(B);
    clock.advance(1000);
    expect(await state(kernel, A)).toBe('absent');
    expect(await errnoOf(kernel.unload(A, 2000))).toBe('EBUSY');
  });

  test('force outside the patch transition is EINVAL', async () => {
    const { kernel } = setup({ transitionSeconds: 0 });
    await kernel.load(await moduleFile('livepatch_a'));
    expect(await errnoOf(kernel.force(A))).toBe('EINVAL');
  });

  test('atomic replace: older patches stay enabled during the transition and are removed on completion', async () => {
    const { kernel: k, clock: c } = setup({ transitionSeconds: 4 });
    await k.load(await moduleFile('livepatch_a'));
    c.advance(5000);
    await k.load(await moduleFile('livepatch_b', { replace: true }));
    expect(await state(k, A)).toBe('enabled=1 transition=0');
    c.advance(5000);
    expect(await state(k, A)).toBe('absent');
    expect(await state(k, B)).toBe('enabled=1 transition=0');
    expect(await k.isLoaded(A)).toBe(true);
    await k.unload(A, 1000);
  });

  test('atomic replace reversed: the older patches are untouched', async () => {
    const { kernel, clock } = setup({ transitionSeconds: 4 });
    await kernel.load(await moduleFile('livepatch_a'));
    clock.advance(5000);
    await kernel.load(await moduleFile('livepatch_b', { replace: true }));
    clock.advance(2000);
    await kernel.setEnabled(B, false);
    clock.advance(5000);
    expect(await state(kernel, B)).toBe('absent');
    expect(await state(kernel, A)).toBe('enabled=1 transition=0');
  });

  test('vermagic mismatch: refused with ENOEXEC and nothing loaded', async () => {
    const { kernel } = setup();
    const err = await kernel
      .load(await moduleFile('livepatch_a', { kernel: '6.1.0-27-amd64' }))
      .catch((e: unknown) => e);
    expect((err as KernelError).errno).toBe('ENOEXEC');
    expect((err as KernelError).kernelLog).toEqual([
      'livepatch_a: disagrees about version of symbol module_layout',
    ]);
    expect(await kernel.isLoaded(A)).toBe(false);
    expect(await kernel.tainted()).toBe(0);
  });

  test('a file that is not a module is ENOEXEC', async () => {
    const { kernel } = setup();
    const path = join(dir, 'garbage.ko');
    await writeFile(path, '\x7fELF not really');
    expect(await errnoOf(kernel.load(path))).toBe('ENOEXEC');
  });

  test('loading a module that is already loaded is EEXIST', async () => {
    const { kernel } = setup({ transitionSeconds: 0 });
    await kernel.load(await moduleFile('livepatch_a'));
    expect(await errnoOf(kernel.load(await moduleFile('livepatch_a')))).toBe('EEXIST');
  });

  test('loading any livepatch taints the kernel with K (bit 15)', async () => {
    const { kernel } = setup({ transitionSeconds: 0 });
    await kernel.load(await moduleFile('livepatch_a'));
    expect((await kernel.tainted()) & TAINT_LIVEPATCH).toBe(TAINT_LIVEPATCH);
  });

  test('stack_order (6.14+) is 1-based in load order and replace (6.11+) is reported', async () => {
    const release = '6.14.0-15-generic';
    const { kernel } = setup({ transitionSeconds: 0 }, { release });
    await kernel.load(await moduleFile('livepatch_a', { kernel: release }));
    await kernel.load(await moduleFile('livepatch_c', { kernel: release }));
    const list = await kernel.patches();
    expect(list.map((p) => [p.name, p.stackOrder, p.replace])).toEqual([
      ['livepatch_a', 1, false],
      ['livepatch_c', 2, false],
    ]);
  });

  test('the files a release has: no replace before 6.11, no stack_order before 6.14', async () => {
    const onRelease = async (release: string): Promise<object | undefined> => {
      const { kernel } = setup({ transitionSeconds: 0 }, { release });
      await kernel.load(await moduleFile('livepatch_a', { kernel: release, replace: true }));
      return (await kernel.patches())[0];
    };
    expect(await onRelease('6.1.0-50-amd64')).toEqual({
      name: 'livepatch_a',
      enabled: true,
      transition: false,
    });
    expect(await onRelease('6.12.95+deb12-amd64')).toEqual({
      name: 'livepatch_a',
      enabled: true,
      transition: false,
      replace: true,
    });
  });

  test('a finished disable lingers as enabled=0 transition=0 until the kernel frees it, then the reference drops', async () => {
    const { kernel, clock } = setup({ transitionSeconds: 0 });
    await kernel.load(await moduleFile('livepatch_a'));
    await kernel.setEnabled(A, false);
    expect(kernel.sysfsEntry(A)).toEqual({ enabled: false, transition: false });
    expect(kernel.refcnt(A)).toBe(1);
    expect(await state(kernel, A)).toBe('absent');
    expect(await errnoOf(kernel.setEnabled(A, false))).toBe('EINVAL');
    clock.advance(10);
    expect(kernel.sysfsEntry(A)).toBeUndefined();
    expect(kernel.refcnt(A)).toBe(0);
  });

  test('loading an out-of-tree, unsigned livepatch taints O, E and K', async () => {
    const { kernel } = setup({ transitionSeconds: 0 });
    await kernel.load(await moduleFile('livepatch_a'));
    expect(await kernel.tainted()).toBe((1 << 12) | (1 << 13) | (1 << 15));
  });

  test('enforced signatures refuse an unsigned module with EKEYREJECTED; lockdown with EPERM; a signed one loads', async () => {
    const { kernel } = setup({ transitionSeconds: 0 });
    kernel.lockDown();
    const locked = await kernel.load(await moduleFile('livepatch_a')).catch((e: unknown) => e);
    expect((locked as KernelError).errno).toBe('EPERM');
    expect((locked as KernelError).kernelLog[0]).toContain('Lockdown');
    kernel.enforceModuleSignatures();
    expect(await errnoOf(kernel.load(await moduleFile('livepatch_a')))).toBe('EKEYREJECTED');
    await kernel.load(await moduleFile('livepatch_s', { signed: true }));
    expect(await kernel.isLoaded(patchName('livepatch_s'))).toBe(true);
  });

  test('a kernel without livepatch support has no livepatch directory and refuses livepatches with ENOEXEC', async () => {
    const { kernel } = setup({}, { livepatch: false });
    expect(await kernel.livepatchSupported()).toBe(false);
    const err = (await kernel
      .load(await moduleFile('livepatch_a'))
      .catch((e: unknown) => e)) as KernelError;
    expect(err.errno).toBe('ENOEXEC');
    expect(err.kernelLog[0]).toContain('livepatch support is disabled');
  });

  test('unloading a module that is not loaded is already done', async () => {
    const { kernel } = setup();
    await kernel.unload(A, 1000);
    expect(await kernel.isLoaded(A)).toBe(false);
  });

  test('modinfo of a simulated module', async () => {
    const { kernel } = setup();
    expect(await kernel.moduleInfo(await moduleFile('livepatch_a'))).toEqual({
      name: 'livepatch_a',
      vermagic: `${RELEASE} SMP preempt mod_unload modversions`,
      livepatch: true,
    });
  });
});

describe("a module's kthread sleeping in a function that a patch changes", () => {
  const H = patchName('lpt_holder');
  const S = patchName('lpt_stall');
  const holder = (): Promise<string> =>
    moduleFile('lpt_holder', {
      livepatch: false,
      kthreads: [{ comm: 'lpt_holder', function: 'lpt_holder_wait' }],
    });
  const stall = (): Promise<string> =>
    moduleFile('lpt_stall', { functions: ['lpt_holder:lpt_holder_wait'], depends: ['lpt_holder'] });

  test('blocks the patch of that function for as long as it sleeps there, named by pid and comm', async () => {
    const { kernel, clock } = setup({ transitionSeconds: 1 });
    await kernel.load(await holder());
    await kernel.load(await stall());
    clock.advance(120_000);
    expect(await state(kernel, S)).toBe('enabled=1 transition=1');
    expect(await kernel.transitionTasks(S, 10)).toEqual({
      pending: 1,
      blocking: [{ pid: 200, comm: 'lpt_holder' }],
    });
    kernel.holdKthreads('lpt_holder', false);
    clock.advance(1000);
    expect(await state(kernel, S)).toBe('enabled=1 transition=0');
  });

  test('the fake signal does not wake it, and other patches are not blocked by it', async () => {
    const { kernel, clock } = setup({ transitionSeconds: 1 });
    await kernel.load(await holder());
    await kernel.load(await moduleFile('livepatch_a'));
    clock.advance(2000);
    expect(await state(kernel, A)).toBe('enabled=1 transition=0');
  });

  test('reversing the stalled enable completes: the kthread never left the old code', async () => {
    const { kernel, clock } = setup({ transitionSeconds: 1 });
    await kernel.load(await holder());
    await kernel.load(await stall());
    clock.advance(30_000);
    await kernel.setEnabled(S, false);
    clock.advance(2000);
    expect(await state(kernel, S)).toBe('absent');
    clock.advance(10);
    expect(kernel.refcnt(S)).toBe(0);
    await kernel.unload(S, 1000);
    expect(kernel.refcnt(H)).toBe(0);
  });

  test('asleep in the new code, it stalls the disable; reversing the disable re-enables', async () => {
    const { kernel, clock } = setup({ transitionSeconds: 1 });
    await kernel.load(await holder());
    kernel.holdKthreads('lpt_holder', false);
    await kernel.load(await stall());
    clock.advance(2000);
    kernel.holdKthreads('lpt_holder', true);
    expect(kernel.functionOwner('lpt_holder', 'lpt_holder_wait')).toBe('lpt_stall');
    await kernel.setEnabled(S, false);
    clock.advance(60_000);
    expect(await state(kernel, S)).toBe('enabled=0 transition=1');
    await kernel.setEnabled(S, true);
    clock.advance(2000);
    expect(await state(kernel, S)).toBe('enabled=1 transition=0');
  });

  test('an ordinary module loads during a transition; a patch that uses it holds its reference', async () => {
    const { kernel, clock } = setup({ transitionSeconds: 3 });
    await kernel.load(await moduleFile('livepatch_a'));
    await kernel.load(await holder());
    expect(await state(kernel, A)).toBe('enabled=1 transition=1');
    clock.advance(5000);
    kernel.holdKthreads('lpt_holder', false);
    await kernel.load(await stall());
    expect(kernel.refcnt(H)).toBe(1);
    expect(await errnoOf(kernel.unload(H, 0))).toBe('EBUSY');
  });

  test('whose code runs in a function: the topmost settled patch that changes it', async () => {
    const { kernel, clock } = setup({ transitionSeconds: 0 });
    expect(kernel.functionOwner('vmlinux', 'cmdline_proc_show')).toBeUndefined();
    await kernel.load(await moduleFile('livepatch_a'));
    await kernel.load(await moduleFile('livepatch_b', { replace: true }));
    clock.advance(10);
    expect(kernel.functionOwner('vmlinux', 'cmdline_proc_show')).toBe('livepatch_b');
  });

  test('asleep interruptibly, it blocks until the fake signal 15 s in and switches at the next try, into the new code', async () => {
    const { kernel, clock } = setup({ transitionSeconds: 1 });
    const signal = patchName('lpt_signal');
    await kernel.load(
      await moduleFile('lpt_sleeper', {
        livepatch: false,
        kthreads: [{ comm: 'lpt_sleeper', function: 'lpt_sleeper_wait', sleep: 'interruptible' }],
      }),
    );
    await kernel.load(
      await moduleFile('lpt_signal', {
        functions: ['lpt_sleeper:lpt_sleeper_wait'],
        depends: ['lpt_sleeper'],
      }),
    );
    clock.advance(15_000);
    expect(await state(kernel, signal)).toBe('enabled=1 transition=1');
    expect((await kernel.transitionTasks(signal, 10)).blocking.map((b) => b.comm)).toEqual([
      'lpt_sleeper',
    ]);
    clock.advance(1000);
    expect(await state(kernel, signal)).toBe('enabled=1 transition=0');
    // Back in its function, it now sleeps in the patch's code: the disable waits for the signal too.
    await kernel.setEnabled(signal, false);
    clock.advance(15_000);
    expect(await state(kernel, signal)).toBe('enabled=0 transition=1');
    clock.advance(1000);
    expect(await state(kernel, signal)).not.toBe('enabled=0 transition=1');
  });

  test('the load-error knob answers the injected errno', async () => {
    const { kernel } = setup({ loadError: 'EINVAL' });
    expect(await errnoOf(kernel.load(await moduleFile('livepatch_a')))).toBe('EINVAL');
  });
});

describe('knobs from Node annotations', () => {
  test('reads every sim.livepatch.io annotation', () => {
    const parsed = knobsFromAnnotations({
      'sim.livepatch.io/tasks': '100',
      'sim.livepatch.io/signal-tasks': '2',
      'sim.livepatch.io/stuck-tasks': '1',
      'sim.livepatch.io/transition-seconds': '0.5',
      'sim.livepatch.io/load-error': 'ENOEXEC',
    });
    expect(parsed).toEqual({
      knobs: {
        tasks: 100,
        signalTasks: 2,
        stuckTasks: 1,
        transitionSeconds: 0.5,
        loadError: 'ENOEXEC',
      },
      problems: [],
    });
  });

  test('a bad value falls back to the default and says why', () => {
    const parsed = knobsFromAnnotations({
      'sim.livepatch.io/tasks': 'many',
      'sim.livepatch.io/load-error': 'EOOPS',
    });
    expect(parsed.knobs).toEqual(DEFAULT_SIM_KNOBS);
    expect(parsed.problems).toHaveLength(2);
    expect(parsed.problems[0]).toContain('sim.livepatch.io/tasks="many"');
  });
});

describe('kstrtobool, as the kernel parses writes to enabled', () => {
  test.each([
    ['1', true],
    ['Y', true],
    ['on', true],
    ['0', false],
    ['n', false],
    ['off', false],
    ['2', undefined],
    ['', undefined],
    ['o', undefined],
  ])('%j is %s', (value, expected) => {
    expect(kstrtobool(value)).toBe(expected);
  });
});

describe('a simulated kernel outlives its agent', () => {
  test('restored from its state, it goes on with the transition where it was, and counts loads', async () => {
    const { kernel, clock } = setup({ transitionSeconds: 4 });
    const saved: SimKernelState[] = [];
    const watched = new SimulatedKernel({
      release: RELEASE,
      clock,
      knobs: () => ({ ...DEFAULT_SIM_KNOBS, transitionSeconds: 4 }),
      onChange: (s) => saved.push(s),
    });
    await watched.load(await moduleFile('livepatch_a'));
    clock.advance(2000);
    const snapshot = JSON.parse(JSON.stringify(saved.at(-1))) as SimKernelState;
    const restored = new SimulatedKernel({ release: RELEASE, clock, state: snapshot });
    expect(await restored.patches()).toEqual(await watched.patches());
    expect((await restored.transitionTasks(A, 100)).pending).toBe(
      (await watched.transitionTasks(A, 100)).pending,
    );
    clock.advance(3000);
    expect(await state(restored, A)).toBe('enabled=1 transition=0');
    expect(restored.state().loads).toEqual({ livepatch_a: 1 });
    expect(await kernel.isLoaded(A)).toBe(false);
  });

  test('a kthread asleep in a patched function and a forced module survive the restart', async () => {
    const { clock } = setup();
    let last: SimKernelState | undefined;
    const k1 = new SimulatedKernel({ release: RELEASE, clock, onChange: (s) => (last = s) });
    await k1.load(
      await moduleFile('lpt_holder', {
        livepatch: false,
        kthreads: [{ comm: 'lpt_holder', function: 'lpt_holder_wait' }],
      }),
    );
    await k1.load(
      await moduleFile('lpt_stall', {
        functions: ['lpt_holder:lpt_holder_wait'],
        depends: ['lpt_holder'],
      }),
    );
    clock.advance(30_000);
    const k2 = new SimulatedKernel({ release: RELEASE, clock, state: last });
    expect((await k2.transitionTasks(patchName('lpt_stall'), 10)).blocking).toEqual([
      { pid: 200, comm: 'lpt_holder' },
    ]);
    await k2.setEnabled(patchName('lpt_stall'), false);
    clock.advance(2000);
    expect(await state(k2, patchName('lpt_stall'))).toBe('absent');
  });
});

describe("a livepatch's init, as klp_enable_patch runs it", () => {
  const refusal = async (p: Promise<unknown>): Promise<{ errno: string; log: string[] }> => {
    try {
      await p;
    } catch (err) {
      if (err instanceof KernelError) return { errno: err.errno, log: [...err.kernelLog] };
      throw err;
    }
    return { errno: 'no error', log: [] };
  };

  test('an init that never calls klp_enable_patch loads with no directory and no reference', async () => {
    const { kernel } = setup();
    await kernel.load(await moduleFile('lpt_noklp', { functions: [], init: { kind: 'no-patch' } }));
    expect(await kernel.isLoaded(patchName('lpt_noklp'))).toBe(true);
    expect(await kernel.patches()).toEqual([]);
    expect(kernel.refcnt('lpt_noklp')).toBe(0);
  });

  test('a pre-patch callback that fails refuses the load with EINVAL and the kernel lines', async () => {
    const { kernel } = setup();
    const file = await moduleFile('lpt_prepatch_fail', { init: { kind: 'pre-patch-fails' } });
    const { errno, log } = await refusal(kernel.load(file));
    expect(errno).toBe('EINVAL');
    expect(log).toContain("livepatch: pre-patch callback failed for object 'vmlinux'");
    expect(await kernel.isLoaded(patchName('lpt_prepatch_fail'))).toBe(false);
  });

  test.each([
    ['a replace patch without the state', { replace: true }, 'EINVAL'],
    [
      'a replace patch with a lower version',
      { replace: true, states: [{ id: 1, version: 1 }] },
      'EINVAL',
    ],
    [
      'a replace patch with the same version',
      { replace: true, states: [{ id: 1, version: 2 }] },
      'no error',
    ],
    ['a stacked patch without the state', {}, 'no error'],
  ])(
    'klp_state: over a patch with state 1 at version 2, %s loads or not',
    async (_, opts, errno) => {
      const { kernel, clock } = setup({ transitionSeconds: 1 });
      await kernel.load(await moduleFile('livepatch_a', { states: [{ id: 1, version: 2 }] }));
      clock.advance(2000);
      const { errno: seen, log } = await refusal(
        kernel.load(await moduleFile('livepatch_b', opts)),
      );
      expect(seen).toBe(errno);
      if (errno !== 'no error')
        expect(log).toEqual([
          'livepatch: Livepatch patch (livepatch_b) is not compatible with the already installed livepatches.',
        ]);
    },
  );

  test('a pre-patch callback asleep: enabled=0 transition=1 until the helper is released, then enabled', async () => {
    const { kernel, clock } = setup({ transitionSeconds: 1 });
    await kernel.load(
      await moduleFile('lpt_holder', {
        livepatch: false,
        kthreads: [{ comm: 'lpt_holder', function: 'lpt_holder_wait' }],
      }),
    );
    const asleep = kernel.insmodAsleep();
    const file = await moduleFile('lpt_prepatch_wait', {
      depends: ['lpt_holder'],
      init: { kind: 'pre-patch-waits', helper: 'lpt_holder' },
    });
    let returned = false;
    const loading = kernel.load(file).then(() => {
      returned = true;
    });
    await asleep;
    const W = patchName('lpt_prepatch_wait');
    expect(await state(kernel, W)).toBe('enabled=0 transition=1');
    clock.advance(60_000);
    expect(returned).toBe(false);
    kernel.holdKthreads('lpt_holder', false);
    await loading;
    clock.advance(2000);
    expect(await state(kernel, W)).toBe('enabled=1 transition=0');
  });
});
