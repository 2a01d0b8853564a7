// An image archive unpacked as a container runtime does: the manifest of one
// architecture from the archive's image index, each of its layers on top of
// the one before, with the config that says how to run it. Tests run the
// result in a chroot; the Dockerfile copies it into an image of its own.
import { mkdir, mkdtemp, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCommand } from '../command.js';
import { hostPlatform } from './platforms.js';

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

interface Descriptor {
  readonly mediaType: string;
  readonly digest: string;
  readonly platform?: { readonly architecture: string; readonly os: string };
  readonly annotations?: Readonly<Record<string, string>>;
}

interface OciIndex {
  readonly manifests: readonly Descriptor[];
}

interface OciManifest {
  readonly config: Descriptor;
  readonly layers: readonly Descriptor[];
}

const INDEX = 'application/vnd.oci.image.index.v1+json';

/**
 * Unpacks one architecture's image of an archive (default: this machine's)
 * into `dir`/root, layer by layer, as a runtime would.
 */
export async function unpackImage(
  archive: string,
  dir?: string,
  architecture = hostPlatform().architecture,
): Promise<UnpackedImage> {
  const into = dir ?? (await mkdtemp(join(tmpdir(), 'livepatch-image-root-')));
  const blobs = join(into, 'archive');
  const root = join(into, 'root');
  await mkdir(blobs, { recursive: true });
  await mkdir(root, { recursive: true });
  await runCommand('tar', ['-xf', archive, '-C', blobs]);
  const blob = async <T>(d: Descriptor): Promise<T> =>
    JSON.parse(
      await readFile(join(blobs, 'blobs', 'sha256', d.digest.slice('sha256:'.length)), 'utf8'),
    ) as T;
  const layout = JSON.parse(await readFile(join(blobs, 'index.json'), 'utf8')) as OciIndex;
  const [named] = layout.manifests;
  if (!named) throw new Error(`${archive} has no image`);
  const reference = named.annotations?.['io.containerd.image.name'] ?? '';
  let target = named;
  if (named.mediaType === INDEX) {
    const { manifests } = await blob<OciIndex>(named);
    const found = manifests.find((m) => m.platform?.architecture === architecture);
    if (!found)
      throw new Error(
        `${archive} has no ${architecture} image (it has ${manifests.map((m) => m.platform?.architecture ?? '?').join(', ')})`,
      );
    target = found;
  }
  const manifest = await blob<OciManifest>(target);
  for (const layer of manifest.layers)
    await runCommand('tar', [
      '-xzf',
      join(blobs, 'blobs', 'sha256', layer.digest.slice('sha256:'.length)),
      ...['-C', root],
    ]);
  const config = await blob<{ config: ImageRunConfig }>(manifest.config);
  return { reference, root, config: config.config };
}
