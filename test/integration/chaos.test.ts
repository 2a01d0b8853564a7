// The fault suite's seeded slice (npm run chaos runs it at full size): a few
// faults of each kind on the real control plane, controllers, agents and
// fleet, judged by the same invariants from the kernels' own files and the
// sampled statuses. CHAOS_SEED replays a failure; the seed is in each message.
// Each scenario declares its slice (lab/chaos/scenarios/index.ts); agent-stop has none.
// The scenarios run side by side, each on a control plane of its own.
import { describe, expect, test } from '@jest/globals';
import { Random } from '../../lab/chaos/random.js';
import type { ScenarioResult } from '../../lab/chaos/report.js';
import type { ScenarioContext } from '../../lab/chaos/scenario.js';
import { FAULT_SCENARIOS, type FaultScenarioName } from '../../lab/chaos/scenarios/index.js';

const SEED = Number(process.env['CHAOS_SEED'] ?? 20260601);

function context(index: number, faults: number): ScenarioContext {
  return {
    seed: SEED,
    rng: new Random(SEED).fork(index),
    faults,
    say: (line) => {
      process.stdout.write(`${line}\n`);
    },
  };
}

/** Every fault injected reached its end state, and no invariant was violated (the messages say where). */
function expectClean(r: ScenarioResult): void {
  expect(r.violations).toEqual([]);
  expect(r.faults).toBeGreaterThan(0);
  expect(r.endStates.reached).toBe(r.endStates.expected);
  expect(r.doubleLoads).toBe(0);
  expect(r.leftInTransition).toBe(0);
}

const NAMES = Object.keys(FAULT_SCENARIOS) as FaultScenarioName[];
const SLICE = NAMES.filter((name) => FAULT_SCENARIOS[name].faults.slice > 0);

describe(`the fault suite's seeded slice (seed ${SEED})`, () => {
  // Concurrently: each scenario has a control plane of its own and spends its time waiting (a Lease, a restart).
  test.concurrent.each(SLICE.map((name) => [name]))(
    '%s: every end state reached, nothing loaded twice, nothing left in transition',
    async (name) => {
      const scenario = FAULT_SCENARIOS[name];
      const result = await scenario.run(context(NAMES.indexOf(name), scenario.faults.slice));
      process.stdout.write(
        `${name}: ${result.faults} faults, recovery ${result.recovery.seconds.map((s) => s.toFixed(1)).join(', ')} s\n`,
      );
      expectClean(result);
    },
    240_000,
  );
});
