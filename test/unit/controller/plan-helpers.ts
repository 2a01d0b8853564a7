// Helpers shared by the planner's tests: the fleet's names in rollout order,
// the phases a simulation went through, fleets set up to stall or completed.
import { expect } from '@jest/globals';
import type { LivePatch } from '../../../src/api/generated/types.js';
import type { NodeName } from '../../../src/api/names.js';
import { rolloutOrder, type NodeSlot } from '../../../src/controller/targets.js';
import { Fleet, livePatch, LP, simulate, T0, type Pass } from './fixtures.js';

export const names = (fleet: Fleet): NodeName[] => fleet.nodes.map((n) => n.name);
export const order = (fleet: Fleet, name = LP): NodeName[] => rolloutOrder(name, names(fleet));
export const slotOf = (slots: readonly NodeSlot[], name: string): NodeSlot | undefined =>
  slots.find((s) => s.node.name === name);
export const phases = (passes: readonly Pass[]): string[] =>
  passes.map((p) => p.plan.phase).filter((p, i, all) => all[i - 1] !== p);
export const withEntry = (fleet: Fleet): string[] =>
  names(fleet).filter((n) => fleet.desired(n) !== undefined);

export function nth<T>(list: readonly T[], i: number): T {
  const value = list[i];
  if (value === undefined) throw new Error(`no element ${i}`);
  return value;
}

/** A fleet of `count` nodes whose node at rollout position `stallAt` stalls. */
export function stallingFleet(
  count: number,
  ...stallAt: number[]
): { fleet: Fleet; stalled: string[] } {
  const fleet = Fleet.of(count, T0);
  const stalled = stallAt.map((i) => nth(order(fleet), i));
  for (const n of stalled) fleet.stallOn.add(n);
  return { fleet, stalled };
}

/** A fleet where a rollout has completed. */
export function completed(count: number): { fleet: Fleet; lp: LivePatch; now: number } {
  const fleet = Fleet.of(count, T0);
  const sim = simulate(livePatch({ spec: { rollout: { maxUnavailable: 2 } } }), fleet);
  expect(sim.lp.status?.phase).toBe('Complete');
  return { fleet, lp: sim.lp, now: sim.now };
}
