// Finds or builds the kube-apiserver and etcd binaries the local control plane runs.
// KUBEBUILDER_ASSETS (a folder with both, as envtest users have) wins; otherwise
// test/controlplane is built once with Go and cached outside the tree, keyed by
// the pinned versions and a hash of the module's files, so later starts are fast.
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { constants } from 'node:fs';
import { access, mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import type { Logger } from '../log.js';
import { repositoryRoot } from '../paths.js';

export interface ControlPlaneAssets {
  readonly apiserver: string;
  readonly etcd: string;
  readonly origin: 'KUBEBUILDER_ASSETS' | 'cache' | 'built';
  readonly kubernetesVersion: string;
  readonly etcdVersion: string;
}

export interface PinnedVersions {
  readonly kubernetes: string;
  readonly etcd: string;
}

const MODULE_FILES = ['go.mod', 'go.sum', 'etcd/main.go'];

export function controlPlaneModuleDir(): string {
  return join(repositoryRoot(), 'test', 'controlplane');
}

export function cacheRoot(): string {
  const explicit = process.env['LIVEPATCH_CACHE_DIR'];
  if (explicit) return explicit;
  const xdg = process.env['XDG_CACHE_HOME'];
  return join(xdg && xdg !== '' ? xdg : join(homedir(), '.cache'), 'livepatch-operator');
}

export function pinnedVersions(goMod: string): PinnedVersions {
  const kubernetes = /^\s*k8s\.io\/kubernetes (v\S+)/m.exec(goMod)?.[1];
  const etcd = /^\s*go\.etcd\.io\/etcd\/server\/v3 (v\S+)/m.exec(goMod)?.[1];
  if (!kubernetes || !etcd)
    throw new Error('test/controlplane/go.mod must require k8s.io/kubernetes and etcd server');
  return { kubernetes, etcd };
}

async function isExecutable(path: string): Promise<boolean> {
  try {
    await access(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

async function fromKubebuilderAssets(dir: string): Promise<ControlPlaneAssets> {
  const apiserver = join(dir, 'kube-apiserver');
  const etcd = join(dir, 'etcd');
  for (const binary of [apiserver, etcd]) {
    if (!(await isExecutable(binary))) {
      throw new Error(
        `KUBEBUILDER_ASSETS=${dir} has no executable ${binary}; point it at a folder with kube-apiserver and etcd, or unset it to build them`,
      );
    }
  }
  return {
    apiserver,
    etcd,
    origin: 'KUBEBUILDER_ASSETS',
    kubernetesVersion: 'external',
    etcdVersion: 'external',
  };
}

function run(cmd: string, args: readonly string[], cwd: string, log: Logger): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd, stdio: ['ignore', 'pipe', 'pipe'], env: process.env });
    let output = '';
    child.stdout.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr.on('data', (d: Buffer) => {
      output += d.toString();
      log.debug(d.toString().trimEnd());
    });
    child.on('error', (err) => {
      reject(
        new Error(
          `cannot run ${cmd} (${err.message}); install Go 1.26+ or set KUBEBUILDER_ASSETS to a folder with kube-apiserver and etcd`,
        ),
      );
    });
    child.on('exit', (code) => {
      if (code === 0) resolve();
      else
        reject(
          new Error(`${cmd} ${args.join(' ')} failed (exit ${code}):\n${output.slice(-4000)}`),
        );
    });
  });
}

function versionLdflags(version: string): string {
  const [, major = '', minor = ''] = /^v(\d+)\.(\d+)/.exec(version) ?? [];
  const values = { gitVersion: version, gitMajor: major, gitMinor: minor, gitTreeState: 'clean' };
  const pkgs = ['k8s.io/component-base/version', 'k8s.io/client-go/pkg/version'];
  return [
    '-s -w',
    ...pkgs.flatMap((pkg) => Object.entries(values).map(([k, v]) => `-X ${pkg}.${k}=${v}`)),
  ].join(' ');
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Takes a directory lock so two processes never build into the same cache entry. */
export async function withLock<T>(
  lockDir: string,
  fn: () => Promise<T>,
  log: Logger,
  what = 'the control plane',
): Promise<T> {
  for (let waited = 0; ; waited++) {
    try {
      await mkdir(lockDir);
      await writeFile(join(lockDir, 'pid'), String(process.pid));
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      const holder = Number(await readFile(join(lockDir, 'pid'), 'utf8').catch(() => '0'));
      if (holder > 0 && !alive(holder)) {
        log.warn('removing a build lock left by a process that is gone', {
          lock: lockDir,
          pid: holder,
        });
        await rm(lockDir, { recursive: true, force: true });
        continue;
      }
      if (waited % 30 === 0)
        log.info(`waiting for another process building ${what}`, { lock: lockDir });
      await new Promise((r) => setTimeout(r, 1000));
    }
  }
  try {
    return await fn();
  } finally {
    await rm(lockDir, { recursive: true, force: true });
  }
}

async function build(
  moduleDir: string,
  target: string,
  versions: PinnedVersions,
  log: Logger,
): Promise<void> {
  const tmp = `${target}.tmp-${process.pid}`;
  await rm(tmp, { recursive: true, force: true });
  await mkdir(tmp, { recursive: true });
  log.info(
    'building kube-apiserver and etcd from Go modules (first run only, takes several minutes)',
    versions,
  );
  const started = Date.now();
  await run(
    'go',
    ['build', '-trimpath', '-ldflags', '-s -w', '-o', join(tmp, 'etcd'), './etcd'],
    moduleDir,
    log,
  );
  await run(
    'go',
    [
      'build',
      '-trimpath',
      '-ldflags',
      versionLdflags(versions.kubernetes),
      '-o',
      join(tmp, 'kube-apiserver'),
      'k8s.io/kubernetes/cmd/kube-apiserver',
    ],
    moduleDir,
    log,
  );
  await rename(tmp, target);
  log.info('control plane built', {
    seconds: Math.round((Date.now() - started) / 1000),
    dir: target,
  });
}

export async function ensureControlPlaneAssets(log: Logger): Promise<ControlPlaneAssets> {
  const external = process.env['KUBEBUILDER_ASSETS'];
  if (external) return fromKubebuilderAssets(external);

  const moduleDir = controlPlaneModuleDir();
  const contents = await Promise.all(MODULE_FILES.map((f) => readFile(join(moduleDir, f), 'utf8')));
  const versions = pinnedVersions(contents[0] ?? '');
  const hash = createHash('sha256').update(contents.join('\0')).digest('hex').slice(0, 12);
  const dir = join(
    cacheRoot(),
    'controlplane',
    `kubernetes-${versions.kubernetes}-etcd-${versions.etcd}-${hash}`,
  );
  const apiserver = join(dir, 'kube-apiserver');
  const etcd = join(dir, 'etcd');
  const assets = {
    apiserver,
    etcd,
    kubernetesVersion: versions.kubernetes,
    etcdVersion: versions.etcd,
  };
  if ((await isExecutable(apiserver)) && (await isExecutable(etcd)))
    return { ...assets, origin: 'cache' };

  await mkdir(join(cacheRoot(), 'controlplane'), { recursive: true });
  return withLock(
    `${dir}.lock`,
    async () => {
      // Another process may have finished the build while we waited.
      if (!((await isExecutable(apiserver)) && (await isExecutable(etcd)))) {
        await build(moduleDir, dir, versions, log);
      }
      return { ...assets, origin: 'built' as const };
    },
    log,
  );
}
