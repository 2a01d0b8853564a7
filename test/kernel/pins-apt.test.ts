// A pin Debian does not serve, resolved against the real apt lists of the
// lab's private apt state (lab/kernel/debian.ts): the newest build of the same
// line, one that apt can fetch. apt-cache queries only; the lists are fetched
// first only if this machine never had them (or they are a week old).
import { beforeAll, describe, expect, test } from '@jest/globals';
import { createLogger } from '../../src/log.js';
import { compareDebianVersions } from '../../lab/debian-version.js';
import { ensureLists, kernelFromLists, packageFromLists } from '../../lab/kernel/debian.js';
import { BUSYBOX, KERNEL_LINES, kernelPackages } from '../../lab/kernel/kernels.js';

const log = createLogger({
  component: 'pins-apt',
  format: 'text',
  level: process.env['LOG_LEVEL'] ?? 'warn',
});

const line61 = KERNEL_LINES.find((l) => l.line === '6.1');

describe("pins Debian does not serve, against this machine's apt lists", () => {
  beforeAll(async () => {
    await ensureLists(log);
  }, 10 * 60_000);

  test('a 6.1 pin that never existed (6.1.0-0) gives the newest 6.1 build the lists have, with all its packages', async () => {
    if (!line61) throw new Error('no 6.1 line in lab/kernel/kernels.ts');
    const bogus = { ...line61, release: '6.1.0-0-amd64', version: '6.1.0-0' };
    const r = await kernelFromLists(bogus, log);
    if (!r.ok) throw new Error(r.error);
    expect(r.choice.reason).toBe('pin-gone');
    expect(r.choice.pinned).toBe('6.1.0-0-amd64 6.1.0-0');
    expect(r.line.release).toMatch(/^6\.1\.0-\d+-amd64$/);
    expect(r.line.version).toMatch(/^6\.1\.\d+-/);
    // Never older than the real pin, which the lists hold (or have replaced with something newer).
    expect(compareDebianVersions(r.line.version, line61.version)).toBeGreaterThanOrEqual(0);
    // Image, headers and kbuild all at that version: what the suite would download next.
    expect(kernelPackages(r.line)).toEqual([
      `linux-image-${r.line.release}-unsigned=${r.line.version}`,
      `linux-headers-${r.line.release}=${r.line.version}`,
      `linux-headers-${r.line.release.replace(/-amd64$/, '')}-common=${r.line.version}`,
      `linux-kbuild-6.1=${r.line.version}`,
    ]);
  });

  test("busybox at a version bookworm never had gives bookworm's newest busybox-static", async () => {
    const r = await packageFromLists({ ...BUSYBOX, version: '1:0.0-0' }, log);
    if (!r.ok) throw new Error(r.error);
    expect(r.choice.reason).toBe('pin-gone');
    expect(r.version).toMatch(/^1:1\.35\./);
    expect(compareDebianVersions(r.version, BUSYBOX.version)).toBeGreaterThanOrEqual(0);
  });
});
