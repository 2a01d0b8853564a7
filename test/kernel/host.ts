// What the real-kernel harness needs from the host, and getting it: qemu to
// boot the kernels, kmod (insmod, rmmod and modinfo run inside the VMs from
// the host's own root), gcc-12 and make for the test modules, xz for 6.12's
// compressed modules, and apt/dpkg with Debian's keyring for the packages. On
// a Debian host as root, missing tools are installed with apt-get; anywhere
// else the suite is skipped with the reason.
import { constants } from 'node:fs';
import { access } from 'node:fs/promises';
import { arch, platform } from 'node:os';
import type { Logger } from '../../src/log.js';
import { runCommand } from './command.js';

/** Each tool, and the Debian package that provides it. */
const TOOLS: readonly (readonly [string, string])[] = [
  ['qemu-system-x86_64', 'qemu-system-x86'],
  ['modinfo', 'kmod'],
  ['make', 'make'],
  ['gcc-12', 'gcc-12'],
  ['xz', 'xz-utils'],
  ['dpkg-deb', 'dpkg'],
];
const KEYRING = '/usr/share/keyrings/debian-archive-keyring.gpg';
const PATH_DIRS = ['/usr/local/sbin', '/usr/local/bin', '/usr/sbin', '/usr/bin', '/sbin', '/bin'];

async function exists(path: string, mode = constants.F_OK): Promise<boolean> {
  try {
    await access(path, mode);
    return true;
  } catch {
    return false;
  }
}

async function onPath(tool: string): Promise<boolean> {
  const dirs = [...(process.env['PATH'] ?? '').split(':'), ...PATH_DIRS];
  for (const dir of dirs) if (dir && (await exists(`${dir}/${tool}`, constants.X_OK))) return true;
  return false;
}

async function missingPackages(): Promise<string[]> {
  const missing: string[] = [];
  for (const [tool, pkg] of TOOLS) if (!(await onPath(tool))) missing.push(pkg);
  return missing;
}

/**
 * Makes the host ready, or says why it cannot be: undefined when ready,
 * else the reason the real-kernel suite is skipped.
 */
export async function prepareHost(log: Logger): Promise<string | undefined> {
  if (platform() !== 'linux' || arch() !== 'x64')
    return `real kernels need an x86-64 Linux host (this is ${platform()}/${arch()})`;
  if (!(await exists(KEYRING)) || !(await onPath('apt-get')))
    return `real kernels come from Debian's archive: this host has no apt-get or ${KEYRING}`;
  let missing = await missingPackages();
  if (missing.length === 0) return undefined;
  if (process.getuid?.() !== 0)
    return `missing host packages: ${missing.join(' ')} (install them, e.g. sudo apt-get install ${missing.join(' ')})`;
  log.info('installing host packages for the real-kernel suite', { packages: missing });
  const env = { DEBIAN_FRONTEND: 'noninteractive' };
  await runCommand('apt-get', ['update'], { env });
  await runCommand('apt-get', ['install', '-y', '--no-install-recommends', ...missing], { env });
  missing = await missingPackages();
  return missing.length ? `apt-get could not install ${missing.join(' ')}` : undefined;
}

/** Set by .ci/run on machines that can boot the kernels: a skipped suite is a failure there. */
export function realKernelsRequired(): boolean {
  return process.env['LIVEPATCH_REAL_KERNELS'] === 'require';
}
