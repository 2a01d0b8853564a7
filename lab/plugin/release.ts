// The plugin's release: one archive per platform krew installs on (the same
// bundled script in each, with the licences), and the krew manifest that lists
// them with their sha256. Windows is left out: krew links the plugin as
// kubectl-livepatch.exe, which a script cannot be; docs/plugin.md says how to
// run the single file there.
import { createHash } from 'node:crypto';
import { copyFile, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { repositoryRoot } from '../../src/paths.js';
import { runCommand } from '../command.js';
import { bundlePlugin, OLDEST_NODE } from './bundle.js';

export const PLUGIN_NAME = 'livepatch';

export const PLATFORMS = [
  { os: 'linux', arch: 'amd64' },
  { os: 'linux', arch: 'arm64' },
  { os: 'darwin', arch: 'amd64' },
  { os: 'darwin', arch: 'arm64' },
] as const;

export type Platform = (typeof PLATFORMS)[number];

export interface ReleaseOptions {
  /** The release tag, vX.Y.Z. */
  readonly version: string;
  /** Where the archives are downloaded from once published; each archive's name is appended. */
  readonly baseUrl: string;
  readonly homepage: string;
  readonly outDir: string;
}

export interface ReleasedArchive {
  readonly platform: Platform;
  readonly file: string;
  readonly sha256: string;
}

export interface PluginRelease {
  /** <outDir>/livepatch.yaml: krew wants the file named after the plugin. <outDir>/kubectl-livepatch is the single file. */
  readonly manifest: string;
  readonly archives: readonly ReleasedArchive[];
  readonly bundleBytes: number;
}

const FILES = ['kubectl-livepatch', 'LICENSE', 'THIRD-PARTY-LICENSES'] as const;

const sha256 = async (file: string): Promise<string> =>
  createHash('sha256')
    .update(await readFile(file))
    .digest('hex');

/** A tar.gz whose bytes depend only on its files: sorted, owned by root, dated 1970. */
async function archive(staging: string, file: string): Promise<void> {
  await runCommand(
    'tar',
    [
      '--sort=name',
      '--owner=0',
      '--group=0',
      '--numeric-owner',
      '--mtime=@0',
      '-cf',
      file.replace(/\.gz$/, ''),
      ...FILES,
    ],
    { cwd: staging },
  );
  await runCommand('gzip', ['-n', '-9', '-f', file.replace(/\.gz$/, '')]);
}

function manifest(o: ReleaseOptions, archives: readonly ReleasedArchive[]): string {
  return stringify({
    apiVersion: 'krew.googlecontainertools.github.com/v1alpha2',
    kind: 'Plugin',
    metadata: { name: PLUGIN_NAME },
    spec: {
      version: o.version,
      homepage: o.homepage,
      shortDescription: 'Follow and steer kernel livepatch rollouts',
      description: [
        'Shows a LivePatch rollout node by node (live with -w), every node with every',
        'livepatch on it, and pauses, resumes, aborts or retries a rollout of the',
        'livepatch-operator.',
      ].join('\n'),
      caveats: `Needs Node.js ${OLDEST_NODE} or later as \`node\` on PATH.`,
      platforms: archives.map((a) => ({
        selector: { matchLabels: { os: a.platform.os, arch: a.platform.arch } },
        uri: new URL(a.file.split('/').pop() ?? '', o.baseUrl).toString(),
        sha256: a.sha256,
        files: FILES.map((from) => ({ from, to: '.' })),
        bin: 'kubectl-livepatch',
      })),
    },
  });
}

export async function releasePlugin(o: ReleaseOptions): Promise<PluginRelease> {
  if (!/^v\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?$/.test(o.version))
    throw new Error(`version ${o.version}: krew wants semver with a leading v (v1.2.3)`);
  await mkdir(o.outDir, { recursive: true });
  const staging = await mkdtemp(join(o.outDir, '.staging-'));
  try {
    const bundle = await bundlePlugin(staging);
    await copyFile(join(repositoryRoot(), 'LICENSE'), join(staging, 'LICENSE'));
    await writeFile(join(staging, 'THIRD-PARTY-LICENSES'), bundle.thirdPartyLicenses);
    const archives: ReleasedArchive[] = [];
    for (const platform of PLATFORMS) {
      const file = join(
        o.outDir,
        `kubectl-livepatch_${o.version}_${platform.os}_${platform.arch}.tar.gz`,
      );
      await archive(staging, file);
      archives.push({ platform, file, sha256: await sha256(file) });
    }
    // The single file too, for those who put it on PATH themselves.
    await copyFile(bundle.file, join(o.outDir, 'kubectl-livepatch'));
    const path = join(o.outDir, `${PLUGIN_NAME}.yaml`);
    await writeFile(path, manifest(o, archives));
    return { manifest: path, archives, bundleBytes: bundle.bytes };
  } finally {
    await rm(staging, { recursive: true, force: true });
  }
}
