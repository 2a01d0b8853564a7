// Debian packages for the real-kernel harness, pinned by version, fetched
// through the lab's private apt (lab/debian.ts) and only unpacked with
// dpkg-deb: nothing is installed. A pin the archive dropped is resolved to
// the newest build from apt's lists (pins.ts decides; this module asks apt).
import { mkdir, readdir, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { cacheRoot } from '../cache.js';
import type { Logger } from '../../src/log.js';
import { runCommand } from '../command.js';
import { aptCache, aptGet, listsAgeMs, refreshLists, type PrivateApt } from '../debian.js';
import { DEBIAN_SOURCES, kernelPackages, type KernelLine } from './kernels.js';
import {
  atRelease,
  describeChoice,
  lineReleases,
  parseMadison,
  resolveKernelPin,
  resolvePackagePin,
  type Available,
  type KernelResolution,
  type PackagePin,
  type PackageResolution,
  type PinChoice,
} from './pins.js';

const LISTS_MAX_AGE_MS = 7 * 24 * 3600 * 1000;
/** A pin missing from lists older than this is looked for again in fresh ones before falling back. */
const LISTS_RECHECK_MS = 3600 * 1000;

function kernelApt(): PrivateApt {
  return { dir: join(cacheRoot(), 'debian-apt'), sources: DEBIAN_SOURCES, pinnedVersions: true };
}

async function debIn(dir: string): Promise<string | undefined> {
  try {
    return (await readdir(dir)).find((f) => f.endsWith('.deb'));
  } catch {
    return undefined;
  }
}

let refreshing: Promise<void> | undefined;

/** One refresh at a time: the kernel's packages download in parallel and share the lists. */
function refreshOnce(apt: PrivateApt, log: Logger): Promise<void> {
  refreshing ??= refreshLists(apt, log).finally(() => {
    refreshing = undefined;
  });
  return refreshing;
}

function packageDir(spec: string): string {
  return join(cacheRoot(), 'debian-packages', spec.replaceAll(':', '%3a'));
}

/** Whether `name=version` is in the cache already (then it needs no network). */
export async function isPackageCached(spec: string): Promise<boolean> {
  return (await debIn(packageDir(spec))) !== undefined;
}

/** The versions apt's lists have of `names` (none for a name they lack). */
async function madison(
  apt: PrivateApt,
  names: readonly string[],
  log: Logger,
): Promise<Available[]> {
  return parseMadison(await aptCache(apt, ['madison', ...names], log));
}

/** Fetches the package lists if they are missing or older than a week. */
export async function ensureLists(log: Logger): Promise<void> {
  const apt = kernelApt();
  if ((await listsAgeMs(apt)) > LISTS_MAX_AGE_MS) await refreshOnce(apt, log);
}

/**
 * Runs `attempt` against lists younger than a week; when it is not `settled`
 * (the pin is missing: dropped, or newer than the lists), once more against
 * fresh lists unless they are.
 */
async function withLists<R>(
  log: Logger,
  attempt: () => Promise<R>,
  settled: (r: R) => boolean,
): Promise<R> {
  await ensureLists(log);
  const first = await attempt();
  if (settled(first) || (await listsAgeMs(kernelApt())) < LISTS_RECHECK_MS) return first;
  await refreshOnce(kernelApt(), log);
  return attempt();
}

/** The kernel build to use for an uncached pin, by the lists as they are (apt-cache only, no network). */
export async function kernelFromLists(pin: KernelLine, log: Logger): Promise<KernelResolution> {
  const apt = kernelApt();
  const names = (await aptCache(apt, ['pkgnames', `linux-image-${pin.line}.`], log)).split('\n');
  const builds = [pin, ...lineReleases(pin, names).map((r) => atRelease(pin, r, ''))];
  const packages = builds.flatMap((k) => kernelPackages(k).map((s) => s.split('=')[0] ?? s));
  return resolveKernelPin(pin, false, await madison(apt, [...new Set(packages)], log));
}

/** The version to use of an uncached package pin, by the lists as they are. */
export async function packageFromLists(pin: PackagePin, log: Logger): Promise<PackageResolution> {
  return resolvePackagePin(pin, false, await madison(kernelApt(), [pin.name], log));
}

const pinServed = (r: KernelResolution | PackageResolution): boolean =>
  r.ok && r.choice.reason === 'archive';

export interface ResolvedKernel {
  readonly line: KernelLine;
  readonly choice: PinChoice;
}

/** The build of a pinned kernel line to use; `cached`: the pin's files are in the cache (no network then). */
export async function resolveKernelLine(
  pin: KernelLine,
  cached: boolean,
  log: Logger,
): Promise<ResolvedKernel> {
  const r = cached
    ? resolveKernelPin(pin, true, [])
    : await withLists(log, () => kernelFromLists(pin, log), pinServed);
  if (!r.ok) throw new Error(r.error);
  logChoice(`Linux ${pin.line}`, r.choice, log);
  return r;
}

/** The version of a pinned package to use: the cached or served pin, else its suite's newest. */
export async function resolvePinnedPackage(
  pin: PackagePin,
  log: Logger,
): Promise<{ readonly version: string; readonly choice: PinChoice }> {
  const cached = await isPackageCached(`${pin.name}=${pin.version}`);
  const r = cached
    ? resolvePackagePin(pin, true, [])
    : await withLists(log, () => packageFromLists(pin, log), pinServed);
  if (!r.ok) throw new Error(r.error);
  logChoice(pin.name, r.choice, log);
  return r;
}

function logChoice(what: string, choice: PinChoice, log: Logger): void {
  const fields = { pinned: choice.pinned, used: choice.used, reason: choice.reason };
  if (choice.reason === 'pin-gone') log.warn(describeChoice(what, choice), fields);
  else log.info(describeChoice(what, choice), fields);
}

/**
 * Downloads `name=version` once into the cache and returns the .deb's path.
 * Stale or missing lists are refreshed once before giving up on a version.
 */
export async function debianPackage(spec: string, log: Logger): Promise<string> {
  const dir = packageDir(spec);
  const cached = await debIn(dir);
  if (cached) return join(dir, cached);
  const apt = kernelApt();
  if ((await listsAgeMs(apt)) > LISTS_MAX_AGE_MS) await refreshOnce(apt, log);
  const tmp = `${dir}.tmp-${process.pid}`;
  await rm(tmp, { recursive: true, force: true });
  await mkdir(tmp, { recursive: true });
  try {
    await aptGet(apt, ['download', spec], log, tmp);
  } catch {
    await refreshOnce(apt, log);
    await aptGet(apt, ['download', spec], log, tmp).catch((err: unknown) => {
      throw new Error(
        `Debian no longer serves ${spec}: update the pins in lab/kernel/kernels.ts (${(err as Error).message})`,
      );
    });
  }
  await rm(dir, { recursive: true, force: true });
  await rename(tmp, dir);
  const deb = await debIn(dir);
  if (!deb) throw new Error(`apt-get download ${spec} left no .deb`);
  log.info('downloaded', { package: spec });
  return join(dir, deb);
}

/** Unpacks a .deb's files (not its scripts) under `dir`. */
export async function unpackDeb(deb: string, dir: string): Promise<void> {
  await mkdir(dir, { recursive: true });
  await runCommand('dpkg-deb', ['-x', deb, dir]);
}
