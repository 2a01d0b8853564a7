// Everything a test VM of one kernel line needs, fetched and built once and
// cached by version (like lab/go/controlplane): the kernel image, an initramfs
// (busybox, the virtio, 9p and network drivers, and init.sh), and the
// project's test modules built against that kernel's Debian headers.
import { createHash } from 'node:crypto';
import { copyFile, mkdir, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { cacheRoot, withLock } from '../cache.js';
import type { Logger } from '../../src/log.js';
import { repositoryRoot } from '../../src/paths.js';
import { runCommand } from '../command.js';
import { initramfs, type CpioEntry } from './cpio.js';
import {
  debianPackage,
  isPackageCached,
  resolveKernelLine,
  resolvePinnedPackage,
  unpackDeb,
} from './debian.js';
import { BUSYBOX, kernelPackages, type KernelLine } from './kernels.js';
import type { PinChoice } from './pins.js';

export interface KernelAssets {
  /** The build in use: the pinned one, or the newest of its line when Debian dropped the pin. */
  readonly line: KernelLine;
  /** How `line` was chosen, and how the initramfs's busybox was. */
  readonly pins: { readonly kernel: PinChoice; readonly busybox: PinChoice };
  readonly vmlinuz: string;
  readonly initramfs: string;
  /** Folder with the test modules (lpt_*.ko) built for this kernel. */
  readonly modules: string;
}

/** Drivers the VM needs before it can reach the host's files and the test API server. */
const BOOT_MODULES = ['virtio_pci', '9pnet_virtio', '9p', 'virtio_net'];
const BUSYBOX_APPLETS = [
  'sh',
  'mount',
  'insmod',
  'cat',
  'cut',
  'echo',
  'ip',
  'mkdir',
  'chroot',
  'poweroff',
];

export const TEST_MODULES = [
  'lpt_cmdline',
  'lpt_cmdline_v2',
  'lpt_holder',
  'lpt_stall',
  'lpt_Upper',
  'lpt_stall_twin',
  'lpt_sleeper',
  'lpt_signal',
  'lpt_noklp',
  'lpt_prepatch_fail',
  'lpt_prepatch_wait',
  'lpt_state',
  'lpt_state_none',
  'lpt_state_v1',
  'lpt_state_v2',
  'lpt_stall_force',
] as const;

function modulesSourceDir(): string {
  return join(repositoryRoot(), 'lab', 'kernel', 'modules');
}

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch {
    return false;
  }
}

/** Runs `build` into a fresh temporary folder and renames it into place, under a lock. */
async function cached(
  dir: string,
  log: Logger,
  what: string,
  build: (tmp: string) => Promise<void>,
): Promise<string> {
  if (await exists(dir)) return dir;
  await mkdir(join(dir, '..'), { recursive: true });
  return withLock(
    `${dir}.lock`,
    async () => {
      if (await exists(dir)) return dir;
      const tmp = `${dir}.tmp-${process.pid}`;
      await rm(tmp, { recursive: true, force: true });
      await mkdir(tmp, { recursive: true });
      const started = Date.now();
      await build(tmp);
      await rename(tmp, dir);
      log.info(`${what} ready`, { dir, seconds: Math.round((Date.now() - started) / 1000) });
      return dir;
    },
    log,
    what,
  );
}

/** Every module file of an unpacked kernel image, by module name. */
async function moduleFiles(modulesDir: string): Promise<Map<string, string>> {
  const found = new Map<string, string>();
  const entries = await readdir(modulesDir, { recursive: true, withFileTypes: true });
  for (const e of entries) {
    if (!e.isFile() || !/\.ko(\.xz)?$/.test(e.name)) continue;
    found.set(e.name.replace(/\.ko(\.xz)?$/, '').replaceAll('-', '_'), join(e.parentPath, e.name));
  }
  return found;
}

/** The boot modules and what they depend on, in load order. */
async function bootModuleOrder(files: ReadonlyMap<string, string>): Promise<string[]> {
  const order: string[] = [];
  const visit = async (name: string): Promise<void> => {
    if (order.includes(name)) return;
    const file = files.get(name);
    if (!file) return; // built into the kernel
    const depends = (await runCommand('modinfo', ['-F', 'depends', file])).trim();
    for (const dep of depends.split(',').filter(Boolean)) await visit(dep);
    order.push(name);
  };
  for (const name of BOOT_MODULES) await visit(name);
  return order;
}

/** Copies a module file, decompressing it (6.12 ships .ko.xz; busybox insmod takes plain .ko). */
async function copyModule(file: string, to: string): Promise<void> {
  if (!file.endsWith('.xz')) return copyFile(file, to);
  await copyFile(file, `${to}.xz`);
  await runCommand('xz', ['--decompress', `${to}.xz`]);
}

/** Unpacks the image and headers; keeps vmlinuz, the headers tree and the boot modules. */
async function unpackKernel(line: KernelLine, tmp: string, log: Logger): Promise<void> {
  const [image, ...build] = await Promise.all(
    kernelPackages(line).map((spec) => debianPackage(spec, log)),
  );
  if (!image) throw new Error(`no image package for ${line.release}`);
  const root = join(tmp, 'root');
  for (const deb of build) await unpackDeb(deb, root);
  // The headers' Makefile includes its common half by absolute path under /usr/src; make it
  // relative (make runs in the headers' folder), so the unpacked tree works wherever it is.
  const makefile = join(root, 'usr', 'src', `linux-headers-${line.release}`, 'Makefile');
  const text = await readFile(makefile, 'utf8');
  await writeFile(makefile, text.replaceAll('include /usr/src/', 'include ../'));
  const imageDir = join(tmp, 'image');
  await unpackDeb(image, imageDir);
  await copyFile(join(imageDir, 'boot', `vmlinuz-${line.release}`), join(tmp, 'vmlinuz'));
  const files = await moduleFiles(join(imageDir, 'lib', 'modules', line.release));
  const order = await bootModuleOrder(files);
  await mkdir(join(tmp, 'boot-modules'));
  for (const name of order)
    await copyModule(files.get(name) ?? '', join(tmp, 'boot-modules', `${name}.ko`));
  await writeFile(join(tmp, 'boot-modules', 'order'), order.join('\n') + '\n');
  await rm(imageDir, { recursive: true, force: true });
}

/** Builds lab/kernel/modules against the kernel's headers. */
async function buildTestModules(line: KernelLine, unpacked: string, tmp: string): Promise<void> {
  const src = join(tmp, 'src');
  await mkdir(src);
  for (const f of await readdir(modulesSourceDir()))
    await copyFile(join(modulesSourceDir(), f), join(src, f));
  const headers = join(unpacked, 'root', 'usr', 'src', `linux-headers-${line.release}`);
  // No BTF for test modules: it needs pahole and the kernel's vmlinux, and livepatching does not use it.
  // The host's gcc-12 for every line: 5.10's headers ask for gcc-10, which bookworm lacks, and a
  // module's code does not depend on the compiler the kernel was built with.
  await runCommand('make', [
    '-C',
    headers,
    `M=${src}`,
    'CC=gcc-12',
    'CONFIG_DEBUG_INFO_BTF_MODULES=',
    'modules',
  ]);
  for (const name of TEST_MODULES) await rename(join(src, `${name}.ko`), join(tmp, `${name}.ko`));
  await rm(src, { recursive: true, force: true });
}

async function busyboxBinary(version: string, log: Logger): Promise<Buffer> {
  const deb = await debianPackage(`${BUSYBOX.name}=${version}`, log);
  const dir = `${deb}.unpacked`;
  if (!(await exists(join(dir, 'bin', 'busybox')))) await unpackDeb(deb, dir);
  return readFile(join(dir, 'bin', 'busybox'));
}

async function writeInitramfs(
  unpacked: string,
  busybox: string,
  out: string,
  log: Logger,
): Promise<void> {
  const mods = join(unpacked, 'boot-modules');
  const entries: CpioEntry[] = [
    ...['bin', 'dev', 'proc', 'sys', 'host', 'job', 'mods'].map((path) => ({
      kind: 'dir' as const,
      path,
    })),
    { kind: 'chardev', path: 'dev/console', major: 5, minor: 1 },
    { kind: 'file', path: 'bin/busybox', data: await busyboxBinary(busybox, log), mode: 0o755 },
    ...BUSYBOX_APPLETS.map((a) => ({
      kind: 'symlink' as const,
      path: `bin/${a}`,
      target: 'busybox',
    })),
    { kind: 'file', path: 'init', data: await readFile(initScriptPath()), mode: 0o755 },
  ];
  for (const f of await readdir(mods))
    entries.push({
      kind: 'file',
      path: `mods/${f}`,
      data: await readFile(join(mods, f)),
      mode: 0o644,
    });
  await writeFile(out, initramfs(entries));
}

function initScriptPath(): string {
  return join(repositoryRoot(), 'lab', 'kernel', 'init.sh');
}

async function contentHash(files: readonly string[]): Promise<string> {
  const hash = createHash('sha256');
  for (const f of [...files].sort()) hash.update(basename(f)).update(await readFile(f));
  return hash.digest('hex').slice(0, 12);
}

function kernelDir(line: KernelLine): string {
  return join(cacheRoot(), 'kernels', `${line.release}_${line.version}`.replaceAll(/[~:]/g, '_'));
}

/** The pin's kernel is unpacked already, or all its packages are downloaded. */
async function kernelCached(pin: KernelLine): Promise<boolean> {
  if (await exists(join(kernelDir(pin), 'unpacked'))) return true;
  const cached = await Promise.all(kernelPackages(pin).map(isPackageCached));
  return cached.every(Boolean);
}

/** The assets of a pinned line's build: the pin's, or the newest of its line when Debian dropped it. */
export async function ensureKernelAssets(pin: KernelLine, log: Logger): Promise<KernelAssets> {
  const { line, choice } = await resolveKernelLine(pin, await kernelCached(pin), log);
  const busybox = await resolvePinnedPackage(BUSYBOX, log);
  const base = kernelDir(line);
  const unpacked = await cached(join(base, 'unpacked'), log, `kernel ${line.release}`, (tmp) =>
    unpackKernel(line, tmp, log),
  );
  const sources = (await readdir(modulesSourceDir())).map((f) => join(modulesSourceDir(), f));
  const modules = await cached(
    join(base, `modules-${await contentHash(sources)}`),
    log,
    `test modules for ${line.release}`,
    (tmp) => buildTestModules(line, unpacked, tmp),
  );
  const initDir = await cached(
    join(
      base,
      `initramfs-${await contentHash([initScriptPath()])}-${busybox.version.replaceAll(':', '_')}`,
    ),
    log,
    `initramfs for ${line.release}`,
    (tmp) => writeInitramfs(unpacked, busybox.version, join(tmp, 'initramfs.gz'), log),
  );
  return {
    line,
    pins: { kernel: choice, busybox: busybox.choice },
    vmlinuz: join(unpacked, 'vmlinuz'),
    initramfs: join(initDir, 'initramfs.gz'),
    modules,
  };
}
