// The image as tests use it: built by the same code as `npm run image`, then
// unpacked the way a container runtime does (each layer of the archive's
// manifest on top of the one before), with the config that says how to run it.
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { buildImage, type BuiltImage } from '../../src/image/build.js';
import { createLogger } from '../../src/log.js';
import { repositoryRoot } from '../../src/paths.js';

const run = promisify(execFile);

export interface ImageRunConfig {
  readonly User?: string;
  readonly Entrypoint?: string[];
  readonly Cmd?: string[];
  readonly Env?: string[];
  readonly WorkingDir?: string;
}

export interface UnpackedImage {
  readonly reference: string;
  readonly root: string;
  readonly config: ImageRunConfig;
}

/** A tag no registry has: pods can only get it from this machine's loaded images. */
export const TEST_IMAGE = 'localhost/livepatch-operator:test';

export function buildTestImage(archive: string, reference = TEST_IMAGE): Promise<BuiltImage> {
  return buildImage({
    repo: repositoryRoot(),
    reference,
    archive,
    log: createLogger({
      component: 'image',
      format: 'text',
      level: process.env['LOG_LEVEL'] ?? 'warn',
    }),
  });
}

interface DockerManifest {
  readonly Config: string;
  readonly RepoTags: string[];
  readonly Layers: string[];
}

/** Unpacks an image archive into `dir`/root, layer by layer, as a runtime would. */
export async function unpackImage(archive: string, dir?: string): Promise<UnpackedImage> {
  const into = dir ?? (await mkdtemp(join(tmpdir(), 'livepatch-image-root-')));
  const blobs = join(into, 'archive');
  const root = join(into, 'root');
  await mkdir(blobs, { recursive: true });
  await mkdir(root, { recursive: true });
  await run('tar', ['-xf', archive, '-C', blobs]);
  const [manifest] = JSON.parse(
    await readFile(join(blobs, 'manifest.json'), 'utf8'),
  ) as DockerManifest[];
  if (!manifest) throw new Error(`${archive} has no image`);
  for (const layer of manifest.Layers) await run('tar', ['-xzf', join(blobs, layer), '-C', root]);
  const config = JSON.parse(await readFile(join(blobs, manifest.Config), 'utf8')) as {
    config: ImageRunConfig;
  };
  return { reference: manifest.RepoTags[0] ?? '', root, config: config.config };
}
