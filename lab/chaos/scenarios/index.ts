// Every scenario of the fault suite, by the name `--scenario` takes, with the
// number of faults it injects at full size (the figures in bench/results/chaos.json)
// and in the seeded slice npm test runs.
import type { ScenarioResult } from '../report.js';
import type { FaultCount, ScenarioContext } from '../scenario.js';
import { agentKill } from './agent-kill.js';
import { agentStop } from './agent-stop.js';
import { concurrent } from './concurrent.js';
import { controllerKill } from './controller-kill.js';
import { controlPlaneRestart } from './control-plane-restart.js';

export interface FaultScenario {
  readonly faults: FaultCount;
  run(ctx: ScenarioContext): Promise<ScenarioResult>;
}

export const FAULT_SCENARIOS = {
  // 50 kills each: enough to land in every phase of a rollout, a rollback and a deletion.
  'controller-kill': { faults: { full: 50, slice: 2 }, run: controllerKill },
  'agent-kill': { faults: { full: 50, slice: 4 }, run: agentKill },
  // Enough restarts to see a spread of recovery times.
  'apiserver-restart': { faults: { full: 6, slice: 1 }, run: controlPlaneRestart('apiserver') },
  'etcd-restart': { faults: { full: 6, slice: 1 }, run: controlPlaneRestart('etcd') },
  // Not in the slice: a node counts unknown only after 90 s of silence, most of the slice's budget.
  'agent-stop': { faults: { full: 2, slice: 0 }, run: agentStop },
  'concurrent-edits': { faults: { full: 6, slice: 1 }, run: concurrent },
} satisfies Record<string, FaultScenario>;

export type FaultScenarioName = keyof typeof FAULT_SCENARIOS;
