// Builds Go commands from a pinned module in the tree (test/controlplane,
// test/helm) into a cache folder outside it, keyed by the module's versions and
// a hash of its files: built once per machine, then started in milliseconds.
// Nothing is downloaded as a prebuilt binary; the Go module proxy serves sources.
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { constants } from 'node:fs';
import { access, mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { basename, join } from 'node:path';
import type { Logger } from '../log.js';

/** One `go build` of several commands of one module, with the same link flags. */
export interface GoBuild {
  /** The module's folder (holds go.mod). */
  readonly moduleDir: string;
  /** Files of the module whose contents decide the build (go.mod, go.sum, sources). */
  readonly files: readonly string[];
  /** The cache folder's name, from go.mod: the pinned versions it builds. */
  readonly cacheName: (goMod: string) => string;
  readonly ldflags: (goMod: string) => string;
  /** Package paths to build; each command lands under its last path element. */
  readonly packages: readonly string[];
}

export function cacheRoot(): string {
  const explicit = process.env['LIVEPATCH_CACHE_DIR'];
  if (explicit) return explicit;
  const xdg = process.env['XDG_CACHE_HOME'];
  return join(xdg && xdg !== '' ? xdg : join(homedir(), '.cache'), 'livepatch-operator');
}

export async function isExecutable(path: string): Promise<boolean> {
  try {
    await access(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
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
  what = 'Go commands',
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

const commandName = (pkg: string): string => basename(pkg);

async function missing(dir: string, b: GoBuild): Promise<string[]> {
  const absent: string[] = [];
  for (const pkg of b.packages)
    if (!(await isExecutable(join(dir, commandName(pkg))))) absent.push(pkg);
  return absent;
}

/** The cache folder for `b`: named by its versions and a hash of the module's files. */
export async function goBuildDir(b: GoBuild): Promise<{ dir: string; goMod: string }> {
  const contents = await Promise.all(b.files.map((f) => readFile(join(b.moduleDir, f), 'utf8')));
  const goMod = contents[0] ?? '';
  const hash = createHash('sha256').update(contents.join('\0')).digest('hex').slice(0, 12);
  return { dir: join(cacheRoot(), `${b.cacheName(goMod)}-${hash}`), goMod };
}

/**
 * The built commands of `b` by name, building those not yet in the cache (one
 * `go build` for all of them, so shared packages compile once).
 */
export async function ensureGoBuild(
  b: GoBuild,
  log: Logger,
): Promise<{ readonly dir: string; readonly built: boolean; readonly goMod: string }> {
  const { dir, goMod } = await goBuildDir(b);
  if ((await missing(dir, b)).length === 0) return { dir, built: false, goMod };
  await mkdir(dir, { recursive: true });
  return withLock(
    `${dir}.lock`,
    async () => {
      // Another process may have built them while we waited.
      const pkgs = await missing(dir, b);
      if (pkgs.length === 0) return { dir, built: false, goMod };
      const tmp = `${dir}.tmp-${process.pid}`;
      await rm(tmp, { recursive: true, force: true });
      await mkdir(tmp, { recursive: true });
      const started = Date.now();
      log.info('building from Go modules (once per machine; takes minutes)', {
        commands: pkgs.map(commandName),
        cache: dir,
      });
      await run(
        'go',
        ['build', '-trimpath', '-ldflags', b.ldflags(goMod), '-o', `${tmp}/`, ...pkgs],
        b.moduleDir,
        log,
      );
      for (const pkg of pkgs)
        await rename(join(tmp, commandName(pkg)), join(dir, commandName(pkg)));
      await rm(tmp, { recursive: true, force: true });
      log.info('built', {
        commands: pkgs.map(commandName),
        seconds: Math.round((Date.now() - started) / 1000),
      });
      return { dir, built: true, goMod };
    },
    log,
  );
}
