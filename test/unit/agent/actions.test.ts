// What a person reads when a node refuses a patch: each kernel refusal named
// for what it is, from the kernel's own words, on a simulated kernel.
import { beforeAll, describe, expect, test } from '@jest/globals';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runAction, type ActionDeps } from '../../../agent/pass/actions.js';
import { buildSimModule, serializeSimModule } from '../../../agent/kernel/sim/sim-module.js';
import { SimulatedKernel } from '../../../agent/kernel/sim/simulator.js';
import type { NodeAction } from '../../../agent/pass/node-machine.js';
import { KernelError } from '../../../agent/kernel/types.js';
import { kernelRelease, type PatchName } from '../../../src/api/names.js';
import { ManualClock } from '../../../src/clock.js';
import { createLogger } from '../../../src/log.js';
import { desiredPatch } from '../../support/desired-patch.js';

const RELEASE = kernelRelease('6.1.0-50-amd64');
const P = 'livepatch_a' as PatchName;
let dir = '';

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'actions-test-'));
});

async function moduleFile(o: Partial<Parameters<typeof buildSimModule>[0]> = {}): Promise<string> {
  const path = join(dir, `m-${String(Math.random()).slice(2)}.ko`);
  await writeFile(path, serializeSimModule(buildSimModule({ name: P, kernel: RELEASE, ...o })));
  return path;
}

const entry = desiredPatch();
/** Loads the file at `path` as the state machine's load action would. */
function runLoad(
  kernel: SimulatedKernel,
  path: string,
  more: Partial<ActionDeps> = {},
): ReturnType<typeof runAction> {
  const load: NodeAction = { kind: 'load', livePatch: entry.livePatch, patchName: P, path };
  return runAction(load, {
    backend: kernel,
    release: RELEASE,
    startFetch: () => undefined,
    unloadTimeoutMs: 1000,
    log: createLogger({ component: 'test', level: 'error', format: 'text' }),
    ...more,
  });
}

const kernel = (o: { livepatch?: boolean } = {}): SimulatedKernel =>
  new SimulatedKernel({ release: RELEASE, clock: new ManualClock(), ...o });

describe('a refused load says what the kernel refused and what to do', () => {
  test('a build for another release is refused before insmod, naming both releases', async () => {
    const k = kernel();
    const failure = await runLoad(k, await moduleFile({ kernel: '6.1.0-51-amd64' }));
    expect(failure).toMatchObject({ reason: 'ModuleRejected', retryable: false });
    expect(failure?.message).toContain(
      'the module file was built for kernel 6.1.0-51-amd64 (vermagic "6.1.0-51-amd64 SMP preempt mod_unload modversions"), this node runs 6.1.0-50-amd64; nothing was loaded',
    );
    expect(await k.isLoaded(P)).toBe(false);
  });

  test('a build the kernel refuses anyway (ENOEXEC) says what the kernel said', async () => {
    const k = new SimulatedKernel({
      release: RELEASE,
      clock: new ManualClock(),
      knobs: () => ({
        tasks: 1,
        signalTasks: 0,
        stuckTasks: 0,
        transitionSeconds: 1,
        loadError: 'ENOEXEC',
      }),
    });
    const failure = await runLoad(k, await moduleFile());
    expect(failure).toMatchObject({ reason: 'ModuleRefused', retryable: false });
    expect(failure?.message).toContain('the kernel refused the module (');
    expect(failure?.message).toContain('this node runs 6.1.0-50-amd64');
  });

  test('a kernel without livepatch support says so, not "another kernel"', async () => {
    const failure = await runLoad(kernel({ livepatch: false }), await moduleFile());
    expect(failure?.message).toBe(
      "this node's kernel 6.1.0-50-amd64 was built without livepatch support (CONFIG_LIVEPATCH); no livepatch can be applied here",
    );
  });

  test('enforced signatures: sign the module with a key the node trusts', async () => {
    const k = kernel();
    k.enforceModuleSignatures();
    const failure = await runLoad(k, await moduleFile());
    expect(failure?.message).toContain(
      'the kernel enforces module signatures and rejected this module',
    );
    expect(failure?.message).toContain('EKEYREJECTED');
  });

  test('lockdown: named as lockdown from the kernel log', async () => {
    const k = kernel();
    k.lockDown();
    const failure = await runLoad(k, await moduleFile());
    expect(failure?.message).toContain('the kernel is locked down and refuses unsigned modules');
  });

  test('a file that is not a livepatch never reaches insmod', async () => {
    const k = kernel();
    const failure = await runLoad(k, await moduleFile({ livepatch: false }));
    expect(failure?.message).toContain('is not a livepatch (modinfo shows no livepatch=Y)');
    expect(await k.isLoaded(P)).toBe(false);
  });

  test('a file that is not a kernel module at all is said to be one, before insmod', async () => {
    const path = join(dir, 'not-a-module.ko');
    await writeFile(path, 'just text');
    const failure = await runLoad(kernel(), path);
    expect(failure).toMatchObject({ reason: 'ModuleRejected', retryable: false });
    expect(failure?.message).toMatch(/^the module file is not a kernel module \(modinfo /);
  });

  test('a node that cannot take livepatches refuses every load with its reason', async () => {
    const k = kernel();
    const failure = await runLoad(k, await moduleFile(), {
      refuseLoads: 'kernel 4.18.0 is older than 5.1',
    });
    expect(failure).toEqual({
      reason: 'NodeUnsupported',
      retryable: false,
      message: 'kernel 4.18.0 is older than 5.1',
    });
    expect(await k.isLoaded(P)).toBe(false);
  });

  test('a busy kernel is worth another try', async () => {
    const k = kernel();
    const failure = await runLoad(k, await moduleFile(), {
      backend: new SimulatedKernel({
        release: RELEASE,
        clock: new ManualClock(),
        knobs: () => ({
          tasks: 1,
          signalTasks: 0,
          stuckTasks: 0,
          transitionSeconds: 1,
          loadError: 'EBUSY',
        }),
      }),
    });
    expect(failure).toMatchObject({ reason: 'KernelBusy', retryable: true, busy: {} });
    expect(failure?.message).toMatch(/^waiting: load livepatch_a answered EBUSY \(/);
  });
});

/** A simulated kernel whose insmod answers with `err` instead of loading. */
class RefusingKernel extends SimulatedKernel {
  constructor(private readonly err: KernelError) {
    super({ release: RELEASE, clock: new ManualClock() });
  }
  override load(): Promise<void> {
    return Promise.reject(this.err);
  }
}

describe('a load the kernel refuses in its own words, or never answers', () => {
  test('EBUSY with ftrace refusing the handler: the wait quotes the kernel', async () => {
    const line =
      "livepatch: failed to register ftrace handler for function 'cmdline_proc_show' (-16)";
    const k = new RefusingKernel(
      new KernelError('EBUSY', 'insmod /m.ko', 'Device or resource busy', [line]),
    );
    const failure = await runLoad(k, await moduleFile());
    expect(failure).toMatchObject({
      reason: 'KernelBusy',
      busy: { answer: `load livepatch_a answered EBUSY (kernel: ${line})` },
    });
    expect(failure?.message).toBe(
      `waiting: load livepatch_a answered EBUSY (kernel: ${line}); trying again`,
    );
  });

  test('patch states the loaded patches do not allow (klp_state): a refusal naming the cause', async () => {
    const line =
      'livepatch: Livepatch patch (livepatch_a) is not compatible with the already installed livepatches.';
    const k = new RefusingKernel(
      new KernelError('EINVAL', 'insmod /m.ko', `Invalid parameters; kernel: ${line}`, [line]),
    );
    const failure = await runLoad(k, await moduleFile());
    expect(failure).toMatchObject({ reason: 'ModuleRefused', retryable: false });
    expect(failure?.message).toContain(line);
    expect(failure?.message).toContain(
      'its klp_state list does not allow the livepatches already loaded',
    );
  });

  test("a failing pre-patch callback: a refusal quoting the kernel's line", async () => {
    const line = "livepatch: pre-patch callback failed for object 'vmlinux'";
    const k = new RefusingKernel(
      new KernelError('EIO', 'insmod /m.ko', `Input/output error; kernel: ${line}`, [line]),
    );
    const failure = await runLoad(k, await moduleFile());
    expect(failure).toMatchObject({ reason: 'ModuleRefused', retryable: false });
    expect(failure?.message).toContain(
      `pre-patch callback refused to load it (insmod /m.ko: EIO: Input/output error; kernel: ${line})`,
    );
  });

  test('an insmod that timed out fails for the generation and says what happened', async () => {
    const k = new RefusingKernel(
      new KernelError(
        'ETIMEDOUT',
        'insmod /m.ko',
        "insmod did not return within 60s: the module's init or exit is blocked in the kernel",
      ),
    );
    const failure = await runLoad(k, await moduleFile());
    expect(failure).toMatchObject({ reason: 'ModuleRefused', retryable: false });
    expect(failure?.message).toContain('insmod did not return within 60s');
    expect(failure?.message).toContain("Read the node's kernel log (dmesg)");
  });
});

/** A simulated kernel whose livepatch loads without a /sys/kernel/livepatch directory: an init that never enables it. */
class NoDirectoryKernel extends SimulatedKernel {
  override patches(): ReturnType<SimulatedKernel['patches']> {
    return Promise.resolve([]);
  }
}

test('a livepatch=Y module that creates no /sys/kernel/livepatch directory is unloaded and fails, no load loop', async () => {
  const k = new NoDirectoryKernel({ release: RELEASE, clock: new ManualClock() });
  const unloads: string[] = [];
  const unload = k.unload.bind(k);
  k.unload = (name, timeoutMs) => {
    unloads.push(name);
    return unload(name, timeoutMs);
  };
  const failure = await runLoad(k, await moduleFile());
  expect(failure).toMatchObject({ reason: 'ModuleRejected', retryable: false });
  expect(failure?.message).toContain(
    'the module livepatch_a loaded but created no /sys/kernel/livepatch/livepatch_a: its init did not enable a livepatch (klp_enable_patch)',
  );
  expect(unloads).toEqual([P]);
});
