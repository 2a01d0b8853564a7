// Debian packages for the real-kernel harness, fetched through a private apt
// state under the project's cache: no system configuration is touched, apt
// checks every file against Debian's signed indexes, and nothing is
// installed (the packages are only unpacked with dpkg-deb).
import { mkdir, readdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { cacheRoot } from '../../src/localcluster/assets.js';
import type { Logger } from '../../src/log.js';
import { runCommand } from './command.js';
import { DEBIAN_SOURCES } from './kernels.js';

const LISTS_MAX_AGE_MS = 7 * 24 * 3600 * 1000;

function aptDir(): string {
  return join(cacheRoot(), 'debian-apt');
}

function aptOptions(): string[] {
  const dir = aptDir();
  const opts: Record<string, string> = {
    'Dir::Etc::SourceList': join(dir, 'sources.list'),
    'Dir::Etc::SourceParts': '/dev/null',
    'Dir::State::Lists': join(dir, 'lists'),
    'Dir::Cache': join(dir, 'cache'),
    'Dir::State::status': '/dev/null',
    'Debug::NoLocking': '1',
    'Acquire::Languages': 'none',
    // The versions are pinned and every file is checked against the signed index; an
    // archive snapshot whose Release has passed its Valid-Until still serves them.
    'Acquire::Check-Valid-Until': 'false',
  };
  // As root, apt downloads as _apt, which cannot write into the cache.
  if (process.getuid?.() === 0) opts['APT::Sandbox::User'] = 'root';
  return Object.entries(opts).flatMap(([k, v]) => ['-o', `${k}=${v}`]);
}

async function ageMs(path: string): Promise<number> {
  try {
    return Date.now() - (await stat(path)).mtimeMs;
  } catch {
    return Infinity;
  }
}

async function updateLists(log: Logger): Promise<void> {
  const dir = aptDir();
  await mkdir(join(dir, 'lists', 'partial'), { recursive: true });
  await mkdir(join(dir, 'cache', 'archives', 'partial'), { recursive: true });
  await writeFile(join(dir, 'sources.list'), DEBIAN_SOURCES.join('\n') + '\n');
  log.info('refreshing the package lists of the private apt state', { dir });
  // A mirror caught mid-sync serves indexes that do not match their Release file: try again.
  for (let attempt = 1; ; attempt++) {
    try {
      await runCommand('apt-get', [...aptOptions(), 'update', '--error-on=any']);
      break;
    } catch (err) {
      if (attempt >= 4) throw err;
      log.warn('apt-get update failed; retrying', {
        attempt,
        error: (err as Error).message.slice(-300),
      });
      await delay(5000 * attempt);
    }
  }
  await writeFile(join(dir, 'updated'), new Date().toISOString());
}

async function debIn(dir: string): Promise<string | undefined> {
  try {
    return (await readdir(dir)).find((f) => f.endsWith('.deb'));
  } catch {
    return undefined;
  }
}

/**
 * Downloads `name=version` once into the cache and returns the .deb's path.
 * Stale or missing lists are refreshed once before giving up on a version.
 */
export async function debianPackage(spec: string, log: Logger): Promise<string> {
  const dir = join(cacheRoot(), 'debian-packages', spec.replaceAll(':', '%3a'));
  const cached = await debIn(dir);
  if (cached) return join(dir, cached);
  if ((await ageMs(join(aptDir(), 'updated'))) > LISTS_MAX_AGE_MS) await updateLists(log);
  const tmp = `${dir}.tmp-${process.pid}`;
  await rm(tmp, { recursive: true, force: true });
  await mkdir(tmp, { recursive: true });
  try {
    await runCommand('apt-get', [...aptOptions(), 'download', spec], { cwd: tmp });
  } catch {
    await updateLists(log);
    await runCommand('apt-get', [...aptOptions(), 'download', spec], { cwd: tmp }).catch(
      (err: unknown) => {
        throw new Error(
          `Debian no longer serves ${spec}: update the pins in test/kernel/kernels.ts (${(err as Error).message})`,
        );
      },
    );
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
