// The image `npm run image` builds, run as a container runtime would run it
// (its layers unpacked, its entrypoint started in a chroot as its user): what
// the controller and the agent need is there, nothing a developer needs is,
// and the same inputs give the same image. Needs root (chroot) and apt (see
// support/cluster-host.ts); skipped elsewhere, unless required.
import { beforeAll, describe, expect, test } from '@jest/globals';
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, readdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { parse } from 'yaml';
import type { BuiltImage } from '../../lab/image/build.js';
import { operatorVersion, repositoryRoot } from '../../src/paths.js';
import { clusterHostProblem, clusterTestsRequired } from '../support/cluster-host.js';
import { unpackImage, type UnpackedImage } from '../../lab/image/unpack.js';
import { buildTestImage } from '../support/image.js';

const run = promisify(execFile);
const MiB = 1024 * 1024;
let built: BuiltImage;
let image: UnpackedImage;

const skipReason = await clusterHostProblem();
if (skipReason) process.stderr.write(`image test skipped: ${skipReason}\n`);
if (skipReason && clusterTestsRequired()) {
  test('the image test is required on this machine (LIVEPATCH_CLUSTER_TESTS=require)', () => {
    throw new Error(`the image test cannot run: ${skipReason}`);
  });
}

beforeAll(async () => {
  if (skipReason) return;
  const dir = await mkdtemp(join(tmpdir(), 'image-test-'));
  built = await buildTestImage(join(dir, 'image.oci.tar'));
  image = await unpackImage(built.archive, dir);
}, 600_000);

/** Runs a command in the image's root as `user` ("uid:gid"), with the image's environment. */
async function inImage(user: string, command: readonly string[]): Promise<string> {
  const env: Record<string, string> = {};
  for (const entry of image.config.Env ?? []) {
    const at = entry.indexOf('=');
    env[entry.slice(0, at)] = entry.slice(at + 1);
  }
  const { stdout, stderr } = await run('chroot', [`--userspec=${user}`, image.root, ...command], {
    env,
  });
  return stdout + stderr;
}

(skipReason ? describe.skip : describe)('the image', () => {
  test('its entrypoint, as its own unprivileged user, is livepatch-operator of this version', async () => {
    const entrypoint = image.config.Entrypoint ?? [];
    expect(entrypoint).toEqual(['/usr/local/bin/node', '/app/dist/src/cli/main.js']);
    expect(await inImage(image.config.User ?? '', [...entrypoint, '--version'])).toBe(
      `${operatorVersion()}\n`,
    );
    const usage = await inImage(image.config.User ?? '', [
      ...entrypoint,
      ...(image.config.Cmd ?? []),
    ]);
    expect(usage).toMatch(/Usage: livepatch-operator <command>/);
    expect(usage).toMatch(/controller .*\n.*agent/s);
    // The lab's commands (demo, cluster, fleet) need the lab, which the image does not hold.
    expect(usage).not.toMatch(/^\s+(demo|cluster|fleet)\s/m);
    const pkg = JSON.parse(await readFile(join(image.root, 'app', 'package.json'), 'utf8')) as {
      bin: Record<string, string>;
    };
    expect(Object.values(pkg.bin).every((b) => b.startsWith('dist/src/'))).toBe(true);
  });

  test("the controller's user is not root, has a name, and is the one the chart runs the controller as", async () => {
    expect(image.config.User).toBe('1000:1000');
    const passwd = await readFile(join(image.root, 'etc', 'passwd'), 'utf8');
    expect(passwd).toMatch(/^livepatch:x:1000:1000:/m);
    const values = parse(
      await readFile(join(repositoryRoot(), 'charts', 'livepatch-operator', 'values.yaml'), 'utf8'),
    ) as { controller: { podSecurityContext: { runAsUser: number; runAsNonRoot: boolean } } };
    expect(values.controller.podSecurityContext).toMatchObject({
      runAsUser: 1000,
      runAsNonRoot: true,
    });
  });

  test("the agent's kmod tools run from the image's PATH: insmod, rmmod, modinfo", async () => {
    for (const tool of ['insmod', 'rmmod', 'modinfo'])
      expect(await inImage('0:0', [tool, '-V'])).toMatch(/^kmod version \d+/);
  });

  test('xz runs from the image, for .ko.xz modules', async () => {
    expect(await inImage('0:0', ['xz', '--version'])).toMatch(/^xz \(XZ Utils\)/);
  });

  test('nothing only development needs: no compiler, test tools, sources, maps, declarations or tests', async () => {
    const modules = await readdir(join(image.root, 'app', 'node_modules'));
    for (const dev of ['typescript', 'jest', 'eslint', 'prettier', 'ts-jest', 'node', '@peculiar'])
      expect(modules).not.toContain(dev);
    expect(await readdir(join(image.root, 'app', 'dist'))).toEqual(['agent', 'src']);
    const { stdout } = await run('find', [
      join(image.root, 'app'),
      '-name',
      '*.ts',
      '-o',
      '-name',
      '*.map',
    ]);
    expect(stdout).toBe('');
    const compressed = built.layers.reduce((n, l) => n + l.size, 0);
    const unpacked = built.layers.reduce((n, l) => n + l.uncompressedSize, 0);
    process.stdout.write(
      `image size: ${(compressed / MiB).toFixed(1)} MiB compressed, ${(unpacked / MiB).toFixed(1)} MiB unpacked ` +
        `(layers: ${built.layers.map((l) => (l.uncompressedSize / MiB).toFixed(1)).join(' + ')} MiB)\n`,
    );
    // A budget, so that dev content creeping back in fails here: Node alone is about 120 MiB.
    expect(unpacked).toBeLessThan(240 * MiB);
  });

  test('the same inputs give the same image, with nothing cached', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'image-again-'));
    const previous = process.env['LIVEPATCH_CACHE_DIR'];
    process.env['LIVEPATCH_CACHE_DIR'] = join(dir, 'cache');
    try {
      const again = await buildTestImage(join(dir, 'image.oci.tar'));
      expect(again.digest).toBe(built.digest);
    } finally {
      if (previous === undefined) delete process.env['LIVEPATCH_CACHE_DIR'];
      else process.env['LIVEPATCH_CACHE_DIR'] = previous;
    }
  }, 600_000);
});
