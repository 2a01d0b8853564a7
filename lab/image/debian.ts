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

export interface DebianPackage {
  readonly name: string;
  readonly version: string;
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

/** apt's simulated install: `Inst name (version …)` per package, dependencies included. */
function planned(simulation: string): { name: string; version: string }[] {
  return [...simulation.matchAll(/^Inst (\S+) \((\S+) /gm)].map((m) => ({
    name: m[1] ?? '',
    version: m[2] ?? '',
  }));
}

/** Downloads `names` and everything they depend on from Debian; returns the package files. */
export async function fetchDebianPackages(
  names: readonly string[],
  cacheDir: string,
  log: Logger,
): Promise<DebianPackage[]> {
  const apt: PrivateApt = { dir: cacheDir, sources: SOURCES };
  // The newest packages of the suite, every time: security updates reach the image.
  await refreshLists(apt, log);
  const plan = planned(await aptGet(apt, ['install', '--simulate', '-y', ...names], log));
  await aptGet(apt, ['install', '--download-only', '-y', ...names], log);
  const archives = join(cacheDir, 'cache', 'archives');
  const present = await readdir(archives);
  return Promise.all(
    plan.map(async ({ name, version }) => {
      // apt names the file name_version_arch.deb, with ':' (an epoch) written as %3a.
      const prefix = `${name}_${version.replaceAll(':', '%3a')}_`;
      const f = present.find((p) => p.startsWith(prefix) && p.endsWith('.deb'));
      if (!f) throw new Error(`apt planned ${name} ${version} but did not download it`);
      const file = join(archives, f);
      return { name, version, file, sha256: await sha256File(file) };
    }),
  );
}
