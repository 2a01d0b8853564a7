// The image's Debian packages, fetched by apt in a configuration of its own
// (its own sources, package lists and cache under the project's cache folder),
// so nothing of the host's apt state is read or changed: the archive's signed
// indexes give the versions and the checksums apt verifies each file against.
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from '../log.js';

/** Debian 12; the image's glibc must be at least the pinned Node binary's (2.28). */
export const SUITE = 'bookworm';
const KEYRING = '/usr/share/keyrings/debian-archive-keyring.gpg';

export interface DebianPackage {
  readonly name: string;
  readonly version: string;
  readonly file: string;
  readonly sha256: string;
}

function sourcesList(): string {
  const line = (uri: string, suite: string): string =>
    `deb [signed-by=${KEYRING}] ${uri} ${suite} main\n`;
  return (
    line('https://deb.debian.org/debian', SUITE) +
    line('https://deb.debian.org/debian', `${SUITE}-updates`) +
    line('https://deb.debian.org/debian-security', `${SUITE}-security`)
  );
}

function aptOptions(dir: string): string[] {
  const o = (k: string, v: string): string[] => ['-o', `${k}=${v}`];
  return [
    ...o('Dir::Etc::SourceList', join(dir, 'sources.list')),
    ...o('Dir::Etc::SourceParts', '/dev/null'),
    ...o('Dir::Etc::Preferences', '/dev/null'),
    ...o('Dir::Etc::PreferencesParts', '/dev/null'),
    ...o('Dir::State', join(dir, 'state')),
    // An empty dpkg database: every dependency is fetched, nothing of the host counts as installed.
    ...o('Dir::State::status', join(dir, 'status')),
    ...o('Dir::Cache', join(dir, 'cache')),
    ...o('APT::Architecture', 'amd64'),
    ...o('APT::Architectures::', 'amd64'),
    ...o('APT::Install-Recommends', 'false'),
    ...o('Debug::NoLocking', '1'),
    // As root, apt downloads as _apt, which cannot write into this cache.
    ...(process.getuid?.() === 0 ? o('APT::Sandbox::User', 'root') : []),
  ];
}

function apt(args: readonly string[], log: Logger): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn('apt-get', args, {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, LC_ALL: 'C', DEBIAN_FRONTEND: 'noninteractive' },
    });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    child.on('error', (err) => {
      reject(
        new Error(
          `cannot run apt-get (${err.message}): building the image needs apt and debian-archive-keyring (a Debian or Ubuntu host)`,
        ),
      );
    });
    child.on('exit', (code) => {
      log.debug(out);
      if (code === 0) resolve(out);
      else
        reject(
          new Error(`apt-get ${args.at(-1) ?? ''} failed (exit ${code}):\n${out.slice(-3000)}`),
        );
    });
  });
}

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
  await mkdir(join(cacheDir, 'state', 'lists', 'partial'), { recursive: true });
  await mkdir(join(cacheDir, 'cache', 'archives', 'partial'), { recursive: true });
  await writeFile(join(cacheDir, 'sources.list'), sourcesList());
  await writeFile(join(cacheDir, 'status'), '');
  const options = aptOptions(cacheDir);
  log.info('fetching the Debian package lists', { suite: SUITE });
  await apt([...options, 'update'], log);
  const plan = planned(await apt([...options, 'install', '--simulate', '-y', ...names], log));
  await apt([...options, 'install', '--download-only', '-y', ...names], log);
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
