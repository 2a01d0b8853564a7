// The image `npm run image` builds, run as a container runtime would run it
// (its layers unpacked, its entrypoint started in a chroot as its user): what
// the controller and the agent need is there, nothing a developer needs is,
// and the same inputs give the same image. Both architectures: the arm64
// image runs under qemu-user (qemu-aarch64-static). Each architecture's bill
// of materials is checked against the CycloneDX schema and against what the
// image holds. Needs root (chroot, mounts) and apt (see
// support/cluster-host.ts); skipped elsewhere, unless required.
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { execFile, spawn } from 'node:child_process';
import { copyFile, mkdtemp, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { parse } from 'yaml';
import type { BuiltImage, BuiltPlatform } from '../../lab/image/build.js';
import { ensureHostPackages } from '../../lab/host-packages.js';
import { waitUntil } from '../../lab/wait.js';
import { createLogger } from '../../src/log.js';
import { operatorVersion, repositoryRoot } from '../../src/paths.js';
import { clusterHostProblem, clusterTestsRequired } from '../support/cluster-host.js';
import { cyclonedx15Validator } from '../support/cyclonedx.js';
import {
  dockerContext,
  dpkgStatus,
  elfMachine,
  installedNpmPackages,
} from '../support/image-contents.js';
import { kubeconfigPath, kubectl, kubectlJson, kubectlOk } from '../support/kubectl.js';
import { unpackImage, type UnpackedImage } from '../../lab/image/unpack.js';
import { buildTestImage } from '../support/image.js';
import { onPath } from '../support/which.js';

const run = promisify(execFile);
const MiB = 1024 * 1024;
const QEMU = 'qemu-aarch64-static';
let built: BuiltImage;
let image: UnpackedImage;
let arm64: UnpackedImage;
let layoutDir: string;
/** Each run's folders: two unpacked images, an archive, a cache of its own; gone afterwards. */
const scratch: string[] = [];

const skipReason =
  (await clusterHostProblem()) ??
  (await ensureHostPackages(
    { [QEMU]: 'qemu-user-static' },
    createLogger({ component: 'image-test', format: 'text', level: 'warn' }),
    'the arm64 image under qemu-user',
  ));
if (skipReason) process.stderr.write(`image test skipped: ${skipReason}\n`);
if (skipReason && clusterTestsRequired()) {
  test('the image test is required on this machine (LIVEPATCH_CLUSTER_TESTS=require)', () => {
    throw new Error(`the image test cannot run: ${skipReason}`);
  });
}

beforeAll(async () => {
  if (skipReason) return;
  const dir = await mkdtemp(join(tmpdir(), 'image-test-'));
  scratch.push(dir);
  built = await buildTestImage(join(dir, 'image.oci.tar'));
  image = await unpackImage(built.archive, join(dir, 'amd64'), 'amd64');
  arm64 = await unpackImage(built.archive, join(dir, 'arm64'), 'arm64');
  layoutDir = join(dir, 'amd64', 'archive');
  // qemu-user runs the arm64 programs inside their own root, as binfmt_misc would on a host.
  await copyFile(onPath(QEMU), join(arm64.root, QEMU));
}, 900_000);

afterAll(async () => {
  for (const dir of scratch) await rm(dir, { recursive: true, force: true });
});

/** The image's environment, as a runtime sets it from the config. */
function imageEnv(unpacked: UnpackedImage): Record<string, string> {
  const env: Record<string, string> = {};
  for (const entry of unpacked.config.Env ?? []) {
    const at = entry.indexOf('=');
    env[entry.slice(0, at)] = entry.slice(at + 1);
  }
  return env;
}

/** Runs a command in the image's root as `user` ("uid:gid"), with the image's environment. */
async function inImage(user: string, command: readonly string[]): Promise<string> {
  const { stdout, stderr } = await run('chroot', [`--userspec=${user}`, image.root, ...command], {
    env: imageEnv(image),
  });
  return stdout + stderr;
}

/** The file a command name runs from the image's PATH (qemu-user takes a path, not a name). */
async function onImagePath(unpacked: UnpackedImage, name: string): Promise<string> {
  const dirs = (imageEnv(unpacked)['PATH'] ?? '').split(':');
  for (const dir of dirs)
    if (await stat(join(unpacked.root, dir, name)).catch(() => undefined)) return join(dir, name);
  throw new Error(`${name} is not on the image's PATH`);
}

/** Runs an arm64 command in the arm64 image's root under qemu-user, as `user`. */
async function inArm64(user: string, command: readonly string[]): Promise<string> {
  const [program = '', ...args] = command;
  const path = program.startsWith('/') ? program : await onImagePath(arm64, program);
  const { stdout, stderr } = await run(
    'chroot',
    [`--userspec=${user}`, arm64.root, `/${QEMU}`, path, ...args],
    { env: imageEnv(arm64) },
  );
  return stdout + stderr;
}

const platformOf = (arch: string): BuiltPlatform => {
  const p = built.platforms.find((x) => x.platform.architecture === arch);
  if (!p) throw new Error(`no ${arch} image was built`);
  return p;
};

const blobJson = async <T>(digest: string): Promise<T> =>
  JSON.parse(
    await readFile(join(layoutDir, 'blobs', 'sha256', digest.replace('sha256:', '')), 'utf8'),
  ) as T;

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
    for (const p of built.platforms) {
      const compressed = p.layers.reduce((n, l) => n + l.size, 0);
      const unpacked = p.layers.reduce((n, l) => n + l.uncompressedSize, 0);
      process.stdout.write(
        `${p.platform.architecture} image size: ${(compressed / MiB).toFixed(1)} MiB compressed, ${(unpacked / MiB).toFixed(1)} MiB unpacked ` +
          `(layers: ${p.layers.map((l) => (l.uncompressedSize / MiB).toFixed(1)).join(' + ')} MiB)\n`,
      );
      // A budget, so that dev content creeping back in fails here: Node alone is about 120 MiB.
      expect(unpacked).toBeLessThan(240 * MiB);
    }
  });

  test('the same inputs give the same image, with nothing cached', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'image-again-'));
    scratch.push(dir);
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

(skipReason ? describe.skip : describe)('one archive for amd64 and arm64', () => {
  interface Descriptor {
    mediaType: string;
    digest: string;
    platform?: { architecture: string; os: string; variant?: string };
    annotations?: Record<string, string>;
  }

  test('an OCI image index holds one manifest per architecture, each with its platform, under the image name', async () => {
    const layout = JSON.parse(await readFile(join(layoutDir, 'index.json'), 'utf8')) as {
      manifests: Descriptor[];
    };
    expect(layout.manifests).toHaveLength(1);
    const [named] = layout.manifests;
    expect(named?.mediaType).toBe('application/vnd.oci.image.index.v1+json');
    expect(named?.digest).toBe(built.digest);
    expect(named?.annotations?.['io.containerd.image.name']).toBe(built.reference);
    const index = await blobJson<{ manifests: Descriptor[] }>(built.digest);
    expect(index.manifests.map((m) => [m.mediaType, m.platform])).toEqual([
      ['application/vnd.oci.image.manifest.v1+json', { architecture: 'amd64', os: 'linux' }],
      [
        'application/vnd.oci.image.manifest.v1+json',
        { architecture: 'arm64', os: 'linux', variant: 'v8' },
      ],
    ]);
    const layers: string[][] = [];
    for (const m of index.manifests) {
      const manifest = await blobJson<{ config: Descriptor; layers: Descriptor[] }>(m.digest);
      const config = await blobJson<{ architecture: string; os: string; variant?: string }>(
        manifest.config.digest,
      );
      // toEqual takes a missing variant (amd64) and an undefined one as the same.
      const { architecture, os, variant } = config;
      expect({ architecture, os, variant }).toEqual(m.platform);
      layers.push(manifest.layers.map((l) => l.digest));
    }
    // Debian and Node differ by architecture; the operator's layer (JavaScript) is one blob.
    const [amd, arm] = layers;
    expect(amd?.[0]).not.toBe(arm?.[0]);
    expect(amd?.[1]).not.toBe(arm?.[1]);
    expect(amd?.[2]).toBe(arm?.[2]);
  });

  test("each architecture's image holds that machine's programs: Node, the C library, kmod", async () => {
    const machines = { amd64: 0x3e, arm64: 0xb7 };
    for (const [unpacked, arch] of [
      [image, 'amd64'],
      [arm64, 'arm64'],
    ] as const) {
      for (const program of ['usr/local/bin/node', 'bin/kmod'])
        expect(await elfMachine(join(unpacked.root, program))).toBe(machines[arch]);
      expect((await dpkgStatus(unpacked.root)).get('libc6')).toMatch(new RegExp(` ${arch}$`));
    }
  });
});

(skipReason ? describe.skip : describe)('the arm64 image under qemu-user', () => {
  const NODE = 'image-arm64-node';
  let agent: ReturnType<typeof spawn> | undefined;

  afterAll(async () => {
    agent?.kill('SIGKILL');
    await kubectl(['delete', 'node', NODE, '--ignore-not-found']);
    await kubectl(['delete', 'lpn', NODE, '--ignore-not-found']);
  });

  test('its entrypoint, as its own user, is livepatch-operator of this version; node and modinfo run', async () => {
    const entrypoint = arm64.config.Entrypoint ?? [];
    expect(entrypoint).toEqual(image.config.Entrypoint);
    expect(arm64.config.User).toBe(image.config.User);
    expect(await inArm64(arm64.config.User ?? '', [...entrypoint, '--version'])).toBe(
      `${operatorVersion()}\n`,
    );
    expect(await inArm64(arm64.config.User ?? '', ['node', '--version'])).toBe(
      `v${platformOf('arm64').node.version}\n`,
    );
    expect(await inArm64(arm64.config.User ?? '', ['node', '-p', 'process.arch'])).toBe('arm64\n');
    expect(await inArm64('0:0', ['modinfo', '--version'])).toMatch(/^kmod version \d+/);
  }, 120_000);

  test("its agent, on a kernel without livepatch support (this machine's, through qemu-user), says so and loads nothing", async () => {
    // The API server listens on this machine's loopback, which the chroot shares.
    await writeFile(join(arm64.root, 'tmp', 'kubeconfig'), await readFile(kubeconfigPath()));
    const node = { apiVersion: 'v1', kind: 'Node', metadata: { name: NODE } };
    await kubectlOk(['apply', '-f', '-'], JSON.stringify(node));
    // As the DaemonSet runs it: root, the host's /proc and /sys, in a mount namespace of its own.
    const script =
      'mount --rbind /proc "$1/proc"; mount --rbind /sys "$1/sys"; root=$1; shift; exec chroot "$root" "$@"';
    agent = spawn(
      'unshare',
      [
        ...['--mount', '--propagation', 'private', '--', 'sh', '-ec', script, 'sh', arm64.root],
        ...[`/${QEMU}`, ...(arm64.config.Entrypoint ?? []), 'agent', '--backend=sysfs'],
        ...[`--node=${NODE}`, '--kubeconfig=/tmp/kubeconfig', '--metrics-port=0'],
      ],
      { env: imageEnv(arm64), stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let output = '';
    agent.stdout?.on('data', (d: Buffer) => (output += d.toString()));
    agent.stderr?.on('data', (d: Buffer) => (output += d.toString()));
    type Lpn = {
      status?: {
        kernelRelease?: string;
        patches?: unknown[];
        conditions?: { type: string; status: string; reason: string; message: string }[];
      };
    };
    const ready = (o: Lpn) => o.status?.conditions?.find((c) => c.type === 'Ready');
    const lpn = await waitUntil(
      'the arm64 agent to report',
      () => kubectlJson<Lpn>(['get', 'lpn', NODE]).catch((): Lpn => ({})),
      (o) => ready(o)?.reason === 'NoLivepatchSupport',
      120_000,
      1000,
    ).catch((err: unknown) => {
      throw new Error(`${(err as Error).message}\nthe agent's output: ${output.slice(-3000)}`);
    });
    expect(ready(lpn)).toMatchObject({ status: 'False', reason: 'NoLivepatchSupport' });
    expect(ready(lpn)?.message).toContain('built without livepatch support (CONFIG_LIVEPATCH)');
    const release = (await readFile('/proc/sys/kernel/osrelease', 'utf8')).trim();
    expect(lpn.status?.kernelRelease).toBe(release);
    expect(lpn.status?.patches ?? []).toEqual([]);
  }, 180_000);
});

(skipReason ? describe.skip : describe)("each architecture's bill of materials", () => {
  interface Component {
    type: string;
    group?: string;
    name: string;
    version: string;
    purl?: string;
    properties?: { name: string; value: string }[];
  }
  interface Bom {
    specVersion: string;
    metadata: { component: { purl: string } };
    components: Component[];
  }
  const bom = async (arch: string): Promise<Bom> =>
    JSON.parse(await readFile(platformOf(arch).sbom, 'utf8')) as Bom;

  test('is CycloneDX 1.5 JSON that the CycloneDX schema accepts, and names its image by digest', async () => {
    const validate = await cyclonedx15Validator();
    for (const arch of ['amd64', 'arm64']) {
      const doc = await bom(arch);
      expect(doc.specVersion).toBe('1.5');
      expect(validate(doc)).toEqual([]);
      const digest = encodeURIComponent(platformOf(arch).manifestDigest);
      expect(doc.metadata.component.purl).toContain(`@${digest}?arch=${arch}&`);
    }
    // The validator does catch what the schema forbids.
    expect(
      validate({ bomFormat: 'CycloneDX', specVersion: '1.5', components: [{ type: 'gadget' }] }),
    ).not.toEqual([]);
  });

  test("lists exactly the Debian packages of the image's dpkg status and the npm packages of its node_modules, and its Node", async () => {
    for (const [unpacked, arch] of [
      [image, 'amd64'],
      [arm64, 'arm64'],
    ] as const) {
      const doc = await bom(arch);
      const debs = new Map<string, string>();
      for (const c of doc.components) {
        const m = /^pkg:deb\/debian\/([^@]+)@([^?]+)\?arch=([^&]+)&/.exec(c.purl ?? '');
        if (m)
          debs.set(
            decodeURIComponent(m[1] ?? ''),
            `${decodeURIComponent(m[2] ?? '')} ${m[3] ?? ''}`,
          );
      }
      expect(debs).toEqual(await dpkgStatus(unpacked.root));
      const npm = doc.components.flatMap((c) => {
        const path = c.properties?.find((p) => p.name === 'cdx:npm:package:path')?.value;
        const name = c.group ? `${c.group}/${c.name}` : c.name;
        return path ? [`${path.replace(/^app\//, '')}/${name}@${c.version}`] : [];
      });
      const installed = await installedNpmPackages(join(unpacked.root, 'app'));
      expect(installed.length).toBeGreaterThan(20);
      expect(npm.sort()).toEqual(installed.sort());
      const node = doc.components.find((c) => c.name.startsWith('node-linux-'));
      expect(node?.name).toBe(`node-linux-${arch === 'amd64' ? 'x64' : 'arm64'}`);
      expect(node?.version).toBe(platformOf(arch).node.version);
    }
    expect(await inImage('0:0', ['node', '--version'])).toBe(
      `v${platformOf('amd64').node.version}\n`,
    );
  });
});

(skipReason ? describe.skip : describe)('the Dockerfile, a thin wrapper of this build', () => {
  test("its build context holds every input of `npm run image` and the source of every file of the image's /app", async () => {
    const repo = repositoryRoot();
    const context = await dockerContext(repo);
    // What `npm run image` compiles (tsc's own list), and what it reads besides.
    const { stdout } = await run(
      process.execPath,
      [
        join(repo, 'node_modules', 'typescript', 'bin', 'tsc'),
        '-p',
        'tsconfig.build.json',
        '--listFilesOnly',
      ],
      { cwd: repo, maxBuffer: 64 << 20 },
    );
    const compiled = stdout
      .split('\n')
      .filter((f) => f.startsWith(`${repo}/`) && !f.includes('/node_modules/'))
      .map((f) => f.slice(repo.length + 1));
    const read = [
      'package.json',
      'package-lock.json',
      'tsconfig.json',
      'tsconfig.build.json',
      'tsconfig.product.json',
    ];
    const chart = ['charts/livepatch-operator/values.yaml', 'charts/livepatch-operator/Chart.yaml'];
    expect(compiled).toContain('lab/image/main.ts');
    expect([...compiled, ...read, ...chart].filter((f) => !context.has(f))).toEqual([]);
    // The image's files: /app/package.json from package.json, node_modules from the lock, dist from the sources.
    const app = join(image.root, 'app');
    expect((await readdir(app)).sort()).toEqual(['dist', 'node_modules', 'package.json']);
    const { stdout: files } = await run('find', [join(app, 'dist'), '-type', 'f']);
    const sources = files
      .split('\n')
      .filter((f) => f !== '')
      .map((f) => f.slice(join(app, 'dist').length + 1).replace(/\.js$/, '.ts'));
    expect(sources.length).toBeGreaterThan(50);
    expect(sources.filter((f) => !context.has(f))).toEqual([]);
  });
});
