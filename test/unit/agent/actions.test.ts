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
import type { DesiredPatch } from '../../../src/api/generated/types.js';
import { kernelRelease, type LivePatchName, type PatchName } from '../../../src/api/names.js';
import { ManualClock } from '../../../src/clock.js';
import { createLogger } from '../../../src/log.js';

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

const entry: DesiredPatch = {
  livePatch: 'cve-a' as LivePatchName,
  patchName: P,
  state: 'Enabled',
  module: { hostPath: '/m.ko', sha256: 'a'.repeat(64) },
  generation: 1,
  stallTimeout: '60s',
  allowForce: false,
};
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
    expect(failure).toMatchObject({ reason: 'KernelBusy', retryable: true });
  });
});
