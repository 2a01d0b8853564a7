// How the image runs, in one place: `npm run image` writes it into the OCI
// config, and the Dockerfile, a thin wrapper of the same build, repeats it
// (test/unit/chart.test.ts holds the two together).
import { IMAGE_USER } from './rootfs.js';

export const IMAGE_RUN = {
  user: `${IMAGE_USER.uid}:${IMAGE_USER.gid}`,
  entrypoint: ['/usr/local/bin/node', '/app/dist/src/cli/main.js'],
  cmd: ['--help'],
  env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', 'NODE_ENV=production'],
  workingDir: '/app',
} as const;
