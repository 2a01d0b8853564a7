// The conformance suite on real kernels: each pinned kernel line (5.10, 6.1,
// 6.12) boots in a VM, as many at once as the host has cores, and runs every
// scenario against the sysfs backend; the simulator, configured as the same
// release, runs them too and must see exactly what the kernel showed. Results
// per kernel and scenario go to test-results/real-kernel.json. Where the host
// cannot run VMs the suite is skipped with one line saying why, unless
// LIVEPATCH_REAL_KERNELS=require (.ci/run sets it), which turns the skip into
// a failure.
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createLogger } from '../../src/log.js';
import { repositoryRoot } from '../../src/paths.js';
import { compareTraces } from '../../lab/kernel/conformance/compare.js';
import {
  CONFORMANCE_SCENARIOS,
  runScenarios,
  type ScenarioResult,
} from '../../lab/kernel/conformance/scenarios.js';
import { SimLab } from '../../lab/kernel/conformance/sim-lab.js';
import { prepareHost, realKernelsRequired } from '../../lab/kernel/host.js';
import { ensureKernelAssets, type KernelAssets } from '../../lab/kernel/kernel-assets.js';
import { KERNEL_LINES, type KernelLine } from '../../lab/kernel/kernels.js';
import { recordKernelResults } from '../../lab/kernel/results.js';
import { startRecordedRun } from '../../lab/record.js';
import { bootVm, type VmOutcome } from '../../lab/kernel/vm.js';
import { mapLimited, vmSlots } from '../../lab/parallel.js';

const log = createLogger({
  component: 'real-kernel',
  format: 'text',
  level: process.env['LOG_LEVEL'] ?? 'info',
});
const skipReason = await prepareHost(log);
// The record's header: this run's commit, Node and the load while it ran.
const recorded = await startRecordedRun();
if (skipReason) process.stderr.write(`real-kernel suite skipped: ${skipReason}\n`);

interface KernelRun {
  readonly line: KernelLine;
  /** The build booted: the pin, or the newest of its line when Debian dropped the pin. */
  readonly assets: KernelAssets;
  readonly release: string;
  readonly vm: VmOutcome;
  readonly kernel: ScenarioResult[];
  readonly simulator: ScenarioResult[];
}

const runs = new Map<string, KernelRun>();

/** The line whose builds a kernel must refuse: the next one, or the one before for the newest. */
function otherLine(line: KernelLine): KernelLine {
  const i = KERNEL_LINES.indexOf(line);
  return KERNEL_LINES[i + 1] ?? KERNEL_LINES[i - 1] ?? line;
}

/** Boots the kernel and runs the scenarios inside; the VM's own `uname -r` comes back with them. */
async function onKernel(
  assets: KernelAssets,
  other: KernelAssets,
): Promise<{ vm: VmOutcome; release: string; results: ScenarioResult[] }> {
  const runner = join(repositoryRoot(), 'dist', 'lab', 'kernel', 'conformance', 'in-vm.js');
  const vm = await bootVm({
    name: assets.line.line,
    assets,
    script: `exec ${process.execPath} ${runner} --modules-own ${assets.modules} --modules-other ${other.modules} --out /run/job/result.json\n`,
    timeoutMs: 15 * 60_000,
    log,
  });
  const outcome = await vm.done;
  const text = await readFile(join(vm.jobDir, 'result.json'), 'utf8').catch(() => {
    throw new Error(
      `the VM wrote no results (job exit ${outcome.jobExit}):\n${outcome.console.slice(-6000)}`,
    );
  });
  const parsed = JSON.parse(text) as { release: string; results: ScenarioResult[] };
  return { vm: outcome, ...parsed };
}

async function runLine(
  line: KernelLine,
  all: ReadonlyMap<KernelLine, KernelAssets>,
): Promise<KernelRun> {
  const assets = all.get(line);
  const other = all.get(otherLine(line));
  if (!assets || !other) throw new Error(`no assets for ${line.release}`);
  const { vm, release, results } = await onKernel(assets, other);
  const lab = await SimLab.create(assets.line.release, other.line.release);
  const simulator = await runScenarios(lab, () => lab.clock.now());
  log.info('kernel line done', { release, vmSeconds: Math.round(vm.seconds) });
  return { line, assets, release, vm, kernel: results, simulator };
}

async function writeResults(): Promise<void> {
  const entries = [...runs.values()].map((r) => ({
    line: r.line.line,
    release: r.release,
    ...r.assets.pins,
    part: {
      suite: 'conformance' as const,
      vmSeconds: Math.round(r.vm.seconds * 10) / 10,
      scenarios: r.kernel.map((k) => {
        const simulatorMatches =
          compareTraces(
            k,
            r.simulator.find((s) => s.scenario === k.scenario),
          ) === undefined;
        return {
          name: k.scenario,
          passed: k.passed && simulatorMatches,
          kernelPassed: k.passed,
          simulatorMatches,
          durationMs: k.durationMs,
        };
      }),
    },
  }));
  await recordKernelResults(
    entries,
    KERNEL_LINES.map((l) => l.line),
    recorded.finish(),
    log,
  );
}

const describeOnHost = skipReason ? describe.skip : describe;

if (skipReason && realKernelsRequired()) {
  test('real kernels are required on this machine (LIVEPATCH_REAL_KERNELS=require)', () => {
    throw new Error(`the real-kernel suite cannot run: ${skipReason}`);
  });
}

describeOnHost('real kernels in VMs, and the simulator as the same release', () => {
  beforeAll(async () => {
    const assets = new Map<KernelLine, KernelAssets>();
    for (const line of KERNEL_LINES) assets.set(line, await ensureKernelAssets(line, log));
    // One vCPU each, as many at once as the host has cores.
    const done = await mapLimited(KERNEL_LINES, vmSlots(), (line) => runLine(line, assets));
    for (const run of done) runs.set(run.line.line, run);
  }, 40 * 60_000);

  afterAll(async () => {
    if (runs.size) await writeResults();
  });

  for (const line of KERNEL_LINES) {
    describe(`Linux ${line.line} (${line.release})`, () => {
      test('the VM runs the pinned kernel (or the newest of its line once Debian drops the pin)', () => {
        const run = runs.get(line.line);
        expect(run?.release).toBe(run?.assets.line.release);
      });

      for (const scenario of CONFORMANCE_SCENARIOS) {
        test(`${scenario.name}: ${scenario.title}`, () => {
          const run = runs.get(line.line);
          const kernel = run?.kernel.find((r) => r.scenario === scenario.name);
          expect(kernel).toBeDefined();
          if (!kernel || !run) return;
          const broken = kernel.steps.filter((s) => !s.ok);
          expect({ error: kernel.error, broken }).toEqual({ error: undefined, broken: [] });
          const sim = run.simulator.find((r) => r.scenario === scenario.name);
          expect(compareTraces(kernel, sim)).toBeUndefined();
        });
      }
    });
  }
});
