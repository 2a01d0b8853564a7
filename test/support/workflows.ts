// What a user of the release relies on in the GitHub Actions workflows, as
// checks that return what they found wrong (empty when all is well), so a
// test can run them on the real files and on broken copies: every action
// pinned by its commit, nothing published unless the whole .ci/run passed,
// OIDC tokens only where something is signed, and the tree's own code run
// without write tokens.
import { parseDocument, isScalar } from 'yaml';

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
type JsonObject = Record<string, Json>;

const isObject = (v: unknown): v is JsonObject =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

/** A workflow file: its name under .github/workflows and its text. */
export interface WorkflowFile {
  readonly name: string;
  readonly text: string;
}

interface Step {
  readonly uses?: string;
  readonly run?: string;
  readonly if?: string;
  readonly continueOnError: boolean;
  /** The comment on the `uses:` line, e.g. "v7.0.1". */
  readonly usesComment?: string;
}

interface Job {
  readonly id: string;
  readonly needs: readonly string[];
  readonly if?: string;
  /** undefined when the job declares none (it then gets the workflow's). */
  readonly permissions?: Json;
  readonly uses?: string;
  readonly usesComment?: string;
  readonly steps: readonly Step[];
}

interface Workflow {
  readonly name: string;
  readonly permissions?: Json;
  readonly jobs: readonly Job[];
}

const str = (v: Json | undefined): string | undefined => (typeof v === 'string' ? v : undefined);

function parseWorkflow(file: WorkflowFile): Workflow {
  const doc = parseDocument(file.text);
  if (doc.errors.length) throw new Error(`${file.name}: ${doc.errors[0]?.message ?? ''}`);
  const root: unknown = doc.toJS();
  if (!isObject(root) || !isObject(root['jobs'])) throw new Error(`${file.name}: no jobs`);
  const comment = (path: (string | number)[]): string | undefined => {
    const node = doc.getIn(path, true);
    return isScalar(node) ? node.comment?.trim() : undefined;
  };
  const jobs = Object.entries(root['jobs']).map(([id, raw]): Job => {
    const job = isObject(raw) ? raw : {};
    const needs = job['needs'];
    const steps = Array.isArray(job['steps']) ? job['steps'] : [];
    const uses = str(job['uses']);
    return {
      id,
      needs: typeof needs === 'string' ? [needs] : Array.isArray(needs) ? needs.map(String) : [],
      ...(str(job['if']) !== undefined ? { if: str(job['if']) } : {}),
      ...('permissions' in job ? { permissions: job['permissions'] } : {}),
      ...(uses !== undefined ? { uses, usesComment: comment(['jobs', id, 'uses']) } : {}),
      steps: steps.map((s, i): Step => {
        const step = isObject(s) ? s : {};
        const stepUses = str(step['uses']);
        return {
          ...(stepUses !== undefined
            ? { uses: stepUses, usesComment: comment(['jobs', id, 'steps', i, 'uses']) }
            : {}),
          ...(str(step['run']) !== undefined ? { run: str(step['run']) } : {}),
          ...(str(step['if']) !== undefined ? { if: str(step['if']) } : {}),
          continueOnError: step['continue-on-error'] !== undefined,
        };
      }),
    };
  });
  return {
    name: file.name,
    ...('permissions' in root ? { permissions: root['permissions'] } : {}),
    jobs,
  };
}

const LOCAL = /^\.\/\.github\/workflows\/([^/@]+)$/;
const PINNED = /^[\w.-]+\/[\w./-]+@[0-9a-f]{40}$/;
const VERSION_COMMENT = /^v\d+(\.\d+)*$/;

/** Every action and reusable workflow pinned: by a full commit with its version beside it, or a file of this repository. */
export function unpinnedUses(files: readonly WorkflowFile[]): string[] {
  const names = new Set(files.map((f) => f.name));
  return files.map(parseWorkflow).flatMap((wf) =>
    wf.jobs.flatMap((job) =>
      [job, ...job.steps].flatMap(({ uses, usesComment }) => {
        if (uses === undefined) return [];
        const where = `${wf.name} job ${job.id}: ${uses}`;
        const local = LOCAL.exec(uses)?.[1];
        if (local !== undefined)
          return names.has(local) ? [] : [`${where} is not a workflow of this repository`];
        if (!PINNED.test(uses)) return [`${where} is not pinned by a full commit`];
        return VERSION_COMMENT.test(usesComment ?? '')
          ? []
          : [`${where} has no "# vX.Y.Z" comment saying which release the commit is`];
      }),
    ),
  );
}

/** Whether the job runs the whole .ci/run and its result counts. */
function runsCi(job: Job, files: readonly WorkflowFile[]): boolean {
  const local = job.uses !== undefined ? LOCAL.exec(job.uses)?.[1] : undefined;
  if (local !== undefined) {
    const called = files.find((f) => f.name === local);
    return called !== undefined && parseWorkflow(called).jobs.some((j) => runsCi(j, files));
  }
  return (
    job.if === undefined &&
    job.steps.some((s) => s.run?.trim() === '.ci/run' && s.if === undefined && !s.continueOnError)
  );
}

// A job with one of these in its condition runs whatever became of the jobs it needs.
const STATUS_OVERRIDE = /\b(always|failure|cancelled)\s*\(/;

/** In `workflow`, every job but the .ci/run job needs it (maybe through others) and does not run when it failed. */
export function ungatedJobs(workflow: string, files: readonly WorkflowFile[]): string[] {
  const file = files.find((f) => f.name === workflow);
  if (!file) return [`${workflow} is missing`];
  const wf = parseWorkflow(file);
  const byId = new Map(wf.jobs.map((j) => [j.id, j]));
  const gates = new Set(wf.jobs.filter((j) => runsCi(j, files)).map((j) => j.id));
  if (gates.size === 0) return [`${workflow}: no job runs the whole .ci/run`];
  const gated = (id: string, seen: Set<string>): boolean => {
    if (gates.has(id)) return true;
    const job = byId.get(id);
    if (!job || seen.has(id) || STATUS_OVERRIDE.test(job.if ?? '')) return false;
    seen.add(id);
    return job.needs.some((n) => gated(n, seen));
  };
  return wf.jobs
    .filter((j) => !gates.has(j.id) && !gated(j.id, new Set()))
    .map((j) => `${workflow} job ${j.id} can run without .ci/run having passed`);
}

const signs = (job: Job): boolean =>
  job.steps.some(
    (s) =>
      /\bcosign (sign|attest)\b/.test(s.run ?? '') ||
      /^actions\/attest(-build-provenance)?@/.test(s.uses ?? ''),
  );

const grants = (permissions: Json | undefined, scope: string): Json | undefined =>
  isObject(permissions) ? permissions[scope] : permissions;

const writes = (permissions: Json | undefined): boolean =>
  permissions === 'write-all' ||
  (isObject(permissions) && Object.values(permissions).includes('write'));

const runsTreeCode = (job: Job): boolean =>
  job.steps.some((s) => /\bnpm (ci|install|run)\b/.test(s.run ?? ''));

/**
 * Least privilege: the workflow grants nothing itself, every job says what it
 * may do, id-token (a signing identity) only in the jobs that sign and in all
 * of them, and no job that runs the tree's code (npm) may write.
 */
export function excessPermissions(files: readonly WorkflowFile[]): string[] {
  const found: string[] = [];
  for (const wf of files.map(parseWorkflow)) {
    if (!isObject(wf.permissions) || Object.keys(wf.permissions).length > 0)
      found.push(`${wf.name}: the workflow's permissions must be {} (each job says its own)`);
    for (const job of wf.jobs) {
      const where = `${wf.name} job ${job.id}`;
      if (job.permissions === undefined) {
        found.push(`${where} declares no permissions`);
        continue;
      }
      const idToken =
        grants(job.permissions, 'id-token') === 'write' || job.permissions === 'write-all';
      if (idToken && !signs(job)) found.push(`${where} may mint an OIDC token but signs nothing`);
      if (!idToken && signs(job)) found.push(`${where} signs without id-token: write`);
      if (runsTreeCode(job) && writes(job.permissions))
        found.push(`${where} runs the tree's code (npm) with write permissions`);
    }
  }
  return found;
}
