// What every scenario shares: its size, its seeded chance, how it reports
// progress, and the judgement at its end from the kernels and the samples.
import type { NodeCounts } from '../../src/api/generated/types.js';
import type { ChaosCluster } from './cluster.js';
import { IN_FLIGHT, type KernelReading, type PhaseSeen, type Snapshot } from './evidence.js';
import { flights, flightsExceeded, patchOwners } from './in-flight.js';
import {
  countsBackwards,
  endOfRun,
  extraLoads,
  maxUnavailableExceeded,
  nodesLeftInTransition,
  twoTransitions,
  type Violation,
} from './invariants.js';
import { readKernel } from './kernels.js';
import { KERNEL, until } from './api.js';
import type { Random } from './random.js';
import { takeSnapshot } from './sampler.js';

/** How many faults a scenario injects: at full size (npm run chaos) and in the seeded slice (npm test). */
export interface FaultCount {
  readonly full: number;
  /** 0: not in the slice. */
  readonly slice: number;
}

export interface ScenarioContext {
  readonly seed: number;
  readonly rng: Random;
  /** How many faults (kills, restarts, runs) to inject this time. */
  readonly faults: number;
  /** A progress line for whoever watches the run. */
  say(line: string): void;
}

export interface Judgement {
  readonly violations: Violation[];
  readonly doubleLoads: number;
  readonly leftInTransition: number;
}

/** Waits (up to a minute) for every node to settle, by its kernel and its status; the last snapshot read. */
async function settled(
  cluster: ChaosCluster,
  nodes: readonly string[],
): Promise<Snapshot | undefined> {
  const quiet = (s: Snapshot, kernels: readonly KernelReading[]): boolean =>
    kernels.every((k) => !k.transition) &&
    s.nodes.every((n) => n.patches.every((e) => !IN_FLIGHT.has(e.phase)));
  const read = async (): Promise<{ s: Snapshot; kernels: KernelReading[] }> => ({
    s: await takeSnapshot(cluster.kc),
    kernels: await readKernels(cluster, nodes),
  });
  const done = await until(read, ({ s, kernels }) => quiet(s, kernels), 60_000, 500);
  return done.last?.s;
}

export function readKernels(
  cluster: ChaosCluster,
  nodes: readonly string[],
): Promise<KernelReading[]> {
  return Promise.all(nodes.map((n) => readKernel(n, cluster.kernelFile(n), KERNEL)));
}

/** What was watched while the scenario ran: the sampled statuses and the watch history of the nodes. */
export interface Watched {
  readonly snapshots: readonly Snapshot[];
  readonly seen: readonly PhaseSeen[];
}

/**
 * The end of a scenario: once the nodes have settled, every node's kernel and
 * last status, every sample taken meanwhile, and the nodes in flight by their
 * kernels' timelines and the watch's Loading, against the invariants.
 */
export async function judge(
  cluster: ChaosCluster,
  nodes: readonly string[],
  watched: Watched,
  maxUnavailable: ReadonlyMap<string, number>,
): Promise<Judgement> {
  const last = await settled(cluster, nodes);
  const kernels = await readKernels(cluster, nodes);
  const lastNodes = last?.nodes ?? [];
  const { snapshots, seen } = watched;
  return {
    violations: [
      ...endOfRun(kernels, lastNodes),
      ...maxUnavailableExceeded(snapshots, maxUnavailable),
      ...flightsExceeded(flights(kernels, seen), patchOwners(seen), maxUnavailable),
      ...twoTransitions(snapshots),
      ...countsBackwards(snapshots),
    ],
    doubleLoads: extraLoads(kernels),
    leftInTransition: nodesLeftInTransition(kernels, lastNodes),
  };
}

export const seconds = (ms: number): number => Math.round(ms / 100) / 10;

export const countsText = (c: NodeCounts | undefined): string =>
  c ? `patched ${c.patched ?? 0}/${c.targeted ?? 0}, reverted ${c.reverted ?? 0}` : 'no status';
