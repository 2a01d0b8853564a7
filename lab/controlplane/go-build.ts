// Builds Go commands from a pinned module in the tree (lab/go/controlplane,
// lab/go/helm) into a cache folder outside it, keyed by the module's versions and
// a hash of its files: built once per machine, then started in milliseconds.
// Nothing is downloaded as a prebuilt binary; the Go module proxy serves sources.
import { createHash } from 'node:crypto';
import { constants } from 'node:fs';
import { access, mkdir, readFile, rename, rm } from 'node:fs/promises';
import { basename, join } from 'node:path';
import type { Logger } from '../../src/log.js';
import { cacheRoot, withLock } from '../cache.js';
import { runCommand } from '../command.js';

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
  /** Build tags, e.g. to leave optional plugins out of a large command. */
  readonly tags?: readonly string[];
}

export async function isExecutable(path: string): Promise<boolean> {
  try {
    await access(path, constants.X_OK);
    return true;
  } catch {
    return false;
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
      await runCommand(
        'go',
        [
          'build',
          '-trimpath',
          ...(b.tags?.length ? ['-tags', b.tags.join(',')] : []),
          '-ldflags',
          b.ldflags(goMod),
          '-o',
          `${tmp}/`,
          ...pkgs,
        ],
        {
          cwd: b.moduleDir,
          onStderr: (text) => {
            log.debug(text.trimEnd());
          },
          missingHint:
            'install Go 1.26+ or set KUBEBUILDER_ASSETS to a folder with kube-apiserver and etcd',
        },
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
    'Go commands',
  );
}
