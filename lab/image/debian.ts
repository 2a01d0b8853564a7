// The image's Debian packages, fetched by the lab's private apt (lab/debian.ts):
// the archive's signed indexes give the versions and the checksums apt
// verifies each file against.
import { createHash } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from '../../src/log.js';
import { aptGet, debLine, refreshLists, type PrivateApt } from '../debian.js';

/** Debian 12; the image's glibc must be at least the pinned Node binary's (2.28). */
export const SUITE = 'bookworm';
/** Its version, as package URLs name the distribution (distro=debian-12). */
export const SUITE_VERSION = '12';

export interface DebianPackage {
  readonly name: string;
  readonly version: string;
  /** Debian's architecture of the file: the image's, or `all`. */
  readonly architecture: string;
  readonly file: string;
  readonly sha256: string;
}

const SOURCES = [
  debLine('https://deb.debian.org/debian', SUITE),
  debLine('https://deb.debian.org/debian', `${SUITE}-updates`),
  debLine('https://deb.debian.org/debian-security', `${SUITE}-security`),
];

async function sha256File(path: string): Promise<string> {
  return createHash('sha256')
    .update(await readFile(path))
    .digest('hex');
}

/** apt's simulated install: `Inst name (version … [arch])` per package, dependencies included. */
function planned(simulation: string): { name: string; version: string; architecture: string }[] {
  return [...simulation.matchAll(/^Inst (\S+) \((\S+) .*\[(\S+)\]\)/gm)].map((m) => ({
    name: m[1] ?? '',
    version: m[2] ?? '',
    architecture: m[3] ?? '',
  }));
}

/**
 * Downloads `names` and everything they depend on from Debian, for one
 * architecture (each its own apt state, cacheDir/apt-ARCH); returns the package files.
 */
export async function fetchDebianPackages(
  names: readonly string[],
  architecture: string,
  cacheDir: string,
  log: Logger,
): Promise<DebianPackage[]> {
  const apt: PrivateApt = {
    dir: join(cacheDir, `apt-${architecture}`),
    sources: SOURCES,
    architecture,
  };
  // The newest packages of the suite, every time: security updates reach the image.
  await refreshLists(apt, log);
  const plan = planned(await aptGet(apt, ['install', '--simulate', '-y', ...names], log));
  await aptGet(apt, ['install', '--download-only', '-y', ...names], log);
  const archives = join(apt.dir, 'cache', 'archives');
  const present = await readdir(archives);
  return Promise.all(
    plan.map(async ({ name, version, architecture: arch }) => {
      // apt names the file name_version_arch.deb, with ':' (an epoch) written as %3a.
      const f = `${name}_${version.replaceAll(':', '%3a')}_${arch}.deb`;
      if (!present.includes(f)) throw new Error(`apt planned ${f} but did not download it`);
      const file = join(archives, f);
      return { name, version, architecture: arch, file, sha256: await sha256File(file) };
    }),
  );
}
