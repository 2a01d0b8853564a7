// The image as tests use it: built by the same code as `npm run image`, then
// unpacked as a container runtime does (lab/image/unpack.ts).
import { buildImage, type BuiltImage } from '../../lab/image/build.js';
import { createLogger } from '../../src/log.js';
import { repositoryRoot } from '../../src/paths.js';

/** A tag no registry has: pods can only get it from this machine's loaded images. */
export const TEST_IMAGE = 'localhost/livepatch-operator:test';

export function buildTestImage(archive: string, reference = TEST_IMAGE): Promise<BuiltImage> {
  return buildImage({
    repo: repositoryRoot(),
    reference,
    archive,
    log: createLogger({
      component: 'image',
      format: 'text',
      level: process.env['LOG_LEVEL'] ?? 'warn',
    }),
  });
}
