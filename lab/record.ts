// The header every lab record carries (bench/results/latest.json,
// bench/results/chaos.json, test-results/real-kernel.json), so that a figure
// says which code made it, on which Node, and how busy the machine was:
// the commit and whether the tree was clean (read at the start of the run:
// the code that ran), the Node that ran it and the one package.json pins,
// the machine, and the 1-minute load average sampled while the run went on.
import { readFileSync } from 'node:fs';
import { cpus, loadavg, release, totalmem } from 'node:os';
import { join } from 'node:path';
import { repositoryRoot } from '../src/paths.js';
import { runCommand } from './command.js';

/** How often the load average is sampled during a run. */
export const LOAD_SAMPLE_MS = 5_000;

/** The 1-minute load average over a run: at its start and end, its mean and maximum over samples every 5 s. */
export interface LoadSummary {
  readonly sampledEverySeconds: number;
  readonly samples: number;
  readonly start: number;
  readonly end: number;
  readonly mean: number;
  readonly max: number;
}

export interface RecordHeader {
  readonly commit: string;
  /** `git status --porcelain` printed nothing when the run started. */
  readonly cleanTree: boolean;
  /** The Node that ran it (process.version). */
  readonly node: string;
  /** The Node package.json pins (devDependencies.node), with a leading v. */
  readonly pinnedNode: string;
  readonly cpus: number;
  readonly cpuModel: string;
  readonly memoryGiB: number;
  readonly kernel: string;
  readonly startedAt: string;
  readonly finishedAt: string;
  readonly load: LoadSummary;
}

const round2 = (n: number): number => Math.round(n * 100) / 100;

/** The summary of load samples taken in order (the first at the start, the last at the end). */
export function summariseLoad(samples: readonly number[]): LoadSummary {
  const n = samples.length;
  return {
    sampledEverySeconds: LOAD_SAMPLE_MS / 1000,
    samples: n,
    start: round2(samples[0] ?? 0),
    end: round2(samples.at(-1) ?? 0),
    mean: round2(n ? samples.reduce((s, x) => s + x, 0) / n : 0),
    max: round2(Math.max(0, ...samples)),
  };
}

/** The Node version package.json pins, as process.version spells it (v24.21.0). */
export function pinnedNodeOf(manifest: {
  readonly devDependencies?: Readonly<Record<string, string>>;
}): string {
  const pin = manifest.devDependencies?.['node'];
  if (!pin || !/^\d+\.\d+\.\d+$/.test(pin))
    throw new Error(
      `package.json pins no exact Node (devDependencies.node is ${JSON.stringify(pin)})`,
    );
  return `v${pin}`;
}

export function pinnedNode(): string {
  const text = readFileSync(join(repositoryRoot(), 'package.json'), 'utf8');
  return pinnedNodeOf(JSON.parse(text) as { devDependencies?: Record<string, string> });
}

/** Why a record must not be written from this Node, or undefined when it is the pinned one. */
export function nodeRefusal(running: string, pinned: string, what: string): string | undefined {
  if (running === pinned) return undefined;
  return (
    `refusing to record ${what}: this is Node ${running}, the project pins ${pinned} ` +
    `(package.json devDependencies.node). Figures from another Node are not comparable. ` +
    `Run it through npm (npm run ...), which puts the pinned node_modules/.bin/node first, ` +
    `or run node_modules/.bin/node yourself.`
  );
}

/** Exits 2 with the reason when this process is not the pinned Node; call before a run that records. */
export function requirePinnedNode(what: string): void {
  const why = nodeRefusal(process.version, pinnedNode(), what);
  if (!why) return;
  console.error(why);
  process.exit(2);
}

const git = async (args: readonly string[]): Promise<string> =>
  (await runCommand('git', args, { cwd: repositoryRoot() })).trim();

/** A run being recorded: its commit and tree read now, its load sampled until finish(). */
export interface RecordedRun {
  finish(): RecordHeader;
}

export async function startRecordedRun(): Promise<RecordedRun> {
  const startedAt = new Date().toISOString();
  const [commit, status] = await Promise.all([
    git(['rev-parse', 'HEAD']),
    git(['status', '--porcelain']),
  ]);
  const samples = [loadavg()[0] ?? 0];
  const timer = setInterval(() => samples.push(loadavg()[0] ?? 0), LOAD_SAMPLE_MS);
  // A sampler must never keep a finished run (or a jest worker) alive.
  timer.unref();
  return {
    finish: () => {
      clearInterval(timer);
      samples.push(loadavg()[0] ?? 0);
      return {
        commit,
        cleanTree: status === '',
        node: process.version,
        pinnedNode: pinnedNode(),
        cpus: cpus().length,
        cpuModel: cpus()[0]?.model ?? '',
        memoryGiB: Math.round(totalmem() / 1024 ** 3),
        kernel: release(),
        startedAt,
        finishedAt: new Date().toISOString(),
        load: summariseLoad(samples),
      };
    },
  };
}
