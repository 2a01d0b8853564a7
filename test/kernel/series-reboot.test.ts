// Two members of one series on a real kernel, across a real reboot: on every
// pinned kernel line, for both arrival orders, a VM runs the agent's
// decisions as the builds arrive, powers off, boots again with the same
// kernel and the agent's memory, and must end with only the newest build
// enabled. The simulator, configured as the same release and rebooted as a
// fresh simulated kernel, must see exactly what the kernel showed. Skipped
// where the host cannot run VMs, like real-kernel.test.ts.
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { ObservedPatch } from '../../src/api/generated/types.js';
import { createLogger } from '../../src/log.js';
import { repositoryRoot } from '../../src/paths.js';
import { compareTraces } from '../../lab/kernel/conformance/compare.js';
import type { ScenarioResult } from '../../lab/kernel/conformance/scenarios.js';
import {
  ARRIVAL_ORDERS,
  runRebootPhase,
  type ArrivalOrder,
  type RebootPhase,
} from '../../lab/kernel/conformance/series-reboot.js';
import { SimLab } from '../../lab/kernel/conformance/sim-lab.js';
import { prepareHost, realKernelsRequired } from '../../lab/kernel/host.js';
import { ensureKernelAssets, type KernelAssets } from '../../lab/kernel/kernel-assets.js';
import { KERNEL_LINES, type KernelLine } from '../../lab/kernel/kernels.js';
import { recordKernelResults } from '../../lab/kernel/results.js';
import { startRecordedRun } from '../../lab/record.js';
import { bootVm, rebootVm, type Vm } from '../../lab/kernel/vm.js';
import { mapLimited, vmSlots } from '../../lab/parallel.js';

const log = createLogger({
  component: 'series-reboot',
  format: 'text',
  level: process.env['LOG_LEVEL'] ?? 'info',
});
const skipReason = await prepareHost(log);
// The record's header: this run's commit, Node and the load while it ran.
const recorded = await startRecordedRun();
if (skipReason) process.stderr.write(`series reboot suite skipped: ${skipReason}\n`);

const PHASES: readonly RebootPhase[] = ['arrival', 'rebooted'];
const VM_TIMEOUT_MS = 10 * 60_000;

interface Run {
  readonly release: string;
  readonly kernel: ScenarioResult;
  readonly simulator: ScenarioResult;
  readonly vmSeconds: number;
}

/** By kernel line, arrival order and phase. */
const runs = new Map<string, Run>();
const key = (line: KernelLine, order: ArrivalOrder, phase: RebootPhase): string =>
  `${line.line}/${order}/${phase}`;

function job(assets: KernelAssets, order: ArrivalOrder, phase: RebootPhase): string {
  const runner = join(repositoryRoot(), 'dist', 'lab', 'kernel', 'conformance', 'series-in-vm.js');
  return (
    `exec ${process.execPath} ${runner} --modules ${assets.modules} --order ${order} ` +
    `--phase ${phase} --memory /run/job/memory.json --out /run/job/${phase}.json\n`
  );
}

async function result(
  vm: Vm,
  phase: RebootPhase,
): Promise<{ release: string; result: ScenarioResult; seconds: number }> {
  const outcome = await vm.done;
  const text = await readFile(join(vm.jobDir, `${phase}.json`), 'utf8').catch(() => {
    throw new Error(
      `the VM wrote no ${phase} result (job exit ${outcome.jobExit}):\n${outcome.console.slice(-6000)}`,
    );
  });
  return {
    ...(JSON.parse(text) as { release: string; result: ScenarioResult }),
    seconds: outcome.seconds,
  };
}

/** The two builds arrive on a booted VM, which then powers off and boots again with the same kernel. */
async function onKernel(
  line: KernelLine,
  assets: KernelAssets,
  order: ArrivalOrder,
): Promise<void> {
  const name = `${line.line}-${order}`;
  const options = { name, assets, timeoutMs: VM_TIMEOUT_MS, log };
  const first = await bootVm({ ...options, script: job(assets, order, 'arrival') });
  const arrival = await result(first, 'arrival');
  const second = await rebootVm(first, { ...options, script: job(assets, order, 'rebooted') });
  const rebooted = await result(second, 'rebooted');
  const release = assets.line.release;
  const before = await SimLab.create(release, release);
  const simArrival = await runRebootPhase(before, order, 'arrival');
  const after = await SimLab.create(release, release);
  const memory = simArrival.reported as ObservedPatch[];
  const simRebooted = await runRebootPhase(after, order, 'rebooted', memory);
  for (const [phase, vm, sim] of [
    ['arrival', arrival, simArrival.result],
    ['rebooted', rebooted, simRebooted.result],
  ] as const)
    runs.set(key(line, order, phase), {
      release: vm.release,
      kernel: vm.result,
      simulator: sim,
      vmSeconds: vm.seconds,
    });
}

/** Each line's build, by line: the pin, or the newest of its line when Debian dropped the pin. */
const booted = new Map<string, KernelAssets>();

/** Each line's runs into test-results/real-kernel.json, beside the conformance suite's. */
async function writeResults(): Promise<void> {
  const entries = KERNEL_LINES.map((line) => ({
    line: line.line,
    release: booted.get(line.line)?.line.release ?? line.release,
    ...booted.get(line.line)?.pins,
    part: {
      suite: 'reboot' as const,
      scenarios: [...runs]
        .filter(([k]) => k.startsWith(`${line.line}/`))
        .map(([k, r]) => {
          const simulatorMatches = compareTraces(r.kernel, r.simulator) === undefined;
          return {
            name: k.slice(line.line.length + 1),
            passed: r.kernel.passed && simulatorMatches,
            kernelPassed: r.kernel.passed,
            simulatorMatches,
            durationMs: Math.round(r.vmSeconds * 1000),
          };
        }),
    },
  })).filter((e) => e.part.scenarios.length > 0);
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
    throw new Error(`the series reboot suite cannot run: ${skipReason}`);
  });
}

describeOnHost('a series across a reboot, on real kernels in VMs and on the simulator', () => {
  beforeAll(async () => {
    for (const line of KERNEL_LINES) booted.set(line.line, await ensureKernelAssets(line, log));
    // At most one VM per core (lab/parallel.ts); on each line the orders one after the other.
    await mapLimited(KERNEL_LINES, vmSlots(), async (line) => {
      const a = booted.get(line.line);
      if (!a) throw new Error(`no assets for ${line.release}`);
      for (const order of ARRIVAL_ORDERS) await onKernel(line, a, order);
    });
  }, 60 * 60_000);

  afterAll(async () => {
    if (runs.size) await writeResults();
  });

  for (const line of KERNEL_LINES)
    describe(`Linux ${line.line} (${line.release})`, () => {
      for (const order of ARRIVAL_ORDERS)
        for (const phase of PHASES)
          test(`${order}, ${phase === 'arrival' ? 'as the builds arrive' : 'after a reboot'}: only the newest build ends enabled, and the simulator saw the same`, () => {
            const run = runs.get(key(line, order, phase));
            expect(run?.release).toBe(booted.get(line.line)?.line.release);
            if (!run) return;
            const broken = run.kernel.steps.filter((s) => !s.ok);
            expect({ error: run.kernel.error, broken }).toEqual({ error: undefined, broken: [] });
            expect(compareTraces(run.kernel, run.simulator)).toBeUndefined();
          });
    });
});
