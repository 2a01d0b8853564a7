// The tools that read what the operator writes, as their users run them:
// kstatus (Flux, kpt, cli-utils), an Argo CD Lua health check under gopher-lua,
// and promtool. Built from the pinned module lab/go/readers on first use and
// cached by version like the control plane, so the tests check our status,
// health check and alert rules against the real readers, not a copy of them.
import { join } from 'node:path';
import type { Logger } from '../../src/log.js';
import { repositoryRoot } from '../../src/paths.js';
import { runCommand } from '../command.js';
import { ensureGoBuild, type GoBuild } from '../controlplane/go-build.js';

export interface Readers {
  readonly kstatus: string;
  readonly argohealth: string;
  readonly promtool: string;
}

/** What a reader concluded about one object. */
export interface Reading {
  readonly status: string;
  readonly message: string;
}

function pinned(goMod: string, module: string): string {
  const version = new RegExp(`^\\s*${module.replace(/[./]/g, '\\$&')} (v\\S+)`, 'm').exec(
    goMod,
  )?.[1];
  if (!version) throw new Error(`lab/go/readers/go.mod must require ${module}`);
  return version;
}

const PROMETHEUS = 'github.com/prometheus/prometheus';

const READERS_BUILD: GoBuild = {
  moduleDir: join(repositoryRoot(), 'lab', 'go', 'readers'),
  files: ['go.mod', 'go.sum', 'kstatus/main.go', 'argohealth/main.go'],
  cacheName: (goMod) =>
    join(
      'readers',
      `cli-utils-${pinned(goMod, 'sigs.k8s.io/cli-utils')}-prometheus-${pinned(goMod, PROMETHEUS)}`,
    ),
  ldflags: prometheusLdflags,
  packages: ['./kstatus', './argohealth', `${PROMETHEUS}/cmd/promtool`],
};

/** `--version` names the release its module version stands for (v0.316.0 is 3.16.0). */
function prometheusLdflags(goMod: string): string {
  const [, minor = '0', patch = '0'] = /^v0\.(\d+)\.(\d+)/.exec(pinned(goMod, PROMETHEUS)) ?? [];
  const release = `${minor.slice(0, -2) || '0'}.${String(Number(minor.slice(-2)))}.${patch}`;
  return `-s -w -X github.com/prometheus/common/version.Version=${release}`;
}

// The Prometheus server itself, from the same pinned module as promtool, for the
// alert gate's test. Its own build (and cache folder) because of the tag:
// remove_all_sd leaves out the cloud service discoveries (a third of its
// packages), keeping file and HTTP discovery, which is all a test needs.
const PROMETHEUS_BUILD: GoBuild = {
  moduleDir: READERS_BUILD.moduleDir,
  files: ['go.mod', 'go.sum'],
  cacheName: (goMod) => join('readers', `prometheus-${pinned(goMod, PROMETHEUS)}-remove_all_sd`),
  ldflags: prometheusLdflags,
  packages: [`${PROMETHEUS}/cmd/prometheus`],
  tags: ['remove_all_sd'],
};

/** The path of the built `prometheus` server, building it on first use. */
export async function ensurePrometheus(log: Logger): Promise<string> {
  const { dir } = await ensureGoBuild(PROMETHEUS_BUILD, log);
  return join(dir, 'prometheus');
}

export async function ensureReaders(log: Logger): Promise<Readers> {
  const { dir } = await ensureGoBuild(READERS_BUILD, log);
  return {
    kstatus: join(dir, 'kstatus'),
    argohealth: join(dir, 'argohealth'),
    promtool: join(dir, 'promtool'),
  };
}

function reading(stdout: string): Reading {
  const parsed = JSON.parse(stdout) as Partial<Reading>;
  if (typeof parsed.status !== 'string') throw new Error(`a reader printed no status: ${stdout}`);
  return { status: parsed.status, message: parsed.message ?? '' };
}

/** kstatus's status (InProgress, Current, Failed, Terminating, ...) of one object. */
export async function kstatusOf(readers: Readers, object: unknown): Promise<Reading> {
  return reading(await runCommand(readers.kstatus, [], { input: JSON.stringify(object) }));
}

/** The health (Healthy, Progressing, Degraded, Suspended, ...) an Argo CD health.lua gives one object. */
export async function argoHealthOf(
  readers: Readers,
  healthLua: string,
  object: unknown,
): Promise<Reading> {
  return reading(
    await runCommand(readers.argohealth, [healthLua], { input: JSON.stringify(object) }),
  );
}
