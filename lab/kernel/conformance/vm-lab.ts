// The lab inside a VM: the real kernel's sysfs and procfs, as root.
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import type { KernelProfile } from '../../../agent/kernel/profile.js';
import { errnoFromFsError, SysfsKernel } from '../../../agent/kernel/sysfs.js';
import { KernelError, type KernelBackend } from '../../../agent/kernel/types.js';
import type { HelperModule, Lab, SysfsEntry, TestModule } from './lab.js';

async function readOptional(path: string): Promise<string | undefined> {
  try {
    return (await readFile(path, 'utf8')).trim();
  } catch {
    return undefined;
  }
}

export interface VmLabOptions {
  readonly backend: KernelBackend;
  readonly profile: KernelProfile;
  /** Folders holding the test modules built for this kernel and for the other kernel line. */
  readonly modules: { readonly own: string; readonly other: string };
}

export class VmLab implements Lab {
  readonly backend: KernelBackend;
  readonly profile: KernelProfile;

  constructor(private readonly o: VmLabOptions) {
    this.backend = o.backend;
    this.profile = o.profile;
  }

  timedBackend(toolTimeoutMs: number): KernelBackend {
    return new SysfsKernel({ toolTimeoutMs });
  }

  module(name: TestModule, build: 'own' | 'other' = 'own'): string {
    return join(this.o.modules[build], `${name}.ko`);
  }

  async hold(held: boolean, helper: HelperModule = 'lpt_holder'): Promise<void> {
    await writeFile(`/sys/module/${helper}/parameters/hold`, held ? '1' : '0');
  }

  async cmdlineOwner(): Promise<string | undefined> {
    const text = await readFile('/proc/cmdline', 'utf8');
    return /^livepatch-test:(\S+)/.exec(text)?.[1];
  }

  async sysfsEntry(name: string): Promise<SysfsEntry | undefined> {
    const dir = join('/sys/kernel/livepatch', name);
    const [enabled, transition] = await Promise.all([
      readOptional(join(dir, 'enabled')),
      readOptional(join(dir, 'transition')),
    ]);
    if (enabled === undefined || transition === undefined) return undefined;
    return { enabled: enabled === '1', transition: transition === '1' };
  }

  async refcnt(name: string): Promise<number | undefined> {
    const text = await readOptional(join('/sys/module', name, 'refcnt'));
    return text === undefined ? undefined : Number(text);
  }

  async kthreadPid(comm: string): Promise<number | undefined> {
    for (const pid of (await readdir('/proc')).filter((e) => /^\d+$/.test(e)))
      if ((await readOptional(join('/proc', pid, 'comm'))) === comm) return Number(pid);
    return undefined;
  }

  async lockDown(): Promise<void> {
    await writeFile('/sys/kernel/security/lockdown', 'integrity');
  }

  async setFtraceEnabled(enabled: boolean): Promise<void> {
    const value = enabled ? '1' : '0';
    try {
      await writeFile('/proc/sys/kernel/ftrace_enabled', value);
    } catch (err) {
      throw new KernelError(
        errnoFromFsError(err),
        `sysctl kernel.ftrace_enabled=${value}`,
        String(err),
      );
    }
  }

  async enforceSignatures(): Promise<void> {
    await writeFile('/sys/module/module/parameters/sig_enforce', '1');
  }

  now(): number {
    return Date.now();
  }

  async sleep(ms: number): Promise<void> {
    await delay(ms);
  }
}
