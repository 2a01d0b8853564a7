// The real kernels the agent is tested on, pinned in one place: Debian 11's
// 5.10 LTS (force marks every patch), Debian 12's 6.1 LTS (no `replace` file)
// and Debian 12 backports' 6.12 LTS (has it). All are built with CONFIG_LIVEPATCH=y and reliable stack traces. The
// packages come from Debian's archive through a private apt state
// (debian.ts), verified by apt against Debian's signed indexes. To move to a
// newer build, change the versions here: every cache is keyed by them. A pin
// the archive no longer serves still works from the cache; without it, the
// newest build of the same line is used and reported (pins.ts).
import { debLine } from '../debian.js';

export interface KernelLine {
  /** Short name used in test titles and results. */
  readonly line: string;
  /** `uname -r` of the kernel. */
  readonly release: string;
  /** Debian source version of the image, headers and kbuild packages. */
  readonly version: string;
  /** The kbuild package's name (Debian names it per major.minor on 5.10 and 6.1, per release on 6.12). */
  readonly kbuild: string;
}

export const KERNEL_LINES: readonly KernelLine[] = [
  {
    line: '5.10',
    release: '5.10.0-32-amd64',
    version: '5.10.223-1',
    kbuild: 'linux-kbuild-5.10',
  },
  {
    line: '6.1',
    release: '6.1.0-50-amd64',
    version: '6.1.176-1',
    kbuild: 'linux-kbuild-6.1',
  },
  {
    line: '6.12',
    release: '6.12.95+deb12-amd64',
    version: '6.12.95-1~bpo12+1',
    kbuild: 'linux-kbuild-6.12.95+deb12',
  },
];

/** The initramfs's shell and tools. */
export const BUSYBOX = {
  name: 'busybox-static',
  version: '1:1.35.0-4+deb12u1+b1',
  suite: 'bookworm',
} as const;

/** Where they come from: bullseye for 5.10, bookworm for 6.1 and busybox, bookworm-backports for 6.12. */
export const DEBIAN_SOURCES: readonly string[] = [
  debLine('http://deb.debian.org/debian', 'bullseye'),
  debLine('http://deb.debian.org/debian', 'bookworm'),
  debLine('http://deb.debian.org/debian', 'bookworm-backports'),
];

/** The image, headers and kbuild packages of one kernel line, as `name=version` for apt. */
export function kernelPackages(k: KernelLine): string[] {
  const flavourless = k.release.replace(/-amd64$/, '');
  return [
    `linux-image-${k.release}-unsigned=${k.version}`,
    `linux-headers-${k.release}=${k.version}`,
    `linux-headers-${flavourless}-common=${k.version}`,
    `${k.kbuild}=${k.version}`,
  ];
}
