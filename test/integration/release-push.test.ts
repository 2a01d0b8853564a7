// The release workflow's "Push the image" step, its own script taken from
// release.yaml and run with bash as the runner runs it, with crane built from
// lab/go/release, against a registry crane serves on loopback: what lands
// under the version's tag is the image `npm run image` built, by digest.
// Needs what the image build needs (support/cluster-host.ts) and jq.
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdir, mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { parse } from 'yaml';
import type { BuiltImage } from '../../lab/image/build.js';
import { ensureHostPackages } from '../../lab/host-packages.js';
import { freePort } from '../../lab/ports.js';
import { ensureCrane } from '../../lab/release/tools.js';
import { runCommand } from '../../lab/command.js';
import { poll } from '../../lab/wait.js';
import { createLogger } from '../../src/log.js';
import { repositoryRoot } from '../../src/paths.js';
import { clusterHostProblem, clusterTestsRequired } from '../support/cluster-host.js';
import { buildTestImage } from '../support/image.js';

const log = createLogger({ component: 'release-push', format: 'text', level: 'warn' });
const VERSION = '0.0.0-test';

const skipReason =
  (await clusterHostProblem()) ??
  (await ensureHostPackages({ jq: 'jq' }, log, "the release's push step"));
if (skipReason) process.stderr.write(`release push test skipped: ${skipReason}\n`);
if (skipReason && clusterTestsRequired()) {
  test('the release push test is required on this machine (LIVEPATCH_CLUSTER_TESTS=require)', () => {
    throw new Error(`the release push test cannot run: ${skipReason}`);
  });
}

interface Step {
  id?: string;
  run?: string;
  env?: Record<string, string>;
}
const release = parse(
  await readFile(join(repositoryRoot(), '.github', 'workflows', 'release.yaml'), 'utf8'),
) as { jobs: { image: { steps: Step[] } } };
const pushStep = release.jobs.image.steps.find((s) => s.id === 'push');

let work = '';
let crane = '';
let registry: ChildProcess | undefined;
let host = '';
let built: BuiltImage;

beforeAll(async () => {
  if (skipReason) return;
  work = await mkdtemp(join(tmpdir(), 'release-push-'));
  const archive = join(work, 'workspace', 'dist', 'image', `livepatch-operator-${VERSION}.oci.tar`);
  await mkdir(join(work, 'workspace', 'dist', 'image'), { recursive: true });
  [built, crane] = await Promise.all([buildTestImage(archive), ensureCrane(log)]);
  host = `127.0.0.1:${await freePort()}`;
  registry = spawn(join(crane, 'crane'), ['registry', 'serve', '--address', host], {
    stdio: 'ignore',
  });
  const up = await poll(
    () => fetch(`http://${host}/v2/`).then((r) => r.status),
    (status) => status === 200,
    10_000,
    { retryErrors: true },
  );
  if (!up.ok) throw new Error(`crane registry serve did not answer on ${host}`);
}, 600_000);

afterAll(() => {
  registry?.kill();
});

(skipReason ? describe.skip : describe)("the release's push step", () => {
  test("pushes the image npm run image built under the version's tag, and says its digest", async () => {
    expect(pushStep?.run).toContain('crane push');
    const output = join(work, 'github-output');
    await writeFile(output, '');
    const script = join(work, 'push.sh');
    await writeFile(script, pushStep?.run ?? '');
    await mkdir(join(work, 'runner-temp'));
    await runCommand('bash', ['--noprofile', '--norc', '-eo', 'pipefail', script], {
      cwd: join(work, 'workspace'),
      env: {
        ...pushStep?.env,
        IMAGE: `${host}/livepatch-operator`,
        VERSION,
        TOKEN: 'not-a-token',
        GITHUB_ACTOR: 'release-test',
        GITHUB_OUTPUT: output,
        RUNNER_TEMP: join(work, 'runner-temp'),
        // crane auth login writes here, not into this machine's docker config.
        DOCKER_CONFIG: join(work, 'docker'),
        PATH: `${crane}${delimiter}${process.env['PATH'] ?? ''}`,
      },
    });
    expect(await readFile(output, 'utf8')).toBe(`digest=${built.digest}\n`);
    const tagged = await runCommand(join(crane, 'crane'), [
      'digest',
      `${host}/livepatch-operator:${VERSION}`,
    ]);
    expect(tagged.trim()).toBe(built.digest);
  });
});
