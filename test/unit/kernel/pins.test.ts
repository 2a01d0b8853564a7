// Which Debian build the real-kernel suite uses when its pin is cached, served, or gone from the archive.
import { describe, expect, test } from '@jest/globals';
import { compareDebianVersions } from '../../../lab/debian-version.js';
import type { KernelLine } from '../../../lab/kernel/kernels.js';
import {
  describeChoice,
  parseMadison,
  resolveKernelPin,
  resolvePackagePin,
} from '../../../lab/kernel/pins.js';

const BOOKWORM = 'http://deb.debian.org/debian bookworm/main amd64 Packages';
const BACKPORTS = 'http://deb.debian.org/debian bookworm-backports/main amd64 Packages';

/** `apt-cache madison` as it prints the packages of one kernel build. */
function madisonOf(
  release: string,
  version: string,
  kbuild: string,
  source = BOOKWORM,
  omit = '',
): string {
  const common = `linux-headers-${release.replace(/-amd64$/, '')}-common`;
  return [`linux-image-${release}-unsigned`, `linux-headers-${release}`, common, kbuild]
    .filter((n) => n !== omit)
    .map((n) => ` ${n} | ${version} | ${source}`)
    .join('\n');
}

const pin61: KernelLine = {
  line: '6.1',
  release: '6.1.0-50-amd64',
  version: '6.1.176-1',
  kbuild: 'linux-kbuild-6.1',
};

/** The 6.1 line as bookworm lists it after the next point release: the pin's ABI gone, two others (and other flavours). */
const afterPointRelease = parseMadison(
  [
    madisonOf('6.1.0-47-amd64', '6.1.170-3', 'linux-kbuild-6.1'),
    madisonOf('6.1.0-52-amd64', '6.1.192-1', 'linux-kbuild-6.1'),
    madisonOf('6.1.0-53-cloud-amd64', '6.1.199-1', 'linux-kbuild-6.1'),
    madisonOf('6.1.0-53-rt-amd64', '6.1.199-1', 'linux-kbuild-6.1'),
  ].join('\n'),
);

describe('a kernel pin', () => {
  test('in the cache: used as pinned, whatever the archive says (no lists needed)', () => {
    const r = resolveKernelPin(pin61, true, []);
    expect(r).toEqual({
      ok: true,
      line: pin61,
      choice: {
        pinned: '6.1.0-50-amd64 6.1.176-1',
        used: '6.1.0-50-amd64 6.1.176-1',
        reason: 'cached',
      },
    });
  });

  test('served by the archive: used as pinned, even when a newer build of the line is there', () => {
    const listing = parseMadison(
      madisonOf('6.1.0-50-amd64', '6.1.176-1', 'linux-kbuild-6.1') +
        '\n' +
        madisonOf('6.1.0-52-amd64', '6.1.192-1', 'linux-kbuild-6.1'),
    );
    const r = resolveKernelPin(pin61, false, listing);
    expect(r.ok && r.line).toEqual(pin61);
    expect(r.ok && r.choice.reason).toBe('archive');
  });

  test('gone from the archive: the newest build of the same line and flavour, with its own release', () => {
    const r = resolveKernelPin(pin61, false, afterPointRelease);
    expect(r).toEqual({
      ok: true,
      line: {
        line: '6.1',
        release: '6.1.0-52-amd64',
        version: '6.1.192-1',
        kbuild: 'linux-kbuild-6.1',
      },
      choice: {
        pinned: '6.1.0-50-amd64 6.1.176-1',
        used: '6.1.0-52-amd64 6.1.192-1',
        reason: 'pin-gone',
      },
    });
    if (r.ok)
      expect(describeChoice('Linux 6.1', r.choice)).toBe(
        'Linux 6.1: pinned 6.1.0-50-amd64 6.1.176-1 is no longer in the archive; using 6.1.0-52-amd64 6.1.192-1',
      );
  });

  test('a pin that never existed (6.1.0-0) resolves the same way', () => {
    const bogus = { ...pin61, release: '6.1.0-0-amd64', version: '6.1.0-0' };
    const r = resolveKernelPin(bogus, false, afterPointRelease);
    expect(r.ok && r.choice.used).toBe('6.1.0-52-amd64 6.1.192-1');
  });

  test('a build without its headers or kbuild at the same version is passed over', () => {
    const listing = parseMadison(
      madisonOf('6.1.0-47-amd64', '6.1.170-3', 'linux-kbuild-6.1') +
        '\n' +
        madisonOf(
          '6.1.0-52-amd64',
          '6.1.192-1',
          'linux-kbuild-6.1',
          BOOKWORM,
          'linux-headers-6.1.0-52-amd64',
        ),
    );
    const r = resolveKernelPin(pin61, false, listing);
    expect(r.ok && r.choice.used).toBe('6.1.0-47-amd64 6.1.170-3');
  });

  test('6.12, whose kbuild is named per release, falls back to the newest release with its own kbuild', () => {
    const pin612: KernelLine = {
      line: '6.12',
      release: '6.12.95+deb12-amd64',
      version: '6.12.95-1~bpo12+1',
      kbuild: 'linux-kbuild-6.12.95+deb12',
    };
    const listing = parseMadison(
      [
        madisonOf(
          '6.12.90+deb12.1-amd64',
          '6.12.90-2~bpo12+1',
          'linux-kbuild-6.12.90+deb12.1',
          BACKPORTS,
        ),
        madisonOf(
          '6.12.99+deb12-amd64',
          '6.12.99-1~bpo12+1',
          'linux-kbuild-6.12.99+deb12',
          BACKPORTS,
        ),
        // 6.1 packages share the prefix, not the line.
        madisonOf('6.1.0-99-amd64', '6.1.999-1', 'linux-kbuild-6.1'),
      ].join('\n'),
    );
    const r = resolveKernelPin(pin612, false, listing);
    expect(r.ok && r.line).toEqual({
      line: '6.12',
      release: '6.12.99+deb12-amd64',
      version: '6.12.99-1~bpo12+1',
      kbuild: 'linux-kbuild-6.12.99+deb12',
    });
  });

  test('nothing of the line in the lists: an error that says what to do', () => {
    const only510 = parseMadison(madisonOf('5.10.0-32-amd64', '5.10.223-1', 'linux-kbuild-5.10'));
    const r = resolveKernelPin(pin61, false, only510);
    expect(r.ok).toBe(false);
    if (!r.ok) {
      expect(r.error).toContain(
        'pinned Linux 6.1 (6.1.0-50-amd64 6.1.176-1) is not in the archive',
      );
      expect(r.error).toContain("apt-cache madison 'linux-image-6.1.*-unsigned'");
      expect(r.error).toContain('lab/kernel/kernels.ts');
    }
  });
});

describe('a package pin (busybox in the initramfs)', () => {
  const pin = { name: 'busybox-static', version: '1:1.35.0-4+deb12u1+b1', suite: 'bookworm' };
  const listing = parseMadison(
    [
      ' busybox-static | 1:1.35.0-4+deb12u2 | http://deb.debian.org/debian bookworm/main amd64 Packages',
      ' busybox-static | 1:1.30.1-6+b3 | http://deb.debian.org/debian bullseye/main amd64 Packages',
      ' busybox-static | 1:1.37.0-6 | http://deb.debian.org/debian trixie/main amd64 Packages',
    ].join('\n'),
  );

  test('cached: the pin', () => {
    const r = resolvePackagePin(pin, true, []);
    expect(r.ok && [r.version, r.choice.reason]).toEqual(['1:1.35.0-4+deb12u1+b1', 'cached']);
  });

  test('gone: the newest of the same package in the same suite, not a newer suite', () => {
    const r = resolvePackagePin(pin, false, listing);
    expect(r.ok && r.choice).toEqual({
      pinned: 'busybox-static=1:1.35.0-4+deb12u1+b1',
      used: 'busybox-static=1:1.35.0-4+deb12u2',
      reason: 'pin-gone',
    });
  });

  test('gone with no version left in the suite: an error naming the package and suite', () => {
    const r = resolvePackagePin({ ...pin, suite: 'buster' }, false, listing);
    expect(r.ok ? '' : r.error).toContain(
      'buster has neither busybox-static=1:1.35.0-4+deb12u1+b1',
    );
  });
});

describe("Debian's version order, as dpkg has it", () => {
  test.each([
    ['6.1.192-1', '6.1.176-1'],
    ['6.1.176-2', '6.1.176-1'],
    ['6.1.10-1', '6.1.9-1'],
    ['6.12.95-1~bpo12+1', '6.12.90-2~bpo12+1'],
    ['6.12.95-1', '6.12.95-1~bpo12+1'],
    ['1:1.30.1-6', '1.35.0-4'],
    ['1:1.35.0-4+deb12u2', '1:1.35.0-4+deb12u1+b1'],
    ['1.0a', '1.0'],
    ['1.0', '1.0~rc1'],
  ])('%s is newer than %s', (newer, older) => {
    expect(compareDebianVersions(newer, older)).toBeGreaterThan(0);
    expect(compareDebianVersions(older, newer)).toBeLessThan(0);
  });

  test('equal versions compare equal, leading zeros and a missing epoch included', () => {
    expect(compareDebianVersions('0:6.1.076-1', '6.1.76-1')).toBe(0);
  });
});
