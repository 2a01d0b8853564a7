// The release workflow's tools, pinned in lab/go/release and built from the
// Go module proxy on first use: actionlint checks the workflows as GitHub
// Actions users lint theirs (with shellcheck over every `run:` script), and
// crane, which the release pushes the image with, runs its push step in a test.
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { Logger } from '../../src/log.js';
import { repositoryRoot } from '../../src/paths.js';
import { ensureGoBuild, type GoBuild } from '../controlplane/go-build.js';

const run = promisify(execFile);

function pinned(goMod: string, module: string): string {
  const version = new RegExp(`^\\s*${module.replace(/[./]/g, '\\$&')} (v\\S+)`, 'm').exec(
    goMod,
  )?.[1];
  if (!version) throw new Error(`lab/go/release/go.mod must require ${module}`);
  return version;
}

const MODULE_DIR = join(repositoryRoot(), 'lab', 'go', 'release');
const ACTIONLINT = 'github.com/rhysd/actionlint';
const GGCR = 'github.com/google/go-containerregistry';

const ACTIONLINT_BUILD: GoBuild = {
  moduleDir: MODULE_DIR,
  files: ['go.mod', 'go.sum'],
  cacheName: (goMod) => join('actionlint', `actionlint-${pinned(goMod, ACTIONLINT)}`),
  ldflags: (goMod) => `-s -w -X ${ACTIONLINT}.version=${pinned(goMod, ACTIONLINT)}`,
  packages: [`${ACTIONLINT}/cmd/actionlint`],
};

const CRANE_BUILD: GoBuild = {
  moduleDir: MODULE_DIR,
  files: ['go.mod', 'go.sum'],
  cacheName: (goMod) => join('crane', `crane-${pinned(goMod, GGCR)}`),
  ldflags: () => '-s -w',
  packages: [`${GGCR}/cmd/crane`],
};

/** The folder holding the built `crane`. */
export async function ensureCrane(log: Logger): Promise<string> {
  return (await ensureGoBuild(CRANE_BUILD, log)).dir;
}

export async function ensureActionlint(log: Logger): Promise<string> {
  const { dir } = await ensureGoBuild(ACTIONLINT_BUILD, log);
  return join(dir, 'actionlint');
}

/** One finding, as actionlint's JSON output gives it. */
export interface LintFinding {
  readonly message: string;
  readonly filepath: string;
  readonly line: number;
  readonly column: number;
  /** The rule: "expression", "permissions", "shellcheck", … */
  readonly kind: string;
}

/**
 * actionlint's findings on `files`, run in `projectDir` (where it looks for
 * .github/workflows, so local reusable workflows resolve); `shellcheck` is
 * the command it runs over `run:` scripts.
 */
export async function lintWorkflows(
  actionlint: string,
  projectDir: string,
  files: readonly string[],
  shellcheck: string,
): Promise<LintFinding[]> {
  const args = ['-no-color', '-format', '{{json .}}', '-shellcheck', shellcheck, ...files];
  const stdout = await run(actionlint, args, { cwd: projectDir }).then(
    (r) => r.stdout,
    (err: unknown) => {
      // Exit status 1 is "found problems", with the findings on stdout; others are failures.
      const { code, stdout } = (err ?? {}) as { code?: unknown; stdout?: unknown };
      if (code !== 1 || typeof stdout !== 'string') throw err;
      return stdout;
    },
  );
  return JSON.parse(stdout.trim() || '[]') as LintFinding[];
}
