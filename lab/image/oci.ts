// OCI image pieces, written so that the same files give the same bytes: each
// layer is a GNU tar with sorted names, zero times and root owners, gzipped by
// the project's own Node; the archive holds an OCI image layout (an image index
// with one manifest per architecture) plus Docker's manifest.json, so `docker
// load`, `podman load`, `kind load image-archive` (containerd) and `skopeo copy
// --all oci-archive:` all take it.
import { spawn, type ChildProcessByStdio } from 'node:child_process';
import { createHash, type Hash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { copyFile, mkdir, readdir, rename, rm, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { Transform, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGzip } from 'node:zlib';
import type { Platform } from './platforms.js';

export interface Layer {
  /** sha256 of the gzipped tar: the blob's name. */
  readonly digest: string;
  /** sha256 of the tar itself: the config's rootfs.diff_ids. */
  readonly diffId: string;
  readonly size: number;
  readonly uncompressedSize: number;
  readonly file: string;
}

export interface ImageConfig {
  readonly user: string;
  readonly entrypoint: readonly string[];
  readonly cmd: readonly string[];
  readonly env: readonly string[];
  readonly workingDir: string;
  readonly labels: Readonly<Record<string, string>>;
  /** RFC 3339: when the sources were committed, not when they were built. */
  readonly created: string;
}

const MEDIA = {
  index: 'application/vnd.oci.image.index.v1+json',
  manifest: 'application/vnd.oci.image.manifest.v1+json',
  config: 'application/vnd.oci.image.config.v1+json',
  layer: 'application/vnd.oci.image.layer.v1.tar+gzip',
} as const;

/** GNU tar's reproducible-archive options (https://reproducible-builds.org/docs/archives/). */
const TAR_OPTIONS = [
  '--sort=name',
  '--mtime=@0',
  '--owner=0',
  '--group=0',
  '--numeric-owner',
  '--format=posix',
  '--pax-option=exthdr.name=%d/PaxHeaders/%f,delete=atime,delete=ctime',
];

function hashing(hash: Hash, counter: { bytes: number }): Transform {
  return new Transform({
    transform(chunk: Buffer, _encoding, done) {
      hash.update(chunk);
      counter.bytes += chunk.length;
      done(null, chunk);
    },
  });
}

function tarStream(
  dir: string,
  entries: readonly string[],
): ChildProcessByStdio<null, Readable, Readable> {
  const tar = spawn('tar', [...TAR_OPTIONS, '-C', dir, '-cf', '-', '--', ...entries], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let err = '';
  tar.stderr.on('data', (d: Buffer) => (err += d.toString()));
  tar.on('exit', (code) => {
    if (code !== 0) tar.stdout.destroy(new Error(`tar failed (exit ${code}): ${err}`));
  });
  return tar;
}

/** Packs `dir` (its contents, not itself) into a gzipped layer at `out`. */
export async function packLayer(dir: string, out: string): Promise<Layer> {
  const entries = (await readdir(dir)).sort();
  const tar = tarStream(dir, entries);
  const raw = { bytes: 0 };
  const gz = { bytes: 0 };
  const diff = createHash('sha256');
  const digest = createHash('sha256');
  await mkdir(dirname(out), { recursive: true });
  const tmp = `${out}.tmp-${process.pid}`;
  await pipeline(
    tar.stdout,
    hashing(diff, raw),
    createGzip({ level: 6 }),
    hashing(digest, gz),
    createWriteStream(tmp),
  );
  await rename(tmp, out);
  return {
    digest: `sha256:${digest.digest('hex')}`,
    diffId: `sha256:${diff.digest('hex')}`,
    size: gz.bytes,
    uncompressedSize: raw.bytes,
    file: out,
  };
}

function json(value: unknown): Buffer {
  return Buffer.from(JSON.stringify(value));
}

const sha256 = (b: Buffer): string => `sha256:${createHash('sha256').update(b).digest('hex')}`;
const blobPath = (digest: string): string =>
  join('blobs', 'sha256', digest.slice('sha256:'.length));

function configOf(c: ImageConfig, image: PlatformImage): unknown {
  return {
    created: c.created,
    architecture: image.platform.architecture,
    ...(image.platform.variant ? { variant: image.platform.variant } : {}),
    os: 'linux',
    config: {
      User: c.user,
      Entrypoint: c.entrypoint,
      Cmd: c.cmd,
      Env: c.env,
      WorkingDir: c.workingDir,
      Labels: c.labels,
    },
    rootfs: { type: 'layers', diff_ids: image.layers.map((l) => l.diffId) },
    history: image.layers.map(() => ({
      created: c.created,
      created_by: 'livepatch-operator image build',
    })),
  };
}

/** One architecture's image: its layers, bottom first. */
export interface PlatformImage {
  readonly platform: Platform;
  readonly layers: readonly Layer[];
}

export interface WrittenImage {
  readonly archive: string;
  /** The image index's digest: what `image.digest` pins, each node pulling its own architecture. */
  readonly digest: string;
  readonly reference: string;
  /** Each architecture's manifest digest, in the order of the index. */
  readonly manifests: readonly { readonly platform: Platform; readonly digest: string }[];
}

interface Blob {
  readonly bytes: Buffer;
  readonly digest: string;
}

const blob = (value: unknown): Blob => {
  const bytes = json(value);
  return { bytes, digest: sha256(bytes) };
};

function manifestOf(config: Blob, image: PlatformImage, created: string): Blob {
  return blob({
    schemaVersion: 2,
    mediaType: MEDIA.manifest,
    config: { mediaType: MEDIA.config, digest: config.digest, size: config.bytes.length },
    layers: image.layers.map((l) => ({ mediaType: MEDIA.layer, digest: l.digest, size: l.size })),
    annotations: { 'org.opencontainers.image.created': created },
  });
}

/**
 * Writes an OCI image layout for `reference` (repository:tag): an image index
 * of one manifest per architecture, named in index.json; Docker's manifest.json
 * beside it names the `load` architecture's image, the one `docker load`
 * takes. Then packs it into `archive`.
 */
export async function writeImageArchive(
  reference: string,
  config: ImageConfig,
  images: readonly PlatformImage[],
  archive: string,
  load: Platform,
): Promise<WrittenImage> {
  const layout = `${archive}.layout-${process.pid}`;
  await rm(layout, { recursive: true, force: true });
  await mkdir(join(layout, 'blobs', 'sha256'), { recursive: true });
  const built = images.map((image) => {
    const cfg = blob(configOf(config, image));
    return { image, cfg, manifest: manifestOf(cfg, image, config.created) };
  });
  const platformIndex = blob({
    schemaVersion: 2,
    mediaType: MEDIA.index,
    manifests: built.map(({ image, manifest }) => ({
      mediaType: MEDIA.manifest,
      digest: manifest.digest,
      size: manifest.bytes.length,
      platform: {
        architecture: image.platform.architecture,
        os: 'linux',
        ...(image.platform.variant ? { variant: image.platform.variant } : {}),
      },
    })),
  });
  const tag = reference.slice(reference.lastIndexOf(':') + 1);
  const index = {
    schemaVersion: 2,
    mediaType: MEDIA.index,
    manifests: [
      {
        mediaType: MEDIA.index,
        digest: platformIndex.digest,
        size: platformIndex.bytes.length,
        // containerd (kind) names the image from the first, skopeo and podman from the second.
        annotations: {
          'io.containerd.image.name': reference,
          'org.opencontainers.image.ref.name': tag,
        },
      },
    ],
  };
  const loaded = built.find((b) => b.image.platform === load) ?? built[0];
  if (!loaded) throw new Error('an image archive needs at least one image');
  const docker = [
    {
      Config: blobPath(loaded.cfg.digest),
      RepoTags: [reference],
      Layers: loaded.image.layers.map((l) => blobPath(l.digest)),
    },
  ];
  for (const b of [platformIndex, ...built.flatMap((x) => [x.cfg, x.manifest])])
    await writeFile(join(layout, blobPath(b.digest)), b.bytes);
  // An architecture-independent layer (the operator's) is one blob shared by every manifest.
  for (const l of new Map(images.flatMap((i) => i.layers).map((l) => [l.digest, l])).values())
    await copyFile(l.file, join(layout, blobPath(l.digest)));
  await writeFile(join(layout, 'oci-layout'), json({ imageLayoutVersion: '1.0.0' }));
  await writeFile(join(layout, 'index.json'), json(index));
  await writeFile(join(layout, 'manifest.json'), json(docker));
  await mkdir(dirname(archive), { recursive: true });
  const tar = tarStream(layout, (await readdir(layout)).sort());
  await pipeline(tar.stdout, createWriteStream(`${archive}.tmp-${process.pid}`));
  await rename(`${archive}.tmp-${process.pid}`, archive);
  await rm(layout, { recursive: true, force: true });
  return {
    archive,
    digest: platformIndex.digest,
    reference,
    manifests: built.map((b) => ({ platform: b.image.platform, digest: b.manifest.digest })),
  };
}
