// What the agent needs from a node's kernel, and nothing more. Two
// implementations: sysfs.ts (the real /sys/kernel/livepatch) and sim/simulator.ts
// (the same rules in memory, for kind and tests). See docs/kernel.md.
import type { BackendKind, BlockingTask } from '../../src/api/generated/types.js';
import type { KernelRelease, PatchName } from '../../src/api/names.js';

/** The errno values the livepatch interface and the module loader answer with. */
export type Errno =
  | 'EINVAL'
  | 'EBUSY'
  | 'ENOEXEC'
  | 'EEXIST'
  | 'ENOENT'
  | 'EPERM'
  | 'EKEYREJECTED'
  | 'EIO'
  /** Not the kernel's: insmod or rmmod did not return in time (a module init that blocks). */
  | 'ETIMEDOUT';

/** A refusal by the kernel, with its errno: the agent turns it into a phase and a message. */
export class KernelError extends Error {
  override readonly name = 'KernelError';
  constructor(
    readonly errno: Errno,
    readonly operation: string,
    detail: string,
    /** What the kernel logged about the refusal (a module load's own lines), when it could be read. */
    readonly kernelLog: readonly string[] = [],
  ) {
    super(`${operation}: ${errno}: ${detail}`);
  }
}

/**
 * One directory under /sys/kernel/livepatch, as last read. A directory whose
 * disable has completed (enabled=0, transition=0) is not listed: the kernel is
 * about to remove it (klp_free_patch_async) and it can no longer be written.
 */
export interface KernelPatch {
  /** The directory's name: any module name, which a LivePatch's patchName may not accept. */
  readonly name: string;
  readonly enabled: boolean;
  readonly transition: boolean;
  /** Atomic-replace patch; undefined on kernels without the file (before 6.11). */
  readonly replace?: boolean;
  /** 1-based position among loaded patches; undefined before 6.14. */
  readonly stackOrder?: number;
}

/** Tasks that have not switched to the state the patch in transition is heading for. */
export interface TransitionTasks {
  readonly pending: number;
  /** Some of the pending tasks, at most `limit` of them. */
  readonly blocking: readonly BlockingTask[];
}

/** What a module file says about itself (modinfo), read before anything reaches the kernel. */
export interface ModuleInfo {
  /** The name it loads under. */
  readonly name: string;
  /** The release it was built for is the first word. */
  readonly vermagic: string;
  /** `MODULE_INFO(livepatch, "Y")`: the kernel treats it as a livepatch. */
  readonly livepatch: boolean;
}

export interface KernelBackend {
  readonly kind: BackendKind;
  /** `uname -r`. */
  release(): Promise<KernelRelease>;
  /** /proc/sys/kernel/tainted. */
  tainted(): Promise<number>;
  /** Whether the kernel has livepatch support at all (/sys/kernel/livepatch exists). */
  livepatchSupported(): Promise<boolean>;
  /** Every patch with a live sysfs directory. */
  patches(): Promise<KernelPatch[]>;
  /** Whether the module is loaded (/sys/module/<name>), with or without a sysfs patch directory. */
  isLoaded(name: PatchName): Promise<boolean>;
  /** modinfo of a module file, checked against the LivePatch and the node before insmod. */
  moduleInfo(modulePath: string): Promise<ModuleInfo>;
  /**
   * insmod: loads the module file, which enables the patch at once and starts
   * its transition. One attempt: EBUSY (another transition runs) is the
   * pass's to wait out, not the backend's; ENOEXEC on a vermagic mismatch,
   * EEXIST when already loaded.
   */
  load(modulePath: string): Promise<void>;
  /** Writes `enabled`: disable, or reverse the patch in transition. */
  setEnabled(name: PatchName, enabled: boolean): Promise<void>;
  /** The tasks blocking the transition of `name` (from /proc/<pid>/task/<tid>/patch_state). */
  transitionTasks(name: PatchName, limit: number): Promise<TransitionTasks>;
  /** Writes `force` during the patch's transition. Irreversible: the module can never be removed. */
  force(name: PatchName): Promise<void>;
  /** Waits for the module's refcnt to reach 0, then rmmod. A module that is not loaded is already unloaded. */
  unload(name: PatchName, timeoutMs: number): Promise<void>;
}

/** Parses a write to `enabled` the way the kernel's kstrtobool does. */
export function kstrtobool(value: string): boolean | undefined {
  const c = value[0];
  if (c === undefined) return undefined;
  if ('1yYtT'.includes(c)) return true;
  if ('0nNfF'.includes(c)) return false;
  if (c === 'o' || c === 'O') {
    const d = value[1]?.toLowerCase();
    if (d === 'n') return true;
    if (d === 'f') return false;
  }
  return undefined;
}
