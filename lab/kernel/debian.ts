// Debian packages for the real-kernel harness, pinned by version, fetched
// through the lab's private apt (lab/debian.ts) and only unpacked with
// dpkg-deb: nothing is installed.
import { mkdir, readdir, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { cacheRoot } from '../cache.js';
import type { Logger } from '../../src/log.js';
import { runCommand } from '../command.js';
import { aptGet, listsAgeMs, refreshLists, type PrivateApt } from '../debian.js';
import { DEBIAN_SOURCES } from './kernels.js';

const LISTS_MAX_AGE_MS = 7 * 24 * 3600 * 1000;

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

/**
 * Downloads `name=version` once into the cache and returns the .deb's path.
 * Stale or missing lists are refreshed once before giving up on a version.
 */
export async function debianPackage(spec: string, log: Logger): Promise<string> {
  const dir = join(cacheRoot(), 'debian-packages', spec.replaceAll(':', '%3a'));
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
