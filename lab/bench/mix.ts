// The benchmark's simulated transition times: a fixed, seeded mix, and the
// makespans it is judged against.
import { seededRandom } from '../seeded-random.js';
import { rolloutOrder } from '../../src/controller/targets.js';
import type { NodeName } from '../../src/api/names.js';

export interface TransitionKind {
  readonly label: string;
  readonly share: number;
  /** How long the simulator's transition takes with these annotations (its 1 s retry tick, the 15 s signal). */
  readonly seconds: number;
  readonly annotations: Readonly<Record<string, string>>;
}

/** 80% take 2 s, 15% take 6 s, 5% wait for the kernel's fake signal at 15 s and switch at the next retry (16 s). */
export const MIX: readonly TransitionKind[] = [
  {
    label: '2 s',
    share: 0.8,
    seconds: 2,
    annotations: { 'sim.livepatch.io/transition-seconds': '2' },
  },
  {
    label: '6 s',
    share: 0.15,
    seconds: 6,
    annotations: { 'sim.livepatch.io/transition-seconds': '6' },
  },
  {
    label: '16 s (a signal task)',
    share: 0.05,
    seconds: 16,
    annotations: {
      'sim.livepatch.io/transition-seconds': '2',
      'sim.livepatch.io/signal-tasks': '1',
    },
  },
];

/** Exactly the mix's shares (rounded), shuffled over the nodes by the seed. */
export function assignMix(nodes: readonly NodeName[], seed: number): Map<NodeName, TransitionKind> {
  const kinds: TransitionKind[] = [];
  for (const kind of MIX.slice(1))
    for (let i = 0; i < Math.round(kind.share * nodes.length); i++) kinds.push(kind);
  const first = MIX[0];
  while (first && kinds.length < nodes.length) kinds.unshift(first);
  const next = seededRandom(seed);
  for (let i = kinds.length - 1; i > 0; i--) {
    const j = Math.floor(next() * (i + 1));
    [kinds[i], kinds[j]] = [kinds[j] as TransitionKind, kinds[i] as TransitionKind];
  }
  return new Map(nodes.map((n, i) => [n, kinds[i] as TransitionKind]));
}

/** The bound: max(sum of transition times / maxUnavailable, longest), plus the bake. */
export function lowerBound(seconds: readonly number[], slots: number, bake: number): number {
  const sum = seconds.reduce((a, b) => a + b, 0);
  return Math.max(sum / slots, Math.max(...seconds)) + bake;
}

/**
 * What a perfect rolling scheduler would take with the same order and times
 * and no overhead at all: each node starts the moment a slot frees. The gap
 * between this and lowerBound is the tail no scheduler that does not know the
 * times in advance can avoid; the gap between the measured makespan and this
 * is the operator's own overhead.
 */
export function idealRolling(
  livePatch: string,
  times: ReadonlyMap<NodeName, number>,
  slots: number,
  bake: number,
): number {
  const free = Array.from({ length: slots }, () => 0);
  let end = 0;
  for (const node of rolloutOrder(livePatch, [...times.keys()])) {
    let slot = 0;
    for (let i = 1; i < free.length; i++) if ((free[i] ?? 0) < (free[slot] ?? 0)) slot = i;
    const done = (free[slot] ?? 0) + (times.get(node) ?? 0) + bake;
    free[slot] = done;
    end = Math.max(end, done);
  }
  return end;
}
