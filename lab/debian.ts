// apt in a configuration of its own for the lab (the image's packages, the
// kernels and their headers): its own sources, lists, dpkg status and cache
// under the lab's cache folder, so nothing of the host's apt state is read or
// changed, and apt still checks every file against Debian's signed indexes.
import { mkdir, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import type { Logger } from '../src/log.js';
import { runCommand } from './command.js';

export const DEBIAN_KEYRING = '/usr/share/keyrings/debian-archive-keyring.gpg';

/** One private apt state: a folder and the suites it reads. */
export interface PrivateApt {
  readonly dir: string;
  /** `deb …` lines, each signed-by DEBIAN_KEYRING. */
  readonly sources: readonly string[];
  /**
   * Accept a Release file past its Valid-Until: right where versions are
   * pinned (each file is still checked against the signed index), so an
   * archive snapshot keeps serving them.
   */
  readonly pinnedVersions?: boolean;
  /** Debian's name of the architecture whose packages this state fetches (default amd64). */
  readonly architecture?: string;
}

/** A `deb` line of the main component, signed by Debian's archive keyring. */
export const debLine = (uri: string, suite: string): string =>
  `deb [signed-by=${DEBIAN_KEYRING}] ${uri} ${suite} main`;

function aptOptions(a: PrivateApt): string[] {
  const opts: Record<string, string> = {
    'Dir::Etc::SourceList': join(a.dir, 'sources.list'),
    'Dir::Etc::SourceParts': '/dev/null',
    'Dir::Etc::Preferences': '/dev/null',
    'Dir::Etc::PreferencesParts': '/dev/null',
    'Dir::State::Lists': join(a.dir, 'lists'),
    // An empty dpkg database: every dependency is fetched, nothing of the host counts as installed.
    'Dir::State::status': join(a.dir, 'status'),
    'Dir::Cache': join(a.dir, 'cache'),
    'APT::Architecture': a.architecture ?? 'amd64',
    'APT::Architectures::': a.architecture ?? 'amd64',
    'APT::Install-Recommends': 'false',
    'Acquire::Languages': 'none',
    'Debug::NoLocking': '1',
  };
  if (a.pinnedVersions) opts['Acquire::Check-Valid-Until'] = 'false';
  // As root, apt downloads as _apt, which cannot write into this cache.
  if (process.getuid?.() === 0) opts['APT::Sandbox::User'] = 'root';
  return Object.entries(opts).flatMap(([k, v]) => ['-o', `${k}=${v}`]);
}

/** apt-get with the private state; resolves with its stdout. */
export function aptGet(
  a: PrivateApt,
  args: readonly string[],
  log: Logger,
  cwd?: string,
): Promise<string> {
  return runCommand('apt-get', [...aptOptions(a), ...args], {
    cwd,
    env: { DEBIAN_FRONTEND: 'noninteractive' },
    onStderr: (text) => {
      log.debug(text.trimEnd());
    },
    missingHint: 'the lab fetches Debian packages with apt and debian-archive-keyring',
  });
}

/** apt-cache with the private state (queries of the lists only); resolves with its stdout. */
export function aptCache(a: PrivateApt, args: readonly string[], log: Logger): Promise<string> {
  return runCommand('apt-cache', [...aptOptions(a), ...args], {
    onStderr: (text) => {
      log.debug(text.trimEnd());
    },
    missingHint: 'the lab reads Debian package lists with apt-cache',
  });
}

const UPDATE_ATTEMPTS = 4;

/** Writes the sources and fetches the package lists (a mirror caught mid-sync is tried again). */
export async function refreshLists(a: PrivateApt, log: Logger): Promise<void> {
  await mkdir(join(a.dir, 'lists', 'partial'), { recursive: true });
  await mkdir(join(a.dir, 'cache', 'archives', 'partial'), { recursive: true });
  await writeFile(join(a.dir, 'sources.list'), a.sources.join('\n') + '\n');
  await writeFile(join(a.dir, 'status'), '');
  log.info('fetching the Debian package lists', { dir: a.dir });
  for (let attempt = 1; ; attempt++) {
    try {
      await aptGet(a, ['update', '--error-on=any'], log);
      break;
    } catch (err) {
      if (attempt >= UPDATE_ATTEMPTS) throw err;
      log.warn('apt-get update failed; retrying', {
        attempt,
        error: (err as Error).message.slice(-300),
      });
      await delay(5000 * attempt);
    }
  }
  await writeFile(join(a.dir, 'updated'), new Date().toISOString());
}

/** How long ago the lists were refreshed (Infinity: never). */
export async function listsAgeMs(a: PrivateApt): Promise<number> {
  try {
    return Date.now() - (await stat(join(a.dir, 'updated'))).mtimeMs;
  } catch {
    return Infinity;
  }
}
