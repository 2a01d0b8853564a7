// An image archive unpacked as a container runtime does: each layer of the
// archive's manifest on top of the one before, with the config that says how
// to run it. Tests run the result in a chroot; the Dockerfile copies it into
// an image of its own.
import { mkdir, mkdtemp, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCommand } from '../command.js';

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
  await runCommand('tar', ['-xf', archive, '-C', blobs]);
  const [manifest] = JSON.parse(
    await readFile(join(blobs, 'manifest.json'), 'utf8'),
  ) as DockerManifest[];
  if (!manifest) throw new Error(`${archive} has no image`);
  for (const layer of manifest.Layers)
    await runCommand('tar', ['-xzf', join(blobs, layer), '-C', root]);
  const config = JSON.parse(await readFile(join(blobs, manifest.Config), 'utf8')) as {
    config: ImageRunConfig;
  };
  return { reference: manifest.RepoTags[0] ?? '', root, config: config.config };
}
