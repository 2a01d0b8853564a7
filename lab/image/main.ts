// `npm run image`: builds the image the chart references by default
// (values.yaml image.repository, Chart.yaml appVersion), for every architecture
// in one archive, with no container engine, and says how to load it.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { parse } from 'yaml';
import { createLogger } from '../../src/log.js';
import { repositoryRoot } from '../../src/paths.js';
import { buildImage } from './build.js';
import { hostPlatform, platformOf, PLATFORMS } from './platforms.js';
import { unpackImage } from './unpack.js';

const HELP = `Usage: npm run image -- [--repository REPO] [--tag TAG] [--out FILE]
                         [--rootfs DIR [--rootfs-arch ARCH]]

Builds the livepatch-operator image for ${PLATFORMS.map((p) => p.architecture).join(' and ')} from Debian
packages, the project's pinned Node and the sources, without Docker, into
one OCI archive (an image index of both) that docker load, podman load,
kind load image-archive and skopeo copy --all accept, and beside it each
architecture's bill of materials (CycloneDX 1.5 JSON, FILE.ARCH.cdx.json
without the .oci.tar).

  --repository REPO   default: the chart's image.repository
  --tag TAG           default: the chart's appVersion
  --out FILE          default: dist/image/livepatch-operator-TAG.oci.tar
  --rootfs DIR        also unpack the image's files into DIR/root, as a
                      container runtime would (the Dockerfile copies them)
  --rootfs-arch ARCH  the architecture --rootfs unpacks (default: this
                      machine's, ${hostPlatform().architecture})
`;

const MiB = 1024 * 1024;

async function chartDefaults(repo: string): Promise<{ repository: string; tag: string }> {
  const chart = join(repo, 'charts', 'livepatch-operator');
  const values = parse(await readFile(join(chart, 'values.yaml'), 'utf8')) as {
    image: { repository: string };
  };
  const meta = parse(await readFile(join(chart, 'Chart.yaml'), 'utf8')) as { appVersion: string };
  return { repository: values.image.repository, tag: meta.appVersion };
}

async function main(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      repository: { type: 'string' },
      tag: { type: 'string' },
      out: { type: 'string' },
      rootfs: { type: 'string' },
      'rootfs-arch': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    process.stdout.write(HELP);
    return 0;
  }
  const repo = repositoryRoot();
  const defaults = await chartDefaults(repo);
  const tag = values.tag ?? defaults.tag;
  const reference = `${values.repository ?? defaults.repository}:${tag}`;
  const archive = values.out ?? join(repo, 'dist', 'image', `livepatch-operator-${tag}.oci.tar`);
  const log = createLogger({ component: 'image' });
  const rootfsArch = platformOf(values['rootfs-arch'] ?? hostPlatform().architecture);
  const image = await buildImage({ repo, reference, archive, log });
  if (values.rootfs !== undefined)
    await unpackImage(image.archive, values.rootfs, rootfsArch.architecture);
  const lines = [
    `image    ${image.reference}`,
    `digest   ${image.digest} (the index of ${image.platforms.length} architectures)`,
    `archive  ${image.archive}`,
  ];
  for (const p of image.platforms) {
    const compressed = p.layers.reduce((n, l) => n + l.size, 0);
    const unpacked = p.layers.reduce((n, l) => n + l.uncompressedSize, 0);
    lines.push(
      '',
      `${p.platform.architecture}    ${p.manifestDigest}`,
      `  size   ${(compressed / MiB).toFixed(1)} MiB compressed, ${(unpacked / MiB).toFixed(1)} MiB unpacked`,
      `  node   ${p.node.packageName}@${p.node.version}`,
      `  debian ${p.debian.map((d) => `${d.name}=${d.version}`).join(' ')}`,
      `  sbom   ${p.sbom}`,
    );
  }
  process.stdout.write(
    [
      ...lines,
      '',
      'Load it:  kind load image-archive ARCHIVE --name CLUSTER | docker load -i ARCHIVE | podman load -i ARCHIVE',
      'Push it:  skopeo copy --all oci-archive:ARCHIVE docker://REGISTRY/livepatch-operator:TAG',
      '',
    ].join('\n'),
  );
  return 0;
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(`image: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = 1;
  },
);
