// The plugin's release: one archive per platform krew installs on (the same
// bundled script in each, with the licences), and the krew manifest that lists
// them with their sha256. On Windows krew links the plugin as
// kubectl-livepatch.exe, which a script cannot be, so the Windows archives add
// a small launcher (src/cli/windows-launcher) that runs the script with node.
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
  { os: 'windows', arch: 'amd64' },
  { os: 'windows', arch: 'arm64' },
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
  /** What krew links as the plugin. */
  readonly bin: string;
  readonly files: readonly string[];
}

export interface PluginRelease {
  /** <outDir>/livepatch.yaml: krew wants the file named after the plugin. <outDir>/kubectl-livepatch is the single file. */
  readonly manifest: string;
  readonly archives: readonly ReleasedArchive[];
  readonly bundleBytes: number;
}

const SCRIPT = 'kubectl-livepatch';
const LAUNCHER = 'kubectl-livepatch.exe';
const COMMON_FILES = [SCRIPT, 'LICENSE', 'THIRD-PARTY-LICENSES'] as const;

const sha256 = async (file: string): Promise<string> =>
  createHash('sha256')
    .update(await readFile(file))
    .digest('hex');

/** A tar.gz whose bytes depend only on its files: sorted, owned by root, dated 1970. */
async function archive(staging: string, files: readonly string[], file: string): Promise<void> {
  const tar = file.replace(/\.gz$/, '');
  const flags = ['--sort=name', '--owner=0', '--group=0', '--numeric-owner', '--mtime=@0'];
  await runCommand('tar', [...flags, '-cf', tar, ...[...files].sort()], { cwd: staging });
  await runCommand('gzip', ['-n', '-9', '-f', tar]);
}

/** The launcher for `goos`/`arch` (windows in a release), reproducible (no build id, no paths), into `dir`. */
export async function buildLauncher(goos: string, arch: string, dir: string): Promise<string> {
  await runCommand(
    'go',
    [
      'build',
      '-trimpath',
      '-ldflags',
      `-s -w -buildid= -X main.oldestNode=${OLDEST_NODE}`,
      '-o',
      join(dir, LAUNCHER),
      '.',
    ],
    {
      cwd: join(repositoryRoot(), 'src', 'cli', 'windows-launcher'),
      env: { GOOS: goos, GOARCH: arch, CGO_ENABLED: '0' },
      missingHint: 'install Go 1.26+: the Windows archives carry a launcher built from Go',
    },
  );
  return join(dir, LAUNCHER);
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
        files: a.files.map((from) => ({ from, to: '.' })),
        bin: a.bin,
      })),
    },
  });
}

/** The script and licences in `staging`; the bundle's size. */
async function stage(staging: string): Promise<number> {
  const bundle = await bundlePlugin(staging);
  await copyFile(join(repositoryRoot(), 'LICENSE'), join(staging, 'LICENSE'));
  await writeFile(join(staging, 'THIRD-PARTY-LICENSES'), bundle.thirdPartyLicenses);
  return bundle.bytes;
}

async function platformArchive(
  o: ReleaseOptions,
  staging: string,
  platform: Platform,
): Promise<ReleasedArchive> {
  const file = join(o.outDir, `${SCRIPT}_${o.version}_${platform.os}_${platform.arch}.tar.gz`);
  if (platform.os !== 'windows') {
    await archive(staging, COMMON_FILES, file);
    return { platform, file, sha256: await sha256(file), bin: SCRIPT, files: COMMON_FILES };
  }
  const dir = join(staging, `windows-${platform.arch}`);
  await mkdir(dir);
  for (const f of COMMON_FILES) await copyFile(join(staging, f), join(dir, f));
  await buildLauncher('windows', platform.arch, dir);
  // The launcher carries Go's runtime, whose licence goes with it.
  const goroot = (await runCommand('go', ['env', 'GOROOT'])).trim();
  const go = await readFile(join(goroot, 'LICENSE'), 'utf8');
  const notices = join(dir, 'THIRD-PARTY-LICENSES');
  await writeFile(
    notices,
    `${await readFile(notices, 'utf8')}\n${'-'.repeat(78)}\n\nGo (the runtime of ${LAUNCHER})\n\n${go}`,
  );
  const files = [...COMMON_FILES, LAUNCHER];
  await archive(dir, files, file);
  return { platform, file, sha256: await sha256(file), bin: LAUNCHER, files };
}

export async function releasePlugin(o: ReleaseOptions): Promise<PluginRelease> {
  if (!/^v\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?$/.test(o.version))
    throw new Error(`version ${o.version}: krew wants semver with a leading v (v1.2.3)`);
  await mkdir(o.outDir, { recursive: true });
  const staging = await mkdtemp(join(o.outDir, '.staging-'));
  try {
    const bundleBytes = await stage(staging);
    const archives: ReleasedArchive[] = [];
    for (const platform of PLATFORMS) archives.push(await platformArchive(o, staging, platform));
    // The single file too, for those who put it on PATH themselves.
    await copyFile(join(staging, SCRIPT), join(o.outDir, SCRIPT));
    const path = join(o.outDir, `${PLUGIN_NAME}.yaml`);
    await writeFile(path, manifest(o, archives));
    return { manifest: path, archives, bundleBytes };
  } finally {
    await rm(staging, { recursive: true, force: true });
  }
}
