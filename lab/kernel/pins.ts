// Which build to use for a pinned Debian version, decided from what is cached
// and what apt's lists offer, without touching either: Debian drops a point
// release's kernel from the archive at the next one, so a pin goes stale on
// its own. Order: the pin from the cache, the pin from the archive, else the
// newest build of the same kernel line (or package, for busybox).
import { compareDebianVersions } from '../debian-version.js';
import { kernelPackages, type KernelLine } from './kernels.js';

/** One line of `apt-cache madison`: a version of a package and the suite that has it. */
export interface Available {
  readonly name: string;
  readonly version: string;
  readonly suite: string;
}

/** `name | version | uri suite/component arch Packages` per line. */
export function parseMadison(text: string): Available[] {
  const out: Available[] = [];
  for (const line of text.split('\n')) {
    const [name, version, source] = line.split('|').map((f) => f.trim());
    const suite = source?.split(/\s+/)[1]?.split('/')[0];
    if (name && version && suite) out.push({ name, version, suite });
  }
  return out;
}

/** What was pinned, what is used, and why; written beside each kernel line's results. */
export interface PinChoice {
  readonly pinned: string;
  readonly used: string;
  /** cached: the pin from the lab's cache, no network; archive: the pin from Debian; pin-gone: the newest build instead. */
  readonly reason: 'cached' | 'archive' | 'pin-gone';
}

/** The log line that says what a choice means. */
export function describeChoice(what: string, c: PinChoice): string {
  if (c.reason === 'pin-gone')
    return `${what}: pinned ${c.pinned} is no longer in the archive; using ${c.used}`;
  return `${what}: using pinned ${c.used}${c.reason === 'cached' ? ' from the cache' : ''}`;
}

const kernelId = (k: KernelLine): string => `${k.release} ${k.version}`;

const has = (available: readonly Available[], spec: string): boolean => {
  const [name, version] = spec.split('=');
  return available.some((a) => a.name === name && a.version === version);
};

/** A release's upstream major.minor and flavour: 6.1.0-50-amd64 → 6.1, amd64; 6.12.95+deb12-cloud-amd64 → 6.12, cloud-amd64. */
function releaseParts(release: string): { line: string; flavour: string } | undefined {
  const m = /^(\d+\.\d+)\.[^-]+(?:-\d+)?-(.+)$/.exec(release);
  return m?.[1] && m[2] ? { line: m[1], flavour: m[2] } : undefined;
}

/** The releases of the pin's line and flavour among package names (apt-cache pkgnames). */
export function lineReleases(pin: KernelLine, names: readonly string[]): string[] {
  const want = releaseParts(pin.release);
  return names.flatMap((n) => {
    const release = /^linux-image-(.+)-unsigned$/.exec(n)?.[1];
    const got = release ? releaseParts(release) : undefined;
    return release && got && got.line === want?.line && got.flavour === want.flavour
      ? [release]
      : [];
  });
}

/** The pin's line at another release: kbuild is named per major.minor (5.10, 6.1) or per release (6.12). */
export function atRelease(pin: KernelLine, release: string, version: string): KernelLine {
  const perLine = pin.kbuild === `linux-kbuild-${pin.line}`;
  const kbuild = perLine ? pin.kbuild : `linux-kbuild-${release.replace(/-amd64$/, '')}`;
  return { line: pin.line, release, version, kbuild };
}

export type KernelResolution =
  | { readonly ok: true; readonly line: KernelLine; readonly choice: PinChoice }
  | { readonly ok: false; readonly error: string };

/**
 * The kernel build to use for a pinned line. `available` lists the versions of
 * the image, headers and kbuild packages of every release of the line.
 */
export function resolveKernelPin(
  pin: KernelLine,
  cached: boolean,
  available: readonly Available[],
): KernelResolution {
  const pinned = kernelId(pin);
  if (cached) return { ok: true, line: pin, choice: { pinned, used: pinned, reason: 'cached' } };
  const complete = (k: KernelLine): boolean => kernelPackages(k).every((s) => has(available, s));
  if (complete(pin))
    return { ok: true, line: pin, choice: { pinned, used: pinned, reason: 'archive' } };
  const names = [...new Set(available.map((a) => a.name))];
  const builds = lineReleases(pin, names)
    .flatMap((release) =>
      available
        .filter((a) => a.name === `linux-image-${release}-unsigned`)
        .map((a) => atRelease(pin, release, a.version)),
    )
    .filter(complete)
    .sort((a, b) => compareDebianVersions(b.version, a.version));
  const newest = builds[0];
  if (!newest)
    return {
      ok: false,
      error:
        `pinned Linux ${pin.line} (${pinned}) is not in the archive and apt's lists have no other build of ` +
        `the ${pin.line} line with its headers and kbuild; pick one that \`apt-cache madison 'linux-image-${pin.line}.*-unsigned'\` ` +
        `lists and set it in lab/kernel/kernels.ts`,
    };
  return {
    ok: true,
    line: newest,
    choice: { pinned, used: kernelId(newest), reason: 'pin-gone' },
  };
}

/** A package pinned to a version of one suite. */
export interface PackagePin {
  readonly name: string;
  readonly version: string;
  readonly suite: string;
}

export type PackageResolution =
  | { readonly ok: true; readonly version: string; readonly choice: PinChoice }
  | { readonly ok: false; readonly error: string };

/** The version of a pinned package to use: the pin if cached or served, else the suite's newest. */
export function resolvePackagePin(
  pin: PackagePin,
  cached: boolean,
  available: readonly Available[],
): PackageResolution {
  const pinned = `${pin.name}=${pin.version}`;
  if (cached)
    return { ok: true, version: pin.version, choice: { pinned, used: pinned, reason: 'cached' } };
  if (has(available, pinned))
    return { ok: true, version: pin.version, choice: { pinned, used: pinned, reason: 'archive' } };
  const newest = available
    .filter((a) => a.name === pin.name && a.suite === pin.suite)
    .map((a) => a.version)
    .sort((a, b) => compareDebianVersions(b, a))[0];
  if (!newest)
    return {
      ok: false,
      error: `${pin.suite} has neither ${pinned} nor any other version of ${pin.name}; check \`apt-cache madison ${pin.name}\` and the pin`,
    };
  return {
    ok: true,
    version: newest,
    choice: { pinned, used: `${pin.name}=${newest}`, reason: 'pin-gone' },
  };
}
