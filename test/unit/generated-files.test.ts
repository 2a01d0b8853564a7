// The CRD YAML (plain and in the Helm chart) and the TypeScript types come from
// one source; a hand edit or a forgotten `npm run generate` fails here.
import { describe, expect, test } from '@jest/globals';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { generatedFiles } from '../../lab/generate/generate.js';
import { repositoryRoot } from '../../src/paths.js';

describe('generated files match their source', () => {
  test.each([...generatedFiles()])(
    '%s is up to date (run `npm run generate`)',
    async (path, expected) => {
      const committed = await readFile(join(repositoryRoot(), path), 'utf8').catch(
        () => '<missing>',
      );
      expect(committed).toBe(expected);
    },
  );

  test('both CRDs are generated, for kubectl and for the chart', () => {
    const paths = [...generatedFiles().keys()];
    for (const name of ['livepatches.livepatch.io', 'livepatchnodes.livepatch.io']) {
      expect(paths).toContain(`crds/${name}.yaml`);
      expect(paths).toContain(`charts/livepatch-operator/crds/${name}.yaml`);
    }
  });
});
