// What changes in the livepatch interface between kernel releases, in one
// table that both backends consult (docs/kernel.md, "What differs per
// release"). Nothing else in the agent compares kernel versions.
import type { KernelRelease } from '../../src/api/names.js';

/** The oldest kernel the agent drives: 5.1 made the fake signal automatic and disabled patches go away. */
export const MINIMUM_KERNEL = { major: 5, minor: 1 } as const;
export const SUPPORTED_RANGE = `${MINIMUM_KERNEL.major}.${MINIMUM_KERNEL.minor} and later`;

export interface KernelVersion {
  readonly major: number;
  readonly minor: number;
  readonly patch: number;
}

export interface KernelProfile {
  readonly release: KernelRelease;
  /** Undefined when the release does not start with a version number. */
  readonly version?: KernelVersion;
  /** 5.1+: the rules of docs/kernel.md hold; older kernels are refused. */
  readonly supported: boolean;
  /** 6.11+: `<p>/replace` exists. Before, a replaced patch just loses its directory. */
  readonly replaceFile: boolean;
  /** 6.14+: `<p>/stack_order` exists. */
  readonly stackOrderFile: boolean;
  /**
   * 5.18+: force marks only the patches being removed (the patch itself when
   * its disable is forced, the replaced ones when a replace patch's enable is
   * forced). Before, force marked every loaded patch. A marked module never
   * drops its reference and can never be unloaded.
   */
  readonly forceMarksOnlyRemoved: boolean;
  /**
   * How the module loader refuses a build for another kernel. With
   * CONFIG_MODVERSIONS (every distribution kernel) vermagic's release word is
   * not compared; before 6.4 the CRC of `module_layout` gives the mismatch
   * away, from 6.4 (module_layout gone) the size of struct module does.
   * Seen on 5.10, 6.1 and 6.12.
   */
  readonly foreignBuildCheck: 'module_layout' | 'struct_module_size';
}

const VERSION = /^(\d+)\.(\d+)(?:\.(\d+))?/;

export function parseKernelVersion(release: string): KernelVersion | undefined {
  const m = VERSION.exec(release);
  if (!m) return undefined;
  return { major: Number(m[1]), minor: Number(m[2]), patch: Number(m[3] ?? 0) };
}

function atLeast(v: KernelVersion | undefined, major: number, minor: number): boolean {
  if (!v) return false;
  return v.major > major || (v.major === major && v.minor >= minor);
}

export function kernelProfile(release: KernelRelease): KernelProfile {
  const version = parseKernelVersion(release);
  return {
    release,
    ...(version ? { version } : {}),
    supported: atLeast(version, MINIMUM_KERNEL.major, MINIMUM_KERNEL.minor),
    replaceFile: atLeast(version, 6, 11),
    stackOrderFile: atLeast(version, 6, 14),
    forceMarksOnlyRemoved: atLeast(version, 5, 18),
    foreignBuildCheck: atLeast(version, 6, 4) ? 'struct_module_size' : 'module_layout',
  };
}

/** Why the agent will not drive this kernel, or undefined when it will. */
export function unsupportedReason(profile: KernelProfile): string | undefined {
  if (profile.supported) return undefined;
  const what = profile.version
    ? `kernel ${profile.release} is older than ${MINIMUM_KERNEL.major}.${MINIMUM_KERNEL.minor}`
    : `cannot read a version from kernel release ${profile.release}`;
  return (
    `${what}: the agent drives livepatches on kernels ${SUPPORTED_RANGE} only ` +
    '(older kernels keep disabled patches and need the signal file written by hand); nothing will be loaded on this node'
  );
}

/** A forced transition: which direction, and whether the patch in transition replaces the others. */
export interface ForcedTransition {
  readonly enabling: boolean;
  readonly replace: boolean;
}

/**
 * Which loaded patches a force marks, so their modules can never be unloaded:
 * 'self' (the patch being disabled), 'others' (the patches a replace patch
 * supersedes), 'all', or 'none'.
 */
export function forceMarks(
  profile: KernelProfile,
  t: ForcedTransition,
): 'self' | 'others' | 'all' | 'none' {
  if (!profile.forceMarksOnlyRemoved) return 'all';
  if (!t.enabling) return 'self';
  return t.replace ? 'others' : 'none';
}

/** The kernel log line with which this release refuses module `name` built for another kernel. */
export function foreignBuildLogLine(profile: KernelProfile, name: string): string {
  return profile.foreignBuildCheck === 'module_layout'
    ? `${name}: disagrees about version of symbol module_layout`
    : `module ${name}: .gnu.linkonce.this_module section size must match the kernel's built struct module size at run time`;
}
