// `npm run image`: builds the image the chart references by default
// (values.yaml image.repository, Chart.yaml appVersion) into one archive, with
// no container engine, and says how to load it.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { parse } from 'yaml';
import { createLogger } from '../../src/log.js';
import { repositoryRoot } from '../../src/paths.js';
import { buildImage } from './build.js';
import { unpackImage } from './unpack.js';

const HELP = `Usage: npm run image -- [--repository REPO] [--tag TAG] [--out FILE] [--rootfs DIR]

Builds the livepatch-operator image from Debian packages, the project's
pinned Node and the sources, without Docker, into an OCI archive that
docker load, podman load, kind load image-archive and skopeo accept.

  --repository REPO   default: the chart's image.repository
  --tag TAG           default: the chart's appVersion
  --out FILE          default: dist/image/livepatch-operator-TAG.oci.tar
  --rootfs DIR        also unpack the image's files into DIR/root, as a
                      container runtime would (the Dockerfile copies them)
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
  const image = await buildImage({ repo, reference, archive, log });
  if (values.rootfs !== undefined) await unpackImage(image.archive, values.rootfs);
  const compressed = image.layers.reduce((n, l) => n + l.size, 0);
  const unpacked = image.layers.reduce((n, l) => n + l.uncompressedSize, 0);
  process.stdout.write(
    [
      `image    ${image.reference}`,
      `digest   ${image.digest}`,
      `archive  ${image.archive}`,
      `size     ${(compressed / MiB).toFixed(1)} MiB compressed, ${(unpacked / MiB).toFixed(1)} MiB unpacked`,
      `node     ${image.nodeVersion}`,
      `debian   ${image.packages.map((p) => `${p.name}=${p.version}`).join(' ')}`,
      '',
      'Load it:  kind load image-archive ARCHIVE --name CLUSTER | docker load -i ARCHIVE | podman load -i ARCHIVE',
      'Push it:  skopeo copy oci-archive:ARCHIVE docker://REGISTRY/livepatch-operator:TAG',
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
