// Branded strings for identifiers that are easy to mix up: a LivePatch's
// object name, the kernel module it loads, and the node it runs on are all
// plain strings on the wire, and passing one where another belongs is a bug
// the compiler should catch.

declare const brand: unique symbol;
type Brand<T, B extends string> = T & { readonly [brand]: B };

/** Kernel module name of a livepatch; also its /sys/kernel/livepatch/<name> directory. */
export type PatchName = Brand<string, 'PatchName'>;
/** metadata.name of a LivePatch object. */
export type LivePatchName = Brand<string, 'LivePatchName'>;
/** metadata.name of a Node, and of its LivePatchNode. */
export type NodeName = Brand<string, 'NodeName'>;
/** A kernel release as `uname -r` prints it. */
export type KernelRelease = Brand<string, 'KernelRelease'>;

/**
 * A module name as the kernel keeps it: letters of either case (kpatch-build
 * and klp-build keep the patch file's, vendors ship lkp_Ubuntu_…), digits and
 * underscores; at most 55 characters (MODULE_NAME_LEN less its NUL). Never a path.
 */
export const PATCH_NAME_PATTERN = /^[A-Za-z0-9_]{1,55}$/;
const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

/** A DNS-1123 subdomain: what most object names (a ConfigMap's, a Node's) must be. */
export function isDnsSubdomain(value: string): boolean {
  return value.length <= 253 && DNS_SUBDOMAIN.test(value);
}

/** A DNS-1123 label: what a namespace's name must be. */
export function isDnsLabel(value: string): boolean {
  return value.length <= 63 && DNS_LABEL.test(value);
}

export class InvalidNameError extends Error {
  override readonly name = 'InvalidNameError';
}

/** Checks a patch name before it is used in a path; throws if it could escape its directory. */
export function patchName(value: string): PatchName {
  if (!PATCH_NAME_PATTERN.test(value)) {
    throw new InvalidNameError(
      `invalid patch name ${JSON.stringify(value)}: must match ${PATCH_NAME_PATTERN.source}`,
    );
  }
  return value as PatchName;
}

/**
 * The name the kernel loads a module under, from the name its file or modinfo
 * gives: kbuild and kmod turn every dash into an underscore
 * (livepatch-fix.ko loads as livepatch_fix).
 */
export function kernelModuleName(name: string): string {
  return name.replaceAll('-', '_');
}

export function nodeName(value: string): NodeName {
  if (!isDnsSubdomain(value)) {
    throw new InvalidNameError(
      `invalid node name ${JSON.stringify(value)}: must be a DNS subdomain`,
    );
  }
  return value as NodeName;
}

export function kernelRelease(value: string): KernelRelease {
  const trimmed = value.trim();
  if (trimmed === '' || trimmed.length > 64 || /\s/.test(trimmed)) {
    throw new InvalidNameError(`invalid kernel release ${JSON.stringify(value)}`);
  }
  return trimmed as KernelRelease;
}
