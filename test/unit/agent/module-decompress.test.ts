// Compressed modules (.ko.xz, .ko.zst, .ko.gz) as distributions ship them:
// the checksum is the published file's, and what the agent checks (ELF,
// modinfo, release) and loads is the plain .ko, decompressed with xz, zstd and
// gzip as a host has them.
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { execFileSync } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { compressionOf, decompressModule } from '../../../agent/module/module-decompress.js';
import { ModuleSourceError } from '../../../agent/module/module-errors.js';
import { createModuleFetcher, sha256 } from '../../../agent/module/module-source.js';
import { elfModuleProblem } from '../../../agent/kernel/elf.js';
import { buildSimModule, serializeSimModule } from '../../../agent/kernel/sim/sim-module.js';
import { SimulatedKernel } from '../../../agent/kernel/sim/simulator.js';
import { runAction } from '../../../agent/pass/actions.js';
import { kernelRelease, type PatchName } from '../../../src/api/names.js';
import { ManualClock } from '../../../src/clock.js';
import { createLogger } from '../../../src/log.js';
import { desiredPatch } from '../../support/desired-patch.js';
import { minimalModuleElf } from '../../support/elf.js';

const NAME = 'livepatch_CVE_2024_1086' as PatchName;
const PLAIN = minimalModuleElf();
let dir = '';

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'decompress-test-'));
  await writeFile(join(dir, 'm.ko'), PLAIN);
  execFileSync('xz', ['-k', join(dir, 'm.ko')]);
  execFileSync('zstd', ['-q', '-k', join(dir, 'm.ko')]);
  await writeFile(join(dir, 'm.ko.gz'), gzipSync(PLAIN));
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const fetcher = (maxBytes = 4096) =>
  createModuleFetcher({
    moduleDir: join(dir, 'modules'),
    hostRoot: '/',
    download: { maxBytes },
  });

async function fetchFile(file: string, maxBytes?: number): Promise<string> {
  const path = join(dir, file);
  return fetcher(maxBytes)(NAME, { hostPath: path, sha256: sha256(await readFile(path)) });
}

async function refusal(file: string, maxBytes?: number): Promise<ModuleSourceError> {
  const err = await fetchFile(file, maxBytes).catch((e: unknown) => e);
  expect(err).toBeInstanceOf(ModuleSourceError);
  return err as ModuleSourceError;
}

describe('compressed modules are made plain before any check', () => {
  test.each(['m.ko.xz', 'm.ko.zst', 'm.ko.gz'])(
    '%s: verified by its own checksum, kept as the plain ELF module the checks and insmod read',
    async (file) => {
      const path = await fetchFile(file);
      const bytes = await readFile(path);
      expect(bytes).toEqual(PLAIN);
      expect(elfModuleProblem(bytes, bytes.length, process.arch)).toBeUndefined();
      expect((await readdir(join(dir, 'modules'))).filter((f) => f.includes('download'))).toEqual(
        [],
      );
    },
  );

  test('a plain module is kept as it is', async () => {
    expect(await readFile(await fetchFile('m.ko'))).toEqual(PLAIN);
  });

  test('the compression is read from the first bytes, not the file name', () => {
    expect(compressionOf(Uint8Array.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00, 0]))).toBe('xz');
    expect(compressionOf(Uint8Array.from([0x28, 0xb5, 0x2f, 0xfd]))).toBe('zstd');
    expect(compressionOf(Uint8Array.from([0x1f, 0x8b, 8]))).toBe('gzip');
    expect(compressionOf(PLAIN)).toBeUndefined();
  });

  test('a damaged compressed file is refused, saying so, and leaves nothing', async () => {
    await writeFile(join(dir, 'bad.ko.gz'), Buffer.from([0x1f, 0x8b, 8, 0, 1, 2, 3, 4, 5]));
    const err = await refusal('bad.ko.gz');
    expect(err.reason).toBe('ModuleRejected');
    expect(err.message).toMatch(/is gzip-compressed but does not decompress .*nothing was loaded/);
    expect(await readdir(join(dir, 'modules'))).not.toContainEqual(
      expect.stringContaining('download'),
    );
  });

  test('the size limit holds for what it decompresses to', async () => {
    await writeFile(join(dir, 'big.ko.gz'), gzipSync(Buffer.alloc(64 * 1024)));
    const err = await refusal('big.ko.gz');
    expect(err.message).toContain('(gzip-decompressed) is more than 4096 bytes');
  });

  test('without an xz command an xz module is refused with what to do', async () => {
    const err = await decompressModule(
      join(dir, 'm.ko.xz'),
      join(dir, 'out.ko'),
      4096,
      'm.ko.xz',
      join(dir, 'no-such-xz'),
    ).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ModuleSourceError);
    expect((err as Error).message).toBe(
      'the module file is xz-compressed and this node has no xz command to decompress it; nothing was loaded. ' +
        "Install xz-utils in the agent's image, or publish the module uncompressed or as .ko.zst or .ko.gz",
    );
  });
});

describe('the checks before insmod read the decompressed module', () => {
  const RELEASE = kernelRelease('6.12.95+deb12-amd64');

  /** Publishes a .ko.gz of a module built for `built`, fetches it as the agent does, and loads it. */
  async function fetchAndLoad(kernel: SimulatedKernel, built: string) {
    const file = join(dir, `built-for-${built}.ko.gz`);
    await writeFile(
      file,
      gzipSync(serializeSimModule(buildSimModule({ name: NAME, kernel: built }))),
    );
    const path = await fetcher(64 * 1024)(NAME, {
      hostPath: file,
      sha256: sha256(await readFile(file)),
    });
    return runAction(
      { kind: 'load', livePatch: desiredPatch().livePatch, patchName: NAME, path },
      {
        backend: kernel,
        release: RELEASE,
        startFetch: () => undefined,
        unloadTimeoutMs: 1000,
        log: createLogger({ component: 'test', level: 'error', format: 'text' }),
      },
    );
  }

  test('a compressed build for another release is refused, naming both releases; one for this release loads', async () => {
    const kernel = new SimulatedKernel({ release: RELEASE, clock: new ManualClock() });
    const refused = await fetchAndLoad(kernel, '6.12.94+deb12-amd64');
    expect(refused).toMatchObject({ reason: 'ModuleRejected', retryable: false });
    expect(refused?.message).toContain(
      'the module file was built for kernel 6.12.94+deb12-amd64 (vermagic "6.12.94+deb12-amd64 SMP preempt mod_unload modversions"), this node runs 6.12.95+deb12-amd64; nothing was loaded',
    );
    expect(await kernel.isLoaded(NAME)).toBe(false);
    expect(await fetchAndLoad(kernel, RELEASE)).toBeUndefined();
    expect((await kernel.patches()).map((p) => p.name)).toEqual([NAME]);
  });
});
