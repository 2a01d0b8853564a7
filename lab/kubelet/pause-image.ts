// The sandbox image containerd starts first in every Pod. No registry is
// reachable from the harness, so it is built here: lab/go/pause, one static
// binary in one layer, written by the project's own OCI code.
import { copyFile, mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from '../../src/log.js';
import { repositoryRoot } from '../../src/paths.js';
import { ensureGoBuild } from '../controlplane/go-build.js';
import { packLayer, writeImageArchive, type WrittenImage } from '../image/oci.js';
import { hostPlatform } from '../image/platforms.js';

/** A name no registry has, so containerd never tries to pull it. */
export const PAUSE_IMAGE = 'localhost/livepatch-pause:1';

export async function buildPauseImage(dir: string, log: Logger): Promise<WrittenImage> {
  const built = await ensureGoBuild(
    {
      moduleDir: join(repositoryRoot(), 'lab', 'go', 'pause'),
      files: ['go.mod', 'main.go'],
      cacheName: () => 'pause',
      ldflags: () => '-s -w',
      packages: ['livepatch.io/operator/lab/pause'],
    },
    log,
  );
  const rootfs = join(dir, 'pause-rootfs');
  await rm(rootfs, { recursive: true, force: true });
  await mkdir(rootfs, { recursive: true });
  await copyFile(join(built.dir, 'pause'), join(rootfs, 'pause'));
  const layer = await packLayer(rootfs, join(dir, 'pause-layer.tar.gz'));
  // Built by Go for this machine: one manifest, for the kubelets here.
  const platform = hostPlatform();
  return writeImageArchive(
    PAUSE_IMAGE,
    {
      user: '65535:65535',
      entrypoint: ['/pause'],
      cmd: [],
      env: [],
      workingDir: '/',
      labels: {},
      created: '1970-01-01T00:00:00Z',
    },
    [{ platform, layers: [layer] }],
    join(dir, 'pause.oci.tar'),
    platform,
  );
}
