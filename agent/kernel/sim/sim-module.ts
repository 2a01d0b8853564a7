// A simulated livepatch module: a small file saying what a real module would
// carry (name, vermagic, replace flag, patched objects and functions). The
// simulator loads it as the kernel loads a .ko, including the vermagic check.
import { createHash } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  kernelRelease,
  patchName,
  type KernelRelease,
  type PatchName,
} from '../../../src/api/names.js';

export const SIM_MODULE_FORMAT = 'livepatch-sim-module/v1';

export interface PatchedObject {
  /** `vmlinux` or a module name. */
  readonly name: string;
  readonly functions: readonly string[];
}

/** A kthread an ordinary module starts at load; it sleeps in one of the module's functions while held. */
export interface SimKthread {
  readonly comm: string;
  readonly function: string;
  /**
   * 'idle' (the default): nothing wakes it. 'interruptible': the transition's
   * fake signal wakes it, and it steps out of the function for a moment.
   */
  readonly sleep?: KthreadSleep;
}

export type KthreadSleep = 'idle' | 'interruptible';

/** A system state a livepatch declares it sets up (struct klp_state): klp_is_patch_compatible compares them. */
export interface SimKlpState {
  readonly id: number;
  readonly version: number;
}

/**
 * What a livepatch's init does other than enable its patch at once:
 * 'no-patch' returns 0 without calling klp_enable_patch; 'pre-patch-fails'
 * has a pre-patch callback that returns -EINVAL; 'pre-patch-waits' has one
 * that sleeps while the named module's kthreads are held.
 */
export type SimInit =
  | { readonly kind: 'no-patch' }
  | { readonly kind: 'pre-patch-fails' }
  | { readonly kind: 'pre-patch-waits'; readonly helper: string };

export interface SimModule {
  readonly format: typeof SIM_MODULE_FORMAT;
  readonly name: PatchName;
  /** As modinfo prints it: the kernel release first, then flags. */
  readonly vermagic: string;
  readonly replace: boolean;
  readonly objects: readonly PatchedObject[];
  /** A livepatch (MODULE_INFO(livepatch, "Y")); false for an ordinary module. */
  readonly livepatch: boolean;
  /** Modules whose symbols it uses: loaded first, and held while it is loaded. */
  readonly depends: readonly string[];
  /** Ordinary modules only. */
  readonly kthreads: readonly SimKthread[];
  /** Signed with a key the kernel trusts; unsigned modules taint E and are refused when signatures are enforced. */
  readonly signed: boolean;
  /** Livepatches only: the states it declares (none when absent, as in files written before states). */
  readonly states?: readonly SimKlpState[];
  /** Livepatches only; absent: init enables the patch and nothing else. */
  readonly init?: SimInit;
}

export interface SimModuleOptions {
  readonly name: string;
  readonly kernel: string;
  readonly replace?: boolean;
  readonly functions?: readonly string[];
  readonly livepatch?: boolean;
  readonly depends?: readonly string[];
  readonly kthreads?: readonly SimKthread[];
  readonly signed?: boolean;
  readonly states?: readonly SimKlpState[];
  readonly init?: SimInit;
}

export function buildSimModule(opts: SimModuleOptions): SimModule {
  const byObject = new Map<string, string[]>();
  for (const spec of opts.functions ?? ['vmlinux:cmdline_proc_show']) {
    const [object, func] = spec.includes(':') ? spec.split(':', 2) : ['vmlinux', spec];
    if (!object || !func)
      throw new Error(`--function takes OBJECT:FUNCTION, got ${JSON.stringify(spec)}`);
    byObject.set(object, [...(byObject.get(object) ?? []), func]);
  }
  const livepatch = opts.livepatch ?? true;
  return {
    format: SIM_MODULE_FORMAT,
    name: patchName(opts.name),
    vermagic: `${kernelRelease(opts.kernel)} SMP preempt mod_unload modversions`,
    replace: opts.replace ?? false,
    objects: livepatch ? [...byObject].map(([name, functions]) => ({ name, functions })) : [],
    livepatch,
    depends: opts.depends ?? [],
    kthreads: livepatch ? [] : (opts.kthreads ?? []),
    signed: opts.signed ?? false,
    ...(livepatch ? livepatchInit(opts) : {}),
  };
}

/** What only a livepatch carries: the states it declares and an init that does more than enable it. */
function livepatchInit(opts: SimModuleOptions): Pick<SimModule, 'states' | 'init'> {
  return {
    ...(opts.states?.length ? { states: opts.states } : {}),
    ...(opts.init ? { init: opts.init } : {}),
  };
}

export function serializeSimModule(module: SimModule): string {
  return JSON.stringify(module, null, 2) + '\n';
}

/** Parses a module file; undefined when it is not a simulated module at all (the kernel's ENOEXEC). */
export function parseSimModule(bytes: Uint8Array): SimModule | undefined {
  try {
    const parsed = JSON.parse(Buffer.from(bytes).toString('utf8')) as Partial<SimModule>;
    if (
      parsed.format !== SIM_MODULE_FORMAT ||
      typeof parsed.name !== 'string' ||
      typeof parsed.vermagic !== 'string'
    ) {
      return undefined;
    }
    return {
      format: SIM_MODULE_FORMAT,
      name: patchName(parsed.name),
      vermagic: parsed.vermagic,
      replace: parsed.replace === true,
      objects: Array.isArray(parsed.objects) ? parsed.objects : [],
      livepatch: parsed.livepatch !== false,
      depends: Array.isArray(parsed.depends) ? parsed.depends : [],
      kthreads: Array.isArray(parsed.kthreads) ? parsed.kthreads : [],
      signed: parsed.signed === true,
      ...(Array.isArray(parsed.states) ? { states: parsed.states } : {}),
      ...(parsed.init ? { init: parsed.init } : {}),
    };
  } catch {
    return undefined;
  }
}

export function vermagicRelease(vermagic: string): KernelRelease {
  return kernelRelease(vermagic.split(' ')[0] ?? '');
}

export interface SimModuleFile {
  readonly path: string;
  readonly sha256: string;
}

/** Writes a simulated module into `dir`, for a LivePatch to point at through hostPath. */
export async function writeSimModuleFile(
  dir: string,
  opts: SimModuleOptions,
): Promise<SimModuleFile> {
  const text = serializeSimModule(buildSimModule(opts));
  const path = join(dir, `${opts.name}-${opts.kernel}.ko`);
  await writeFile(path, text);
  return { path, sha256: createHash('sha256').update(text).digest('hex') };
}
