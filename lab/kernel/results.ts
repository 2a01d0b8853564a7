// test-results/real-kernel.json: for each kernel line, what the conformance
// suite (test/kernel/real-kernel.test.ts), the series reboot suite
// (test/kernel/series-reboot.test.ts) and the agent-in-VM test
// (test/integration/real-kernel-agent.test.ts) saw, scenario by scenario.
// Each writes its own part and keeps the others'; they may finish together.
// Each part carries the run that wrote it (lab/record.ts): commit, clean tree,
// Node, machine and load, under `runs` by suite.
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from '../../src/log.js';
import { repositoryRoot } from '../../src/paths.js';
import { withLock } from '../cache.js';
import type { RecordHeader } from '../record.js';
import type { PinChoice } from './pins.js';

export interface ConformanceRecord {
  readonly name: string;
  /** The kernel behaved as the rule says and the simulator saw the same. */
  readonly passed: boolean;
  readonly kernelPassed: boolean;
  readonly simulatorMatches: boolean;
  readonly durationMs: number;
}

export interface AgentRecord {
  readonly name: string;
  readonly passed: boolean;
  readonly durationMs: number;
}

/** The line a suite ran, and, when it booted it, which build of its pin and why. */
export interface LineRun {
  readonly line: string;
  readonly release: string;
  /** Pinned and used `release version`: they differ when Debian dropped the pin. */
  readonly kernel?: PinChoice;
  readonly busybox?: PinChoice;
}

export interface KernelLineResults extends LineRun {
  /** The conformance VM's whole run, boot to power-off. */
  readonly vmSeconds?: number;
  readonly scenarios?: readonly ConformanceRecord[];
  readonly agentScenarios?: readonly AgentRecord[];
  /** Two series members across a real reboot, by arrival order and phase. */
  readonly rebootScenarios?: readonly ConformanceRecord[];
  /** The run that wrote each suite's part. */
  readonly runs?: Readonly<Partial<Record<ResultsPart['suite'], RecordHeader>>>;
}

export type ResultsPart =
  | {
      readonly suite: 'conformance';
      readonly vmSeconds: number;
      readonly scenarios: readonly ConformanceRecord[];
    }
  | { readonly suite: 'agent'; readonly scenarios: readonly AgentRecord[] }
  | { readonly suite: 'reboot'; readonly scenarios: readonly ConformanceRecord[] };

/** Merges one suite's results for one kernel line into what is there, keeping the order of the lines. */
export function mergeResults(
  kernels: readonly KernelLineResults[],
  line: LineRun,
  part: ResultsPart,
  order: readonly string[],
  run: RecordHeader,
): KernelLineResults[] {
  const old = kernels.find((k) => k.line === line.line);
  const fields =
    part.suite === 'conformance'
      ? { vmSeconds: part.vmSeconds, scenarios: part.scenarios }
      : part.suite === 'agent'
        ? { agentScenarios: part.scenarios }
        : { rebootScenarios: part.scenarios };
  // Only the line's own fields: an entry also carries its part, which is not a field of the file.
  const { line: name, release, kernel, busybox } = line;
  const merged: KernelLineResults = {
    ...old,
    line: name,
    release,
    ...(kernel && { kernel }),
    ...(busybox && { busybox }),
    ...fields,
    runs: { ...old?.runs, [part.suite]: run },
  };
  const rank = (k: KernelLineResults): number => {
    const i = order.indexOf(k.line);
    return i < 0 ? order.length : i;
  };
  return [...kernels.filter((k) => k.line !== line.line), merged].sort((a, b) => rank(a) - rank(b));
}

export function resultsFile(): string {
  return join(repositoryRoot(), 'test-results', 'real-kernel.json');
}

/** Writes one suite's results for the given lines into test-results/real-kernel.json. */
export async function recordKernelResults(
  entries: readonly (LineRun & { readonly part: ResultsPart })[],
  order: readonly string[],
  run: RecordHeader,
  log: Logger,
): Promise<void> {
  const file = resultsFile();
  await mkdir(join(file, '..'), { recursive: true });
  await withLock(
    `${file}.lock`,
    async () => {
      const text = await readFile(file, 'utf8').catch(() => '{"kernels":[]}');
      let kernels = (JSON.parse(text) as { kernels?: KernelLineResults[] }).kernels ?? [];
      for (const e of entries) kernels = mergeResults(kernels, e, e.part, order, run);
      await writeFile(file, JSON.stringify({ kernels }, null, 2) + '\n');
    },
    log,
    'test-results/real-kernel.json',
  );
}
