// Builds the image the chart runs, without a container engine: three layers
// (Debian base, Node, the operator), an OCI config, and one archive that
// docker, podman, kind and skopeo load. The same sources, package versions and
// Node binary give the same digest. The base and Node layers are cached by
// what goes into them; the operator's layer is built every time.
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { cacheRoot } from '../cache.js';
import type { Logger } from '../../src/log.js';
import { fetchDebianPackages, type DebianPackage } from './debian.js';
import { packLayer, writeImageArchive, type Layer, type WrittenImage } from './oci.js';
import { DEBIAN_PACKAGES, normalizeModes, stageApp, stageBase, stageNode } from './rootfs.js';
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

export interface BuiltImage extends WrittenImage {
  readonly layers: readonly Layer[];
  readonly packages: readonly DebianPackage[];
  readonly nodeVersion: string;
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

/** The project's own Node (the `node` devDependency), checked against the pinned version. */
async function pinnedNode(repo: string): Promise<{ binary: string; version: string }> {
  const pkg = JSON.parse(await readFile(join(repo, 'package.json'), 'utf8')) as {
    devDependencies?: Record<string, string>;
  };
  const pinned = pkg.devDependencies?.['node'] ?? '';
  const binary = join(repo, 'node_modules', 'node', 'bin', 'node');
  const stdout = await runCommand(binary, ['--version']);
  const version = stdout.trim();
  if (version !== `v${pinned}`)
    throw new Error(`node_modules/node is ${version}, package.json pins ${pinned}: run npm ci`);
  return { binary, version };
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

export async function buildImage(o: ImageOptions): Promise<BuiltImage> {
  const recipe = await recipeHash();
  const packages = await fetchDebianPackages(
    DEBIAN_PACKAGES,
    join(cacheRoot(), 'image', 'apt'),
    o.log,
  );
  const baseKey = sha256(packages.map((p) => `${p.name} ${p.version} ${p.sha256}`).join('\n'));
  const base = await cachedLayer(
    `base-${recipe}-${baseKey.slice(0, 16)}`,
    (root) => stageBase(packages, root),
    o.log,
  );
  const node = await pinnedNode(o.repo);
  const nodeKey = sha256(await readFile(node.binary)).slice(0, 16);
  const nodeLayer = await cachedLayer(
    `node-${recipe}-${nodeKey}`,
    (root) => stageNode(node.binary, root),
    o.log,
  );
  const scratch = await mkdtemp(join(tmpdir(), 'livepatch-image-app-'));
  try {
    const app = await freshLayer(
      join(scratch, 'app.tar.gz'),
      (root) => stageApp(o.repo, root, scratch),
      o.log,
    );
    const layers = [base, nodeLayer, app];
    const pkg = JSON.parse(await readFile(join(o.repo, 'package.json'), 'utf8')) as {
      version: string;
      license: string;
    };
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
        created: await sourceDate(o.repo),
      },
      layers,
      o.archive,
    );
    return { ...written, layers, packages, nodeVersion: node.version };
  } finally {
    await rm(scratch, { recursive: true, force: true });
  }
}
