// What a conformance scenario may touch: the KernelBackend under test, plus
// the few things only a test does to a kernel (its helper module's kthread,
// raw sysfs reads, /proc/cmdline, lockdown). One implementation runs inside a
// VM on a real kernel, one on the simulator configured as that release.
import type { KernelProfile } from '../../../agent/kernel/profile.js';
import { KernelError, type KernelBackend } from '../../../agent/kernel/types.js';
import { poll } from '../../wait.js';

/** The project's own test modules (lab/kernel/modules). */
export type TestModule =
  | 'lpt_cmdline'
  | 'lpt_cmdline_v2'
  | 'lpt_holder'
  | 'lpt_stall'
  | 'lpt_stall_twin'
  | 'lpt_Upper'
  | 'lpt_sleeper'
  | 'lpt_signal'
  | 'lpt_noklp'
  | 'lpt_prepatch_fail'
  | 'lpt_prepatch_wait'
  | 'lpt_state'
  | 'lpt_state_none'
  | 'lpt_state_v1'
  | 'lpt_state_v2'
  | 'lpt_stall_force';

/** The helper modules whose kthread sleeps in a function of theirs while held. */
export type HelperModule = 'lpt_holder' | 'lpt_sleeper';

export interface SysfsEntry {
  readonly enabled: boolean;
  readonly transition: boolean;
}

export interface Lab {
  readonly backend: KernelBackend;
  readonly profile: KernelProfile;
  /**
   * The same kernel as the agent's backend sees it when insmod, rmmod and
   * modinfo may run at most `toolTimeoutMs` (SysfsKernel's toolTimeoutMs).
   */
  timedBackend(toolTimeoutMs: number): KernelBackend;
  /** The module built for this kernel, or for the other kernel line (a vermagic refusal). */
  module(name: TestModule, build?: 'own' | 'other'): string;
  /**
   * Writes a helper's `hold` parameter: its kthread sleeps in its function
   * (lpt_holder_wait uninterruptibly, lpt_sleeper_wait interruptibly) or leaves it.
   */
  hold(held: boolean, helper?: HelperModule): Promise<void>;
  /**
   * Whose cmdline_proc_show runs: the test patch named in /proc/cmdline, or
   * undefined for the kernel's own. 6.12 cuts a read of /proc/cmdline at the
   * boot command line's length (30 bytes in the VMs): only names that fit,
   * up to lpt_cmdline_v2's, can be read back whole.
   */
  cmdlineOwner(): Promise<string | undefined>;
  /** /sys/kernel/livepatch/<name> as `cat` sees it, including a directory about to be freed. */
  sysfsEntry(name: string): Promise<SysfsEntry | undefined>;
  /** /sys/module/<name>/refcnt, undefined when the module is not loaded. */
  refcnt(name: string): Promise<number | undefined>;
  /** The pid of the kthread with this comm, if one runs. */
  kthreadPid(comm: string): Promise<number | undefined>;
  /** Raises lockdown to integrity (one way). */
  lockDown(): Promise<void>;
  /** Writes the sysctl kernel.ftrace_enabled; a refusal is a KernelError with the kernel's errno. */
  setFtraceEnabled(enabled: boolean): Promise<void>;
  /** Sets module.sig_enforce (one way). */
  enforceSignatures(): Promise<void>;
  /** The kernel's clock: simulated time for the simulator, the wall clock in a VM. */
  now(): number;
  sleep(ms: number): Promise<void>;
}

/** One observation: the rule of docs/kernel.md it checks, what was seen, and what the rule predicts. */
export interface Step {
  readonly rule: string;
  readonly observed: unknown;
  readonly expected: unknown;
  readonly ok: boolean;
}

export class Trace {
  readonly steps: Step[] = [];

  check(rule: string, observed: unknown, expected: unknown): void {
    const ok = JSON.stringify(observed) === JSON.stringify(expected);
    this.steps.push({ rule, observed: observed ?? null, expected: expected ?? null, ok });
  }

  get ok(): boolean {
    return this.steps.every((s) => s.ok);
  }
}

/** 'ok' or the errno a kernel operation answered with. */
export async function outcome(p: Promise<unknown>): Promise<string> {
  try {
    await p;
    return 'ok';
  } catch (err) {
    if (err instanceof KernelError) return err.errno;
    throw err;
  }
}

/** The kernel's log lines of a refused operation, classified by what they say. */
export async function refusalLog(p: Promise<unknown>): Promise<{ errno: string; log: string[] }> {
  try {
    await p;
    return { errno: 'ok', log: [] };
  } catch (err) {
    if (!(err instanceof KernelError)) throw err;
    return { errno: err.errno, log: [...err.kernelLog] };
  }
}

/** Polls until `done` (every 100 ms, at most `timeoutMs`); whether it happened. */
export async function eventually(
  lab: Lab,
  done: () => Promise<boolean>,
  timeoutMs = 20_000,
): Promise<boolean> {
  return (await poll(done, (d) => d, timeoutMs, { intervalMs: 100, clock: lab })).ok;
}

/** The distinct values a reading takes over `samples` reads one second apart. */
export async function sampled<T>(lab: Lab, read: () => Promise<T>, samples = 3): Promise<T[]> {
  const seen: T[] = [];
  for (let i = 0; i < samples; i++) {
    const v = await read();
    if (!seen.some((s) => JSON.stringify(s) === JSON.stringify(v))) seen.push(v);
    if (i < samples - 1) await lab.sleep(1000);
  }
  return seen;
}

export const entryText = (e: SysfsEntry | undefined): string =>
  e ? `enabled=${e.enabled ? 1 : 0} transition=${e.transition ? 1 : 0}` : 'absent';

export interface Scenario {
  readonly name: string;
  /** What it shows, in a sentence. */
  readonly title: string;
  run(lab: Lab, t: Trace): Promise<void>;
}
