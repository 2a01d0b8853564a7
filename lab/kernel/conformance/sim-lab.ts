// The lab on the simulator configured as a real kernel's release, with the
// test modules as simulated module files: the same scenarios, in kernel time
// on a manual clock.
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { kernelRelease, type KernelRelease, type PatchName } from '../../../src/api/names.js';
import { ManualClock } from '../../../src/clock.js';
import {
  buildSimModule,
  serializeSimModule,
  type SimModuleOptions,
} from '../../../agent/kernel/sim/sim-module.js';
import { SimulatedKernel } from '../../../agent/kernel/sim/simulator.js';
import type { KernelProfile } from '../../../agent/kernel/profile.js';
import { toolTimedOut } from '../../../agent/kernel/sysfs.js';
import type {
  KernelBackend,
  KernelPatch,
  ModuleInfo,
  TransitionTasks,
} from '../../../agent/kernel/types.js';
import type { HelperModule, Lab, SysfsEntry, TestModule } from './lab.js';

const CMDLINE = ['vmlinux:cmdline_proc_show'];

/** The test modules as the simulator knows them: what each patches, and the helper's kthread. */
const MODULES: Record<TestModule, Omit<SimModuleOptions, 'name' | 'kernel'>> = {
  lpt_cmdline: { functions: ['vmlinux:cmdline_proc_show'] },
  lpt_cmdline_v2: { functions: ['vmlinux:cmdline_proc_show'], replace: true },
  lpt_holder: { livepatch: false, kthreads: [{ comm: 'lpt_holder', function: 'lpt_holder_wait' }] },
  lpt_stall: { functions: ['lpt_holder:lpt_holder_wait'], depends: ['lpt_holder'] },
  lpt_Upper: { functions: ['vmlinux:cmdline_proc_show'] },
  lpt_stall_twin: { functions: ['lpt_holder:lpt_holder_wait'], depends: ['lpt_holder'] },
  lpt_sleeper: {
    livepatch: false,
    kthreads: [{ comm: 'lpt_sleeper', function: 'lpt_sleeper_wait', sleep: 'interruptible' }],
  },
  lpt_signal: { functions: ['lpt_sleeper:lpt_sleeper_wait'], depends: ['lpt_sleeper'] },
  lpt_noklp: { functions: [], init: { kind: 'no-patch' } },
  lpt_prepatch_fail: { functions: CMDLINE, init: { kind: 'pre-patch-fails' } },
  lpt_prepatch_wait: {
    functions: CMDLINE,
    depends: ['lpt_holder'],
    init: { kind: 'pre-patch-waits', helper: 'lpt_holder' },
  },
  lpt_state: { functions: CMDLINE, states: [{ id: 1, version: 2 }] },
  lpt_state_none: { functions: CMDLINE, replace: true },
  lpt_state_v1: { functions: CMDLINE, replace: true, states: [{ id: 1, version: 1 }] },
  lpt_state_v2: { functions: CMDLINE, replace: true, states: [{ id: 1, version: 2 }] },
  lpt_stall_force: { functions: ['lpt_holder:lpt_holder_wait'], depends: ['lpt_holder'] },
};

/**
 * The agent's backend with a tool timeout, on the simulator: an insmod that
 * falls asleep in module init is given up after `toolTimeoutMs` with the
 * words SysfsKernel uses; the kernel goes on with it.
 */
class TimedSimBackend implements KernelBackend {
  readonly kind = 'simulator' as const;

  constructor(
    private readonly kernel: SimulatedKernel,
    private readonly clock: ManualClock,
    private readonly toolTimeoutMs: number,
  ) {}

  release(): Promise<KernelRelease> {
    return this.kernel.release();
  }
  tainted(): Promise<number> {
    return this.kernel.tainted();
  }
  livepatchSupported(): Promise<boolean> {
    return this.kernel.livepatchSupported();
  }
  patches(): Promise<KernelPatch[]> {
    return this.kernel.patches();
  }
  isLoaded(name: PatchName): Promise<boolean> {
    return this.kernel.isLoaded(name);
  }
  moduleInfo(modulePath: string): Promise<ModuleInfo> {
    return this.kernel.moduleInfo(modulePath);
  }
  load(modulePath: string): Promise<void> {
    const asleep = this.kernel.insmodAsleep().then(async () => {
      await this.clock.sleep(this.toolTimeoutMs);
      throw toolTimedOut('insmod', `insmod ${modulePath}`, this.toolTimeoutMs);
    });
    return Promise.race([this.kernel.load(modulePath), asleep]);
  }
  setEnabled(name: PatchName, enabled: boolean): Promise<void> {
    return this.kernel.setEnabled(name, enabled);
  }
  transitionTasks(name: PatchName, limit: number): Promise<TransitionTasks> {
    return this.kernel.transitionTasks(name, limit);
  }
  force(name: PatchName): Promise<void> {
    return this.kernel.force(name);
  }
  unload(name: PatchName, timeoutMs: number): Promise<void> {
    return this.kernel.unload(name, timeoutMs);
  }
}

export class SimLab implements Lab {
  readonly clock = new ManualClock();
  readonly backend: SimulatedKernel;
  readonly profile: KernelProfile;

  private constructor(
    release: string,
    private readonly dir: string,
  ) {
    this.backend = new SimulatedKernel({ release: kernelRelease(release), clock: this.clock });
    this.profile = this.backend.profile;
  }

  /** A simulated kernel of `release`, with the test modules built for it and for `other`. */
  static async create(release: string, other: string): Promise<SimLab> {
    const dir = await mkdtemp(join(tmpdir(), 'sim-lab-'));
    for (const [build, kernel] of [
      ['own', release],
      ['other', other],
    ] as const) {
      for (const [name, opts] of Object.entries(MODULES)) {
        const text = serializeSimModule(buildSimModule({ ...opts, name, kernel }));
        await writeFile(join(dir, `${name}-${build}.ko`), text);
      }
    }
    return new SimLab(release, dir);
  }

  module(name: TestModule, build: 'own' | 'other' = 'own'): string {
    return join(this.dir, `${name}-${build}.ko`);
  }

  timedBackend(toolTimeoutMs: number): KernelBackend {
    return new TimedSimBackend(this.backend, this.clock, toolTimeoutMs);
  }

  hold(held: boolean, helper: HelperModule = 'lpt_holder'): Promise<void> {
    this.backend.holdKthreads(helper, held);
    return Promise.resolve();
  }

  cmdlineOwner(): Promise<string | undefined> {
    return Promise.resolve(this.backend.functionOwner('vmlinux', 'cmdline_proc_show'));
  }

  sysfsEntry(name: string): Promise<SysfsEntry | undefined> {
    return Promise.resolve(this.backend.sysfsEntry(name));
  }

  refcnt(name: string): Promise<number | undefined> {
    return Promise.resolve(this.backend.refcnt(name));
  }

  kthreadPid(comm: string): Promise<number | undefined> {
    return Promise.resolve(this.backend.kthreads().find((k) => k.comm === comm)?.pid);
  }

  lockDown(): Promise<void> {
    this.backend.lockDown();
    return Promise.resolve();
  }

  setFtraceEnabled(enabled: boolean): Promise<void> {
    return Promise.resolve().then(() => {
      this.backend.setFtraceEnabled(enabled);
    });
  }

  enforceSignatures(): Promise<void> {
    this.backend.enforceModuleSignatures();
    return Promise.resolve();
  }

  now(): number {
    return this.clock.now();
  }

  sleep(ms: number): Promise<void> {
    return this.clock.sleep(ms);
  }
}
