// OCI image pieces, written so that the same files give the same bytes: each
// layer is a GNU tar with sorted names, zero times and root owners, gzipped by
// the project's own Node; the archive holds an OCI image layout plus Docker's
// manifest.json, so `docker load`, `podman load`, `kind load image-archive`
// (containerd) and `skopeo copy oci-archive:` all take it.
import { spawn, type ChildProcessByStdio } from 'node:child_process';
import { createHash, type Hash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { copyFile, mkdir, readdir, rename, rm, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { Transform, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGzip } from 'node:zlib';

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

function configBlob(c: ImageConfig, layers: readonly Layer[]): Buffer {
  return json({
    created: c.created,
    architecture: 'amd64',
    os: 'linux',
    config: {
      User: c.user,
      Entrypoint: c.entrypoint,
      Cmd: c.cmd,
      Env: c.env,
      WorkingDir: c.workingDir,
      Labels: c.labels,
    },
    rootfs: { type: 'layers', diff_ids: layers.map((l) => l.diffId) },
    history: layers.map(() => ({
      created: c.created,
      created_by: 'livepatch-operator image build',
    })),
  });
}

export interface WrittenImage {
  readonly archive: string;
  /** The manifest's digest: what `image.digest` pins. */
  readonly digest: string;
  readonly reference: string;
}

/** Writes an OCI image layout for `reference` (repository:tag), then packs it into `archive`. */
export async function writeImageArchive(
  reference: string,
  config: ImageConfig,
  layers: readonly Layer[],
  archive: string,
): Promise<WrittenImage> {
  const layout = `${archive}.layout-${process.pid}`;
  await rm(layout, { recursive: true, force: true });
  await mkdir(join(layout, 'blobs', 'sha256'), { recursive: true });
  const cfg = configBlob(config, layers);
  const manifest = json({
    schemaVersion: 2,
    mediaType: MEDIA.manifest,
    config: { mediaType: MEDIA.config, digest: sha256(cfg), size: cfg.length },
    layers: layers.map((l) => ({ mediaType: MEDIA.layer, digest: l.digest, size: l.size })),
    annotations: { 'org.opencontainers.image.created': config.created },
  });
  const tag = reference.slice(reference.lastIndexOf(':') + 1);
  const index = {
    schemaVersion: 2,
    mediaType: MEDIA.index,
    manifests: [
      {
        mediaType: MEDIA.manifest,
        digest: sha256(manifest),
        size: manifest.length,
        // containerd (kind) names the image from the first, skopeo and podman from the second.
        annotations: {
          'io.containerd.image.name': reference,
          'org.opencontainers.image.ref.name': tag,
        },
      },
    ],
  };
  const docker = [
    {
      Config: blobPath(sha256(cfg)),
      RepoTags: [reference],
      Layers: layers.map((l) => blobPath(l.digest)),
    },
  ];
  await writeFile(join(layout, blobPath(sha256(cfg))), cfg);
  await writeFile(join(layout, blobPath(sha256(manifest))), manifest);
  for (const l of layers) await copyFile(l.file, join(layout, blobPath(l.digest)));
  await writeFile(join(layout, 'oci-layout'), json({ imageLayoutVersion: '1.0.0' }));
  await writeFile(join(layout, 'index.json'), json(index));
  await writeFile(join(layout, 'manifest.json'), json(docker));
  await mkdir(dirname(archive), { recursive: true });
  const tar = tarStream(layout, (await readdir(layout)).sort());
  await pipeline(tar.stdout, createWriteStream(`${archive}.tmp-${process.pid}`));
  await rename(`${archive}.tmp-${process.pid}`, archive);
  await rm(layout, { recursive: true, force: true });
  return { archive, digest: sha256(manifest), reference };
}
