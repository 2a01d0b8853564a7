// Builds the image the chart runs, without a container engine, for amd64 and
// arm64: per architecture three layers (Debian base, Node, the operator, whose
// layer both share), an OCI config and manifest, one image index over them, and
// one archive that docker, podman, kind and skopeo load; beside it, each
// architecture's bill of materials (sbom.ts). The same sources, package
// versions and Node give the same digest. The base and Node layers are cached
// by what goes into them; the operator's layer is built every time.
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { cacheRoot } from '../cache.js';
import type { Logger } from '../../src/log.js';
import { fetchDebianPackages, type DebianPackage } from './debian.js';
import { nodeBinary, pinnedNodeVersion, type NodeBinary } from './node.js';
import { packLayer, writeImageArchive, type Layer, type WrittenImage } from './oci.js';
import { hostPlatform, PLATFORMS, type Platform } from './platforms.js';
import {
  DEBIAN_PACKAGES,
  normalizeModes,
  stageApp,
  stageBase,
  stageNode,
  type NpmPackage,
} from './rootfs.js';
import { imageSbom } from './sbom.js';
import { runCommand } from '../command.js';
import { IMAGE_RUN } from './config.js';

export interface ImageOptions {
  /** The checkout to build from. */
  readonly repo: string;
  /** repository:tag, as the chart's image.repository and image.tag name it. */
  readonly reference: string;
  readonly archive: string;
  readonly log: Logger;
}

/** One architecture's image, as built. */
export interface BuiltPlatform {
  readonly platform: Platform;
  readonly manifestDigest: string;
  readonly layers: readonly Layer[];
  readonly debian: readonly DebianPackage[];
  readonly node: NodeBinary;
  /** Its CycloneDX bill of materials, beside the archive. */
  readonly sbom: string;
}

export interface BuiltImage extends WrittenImage {
  readonly platforms: readonly BuiltPlatform[];
  /** The operator's production dependencies, the same in every architecture. */
  readonly npm: readonly NpmPackage[];
}

/** Where the bill of materials of `platform` goes: beside the archive, named after it. */
export function sbomPath(archive: string, platform: Platform): string {
  return `${archive.replace(/\.oci\.tar$/, '')}.${platform.architecture}.cdx.json`;
}

const sha256 = (data: string | Buffer): string => createHash('sha256').update(data).digest('hex');

/** Layers are cached by their inputs and by this recipe (the staging code itself). */
async function recipeHash(): Promise<string> {
  const here = fileURLToPath(new URL('.', import.meta.url));
  const files = await Promise.all(
    ['rootfs', 'oci'].map((m) =>
      readFile(join(here, `${m}.js`)).catch(() => readFile(join(here, `${m}.ts`))),
    ),
  );
  return sha256(Buffer.concat(files)).slice(0, 16);
}

async function cachedLayer(
  key: string,
  stage: (dir: string) => Promise<void>,
  log: Logger,
): Promise<Layer> {
  const dir = join(cacheRoot(), 'image', 'layers');
  const meta = join(dir, `${key}.json`);
  const cached = await readFile(meta, 'utf8').then(
    (t) => JSON.parse(t) as Layer,
    () => undefined,
  );
  if (cached && (await stat(cached.file).catch(() => undefined))?.size === cached.size)
    return cached;
  const layer = await freshLayer(join(dir, `${key}.tar.gz`), stage, log);
  await writeFile(meta, JSON.stringify(layer));
  return layer;
}

async function freshLayer(
  out: string,
  stage: (dir: string) => Promise<void>,
  log: Logger,
): Promise<Layer> {
  const scratch = await mkdtemp(join(tmpdir(), 'livepatch-image-'));
  try {
    const root = join(scratch, 'root');
    await mkdir(root);
    await stage(root);
    await normalizeModes(root);
    const layer = await packLayer(root, out);
    log.debug('layer packed', { file: out, size: layer.size });
    return layer;
  } finally {
    await rm(scratch, { recursive: true, force: true });
  }
}

/** When the sources were committed (SOURCE_DATE_EPOCH wins), for the image's `created`. */
async function sourceDate(repo: string): Promise<string> {
  const epoch =
    process.env['SOURCE_DATE_EPOCH'] ??
    (await runCommand('git', ['log', '-1', '--format=%ct'], { cwd: repo }).then(
      (out) => out.trim(),
      () => '0',
    ));
  return new Date(Number(epoch) * 1000).toISOString();
}

async function gitRevision(repo: string): Promise<string> {
  return runCommand('git', ['rev-parse', 'HEAD'], { cwd: repo }).then(
    (out) => out.trim(),
    () => 'unknown',
  );
}

/** The Debian base and Node layers of one architecture, each cached by its inputs. */
async function platformLayers(
  platform: Platform,
  nodeVersion: string,
  recipe: string,
  log: Logger,
): Promise<{ base: Layer; node: Layer; debian: DebianPackage[]; binary: NodeBinary }> {
  const arch = platform.architecture;
  const debian = await fetchDebianPackages(DEBIAN_PACKAGES, arch, join(cacheRoot(), 'image'), log);
  const baseKey = sha256(debian.map((p) => `${p.name} ${p.version} ${p.sha256}`).join('\n'));
  const base = await cachedLayer(
    `base-${arch}-${recipe}-${baseKey.slice(0, 16)}`,
    (root) => stageBase(debian, root),
    log,
  );
  const binary = await nodeBinary(nodeVersion, platform, join(cacheRoot(), 'image', 'node'), log);
  const node = await cachedLayer(
    `node-${arch}-${recipe}-${binary.sha256.slice(0, 16)}`,
    (root) => stageNode(binary.file, root),
    log,
  );
  return { base, node, debian, binary };
}

export async function buildImage(o: ImageOptions): Promise<BuiltImage> {
  const recipe = await recipeHash();
  const nodeVersion = await pinnedNodeVersion(o.repo);
  // Both architectures at once: one's downloads overlap the other's gzip.
  const perPlatform = await Promise.all(
    PLATFORMS.map(async (platform) => ({
      platform,
      ...(await platformLayers(platform, nodeVersion, recipe, o.log)),
    })),
  );
  const scratch = await mkdtemp(join(tmpdir(), 'livepatch-image-app-'));
  try {
    let npm: NpmPackage[] = [];
    const app = await freshLayer(
      join(scratch, 'app.tar.gz'),
      async (root) => {
        npm = await stageApp(o.repo, root, scratch);
      },
      o.log,
    );
    const pkg = JSON.parse(await readFile(join(o.repo, 'package.json'), 'utf8')) as {
      version: string;
      license: string;
    };
    const created = await sourceDate(o.repo);
    const images = perPlatform.map((p) => ({
      platform: p.platform,
      layers: [p.base, p.node, app],
    }));
    const written = await writeImageArchive(
      o.reference,
      {
        ...IMAGE_RUN,
        labels: {
          'org.opencontainers.image.title': 'livepatch-operator',
          'org.opencontainers.image.version': pkg.version,
          'org.opencontainers.image.licenses': pkg.license,
          'org.opencontainers.image.revision': await gitRevision(o.repo),
          'org.opencontainers.image.source':
            'https://github.com/livepatch-operator/livepatch-operator',
        },
        created,
      },
      images,
      o.archive,
      hostPlatform(),
    );
    const platforms: BuiltPlatform[] = [];
    for (const p of perPlatform) {
      const manifestDigest = written.manifests.find((m) => m.platform === p.platform)?.digest;
      if (!manifestDigest) throw new Error(`the index has no ${p.platform.architecture} image`);
      const sbom = sbomPath(o.archive, p.platform);
      const bom = imageSbom({
        reference: o.reference,
        platform: p.platform,
        manifestDigest,
        created,
        operator: pkg,
        debian: p.debian,
        node: p.binary,
        npm,
      });
      await writeFile(sbom, `${JSON.stringify(bom, null, 2)}\n`);
      platforms.push({
        platform: p.platform,
        manifestDigest,
        layers: [p.base, p.node, app],
        debian: p.debian,
        node: p.binary,
        sbom,
      });
    }
    return { ...written, platforms, npm };
  } finally {
    await rm(scratch, { recursive: true, force: true });
  }
}
