// What the real-kernel harness needs from the host, and getting it: qemu to
// boot the kernels, kmod (insmod, rmmod and modinfo run inside the VMs from
// the host's own root), gcc-12 and make for the test modules (5.10's too), xz for 6.12's
// compressed modules, and apt/dpkg with Debian's keyring for the packages. On
// a Debian host as root, missing tools are installed with apt-get; anywhere
// else the suite is skipped with the reason.
import { arch, platform } from 'node:os';
import type { Logger } from '../../src/log.js';
import { DEBIAN_KEYRING } from '../debian.js';
import { ensureHostPackages, present, type HostNeeds } from '../host-packages.js';

/** Each tool, and the Debian package that provides it. */
const NEEDS: HostNeeds = {
  'qemu-system-x86_64': 'qemu-system-x86',
  modinfo: 'kmod',
  make: 'make',
  'gcc-12': 'gcc-12',
  xz: 'xz-utils',
  'dpkg-deb': 'dpkg',
};

/**
 * Makes the host ready, or says why it cannot be: undefined when ready,
 * else the reason the real-kernel suite is skipped.
 */
export async function prepareHost(log: Logger): Promise<string | undefined> {
  if (platform() !== 'linux' || arch() !== 'x64')
    return `real kernels need an x86-64 Linux host (this is ${platform()}/${arch()})`;
  if (!(await present(DEBIAN_KEYRING)) || !(await present('apt-get')))
    return `real kernels come from Debian's archive: this host has no apt-get or ${DEBIAN_KEYRING}`;
  return ensureHostPackages(NEEDS, log, 'the real-kernel suite');
}

/** Set by .ci/run on machines that can boot the kernels: a skipped suite is a failure there. */
export function realKernelsRequired(): boolean {
  return process.env['LIVEPATCH_REAL_KERNELS'] === 'require';
}
