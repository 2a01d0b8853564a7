// The GitHub Actions workflows as actionlint reads them (built from the
// version lab/go/release pins), with Debian's shellcheck over every `run:`
// script: no findings, and a broken copy shows both kinds are reported.
// shellcheck is a host package: installed with apt as root on Debian, else
// the test is skipped with the reason, unless required (see
// support/cluster-host.ts).
import { beforeAll, describe, expect, test } from '@jest/globals';
import { mkdir, mkdtemp, readFile, readdir, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ensureHostPackages } from '../../lab/host-packages.js';
import { ensureActionlint, lintWorkflows } from '../../lab/release/tools.js';
import { createLogger } from '../../src/log.js';
import { repositoryRoot } from '../../src/paths.js';
import { clusterTestsRequired } from '../support/cluster-host.js';
import { onPath } from '../support/which.js';

const log = createLogger({ component: 'workflows', format: 'text', level: 'warn' });
const WORKFLOWS = join('.github', 'workflows');

const skipReason = await ensureHostPackages({ shellcheck: 'shellcheck' }, log, 'the workflow lint');
if (skipReason) process.stderr.write(`workflow lint skipped: ${skipReason}\n`);
if (skipReason && clusterTestsRequired()) {
  test('the workflow lint is required on this machine (LIVEPATCH_CLUSTER_TESTS=require)', () => {
    throw new Error(`the workflow lint cannot run: ${skipReason}`);
  });
}

let actionlint = '';
let shellcheck = '';
let names: string[] = [];

beforeAll(async () => {
  if (skipReason) return;
  actionlint = await ensureActionlint(log);
  shellcheck = onPath('shellcheck');
  names = (await readdir(join(repositoryRoot(), WORKFLOWS))).filter((n) => /\.ya?ml$/.test(n));
}, 600_000);

(skipReason ? describe.skip : describe)('actionlint with shellcheck', () => {
  test('finds nothing in the workflows', async () => {
    expect(names.sort()).toEqual(['ci.yaml', 'release.yaml']);
    const findings = await lintWorkflows(
      actionlint,
      repositoryRoot(),
      names.map((n) => join(WORKFLOWS, n)),
      shellcheck,
    );
    expect(findings).toEqual([]);
  });

  test('reports an unquoted variable in a script and an output no job has, in a broken copy', async () => {
    const project = await mkdtemp(join(tmpdir(), 'workflows-'));
    await mkdir(join(project, WORKFLOWS), { recursive: true });
    for (const n of names) {
      let text = await readFile(join(repositoryRoot(), WORKFLOWS, n), 'utf8');
      if (n === 'release.yaml') {
        const broken = text
          .replace('helm lint "$CHART_DIR"', 'helm lint $CHART_DIR')
          .replace('needs.build.outputs.version', 'needs.build.outputs.versions');
        expect(broken).not.toBe(text);
        text = broken;
      }
      await writeFile(join(project, WORKFLOWS, n), text);
    }
    const findings = await lintWorkflows(
      actionlint,
      project,
      names.map((n) => join(WORKFLOWS, n)),
      shellcheck,
    );
    expect(findings.map((f) => [f.filepath, f.kind])).toEqual([
      [join(WORKFLOWS, 'release.yaml'), 'expression'],
      [join(WORKFLOWS, 'release.yaml'), 'shellcheck'],
    ]);
    expect(findings[0]?.message).toContain('"versions" is not defined');
    expect(findings[1]?.message).toContain('SC2086');
  });
});
