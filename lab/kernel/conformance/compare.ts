// Holds the simulator to what a real kernel showed: the same observations,
// rule by rule. The first difference is named by its rule.
import type { ScenarioResult } from './scenarios.js';

const show = (v: unknown): string => JSON.stringify(v);

/** undefined when the traces agree; otherwise which rule they disagree on and how. */
export function compareTraces(
  kernel: ScenarioResult,
  simulator: ScenarioResult | undefined,
): string | undefined {
  if (!simulator) return `the simulator did not run ${kernel.scenario}`;
  if (simulator.error) return `the simulator failed: ${simulator.error}`;
  const n = Math.max(kernel.steps.length, simulator.steps.length);
  for (let i = 0; i < n; i++) {
    const k = kernel.steps[i];
    const s = simulator.steps[i];
    if (!k || !s)
      return `rule "${(k ?? s)?.rule ?? ''}": only the ${k ? 'kernel' : 'simulator'} got this far`;
    if (k.rule !== s.rule)
      return `step ${i + 1}: the kernel checked "${k.rule}", the simulator "${s.rule}"`;
    if (show(k.observed) !== show(s.observed))
      return `rule "${k.rule}": the kernel showed ${show(k.observed)}, the simulator ${show(s.observed)}`;
  }
  return undefined;
}
