// The lab on the simulator configured as a real kernel's release, with the
// test modules as simulated module files: the same scenarios, in kernel time
// on a manual clock.
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { kernelRelease } from '../../../src/api/names.js';
import { ManualClock } from '../../../src/clock.js';
import {
  buildSimModule,
  serializeSimModule,
  type SimModuleOptions,
} from '../../../agent/kernel/sim/sim-module.js';
import { SimulatedKernel } from '../../../agent/kernel/sim/simulator.js';
import type { KernelProfile } from '../../../agent/kernel/profile.js';
import type { HelperModule, Lab, SysfsEntry, TestModule } from './lab.js';

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
};

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
