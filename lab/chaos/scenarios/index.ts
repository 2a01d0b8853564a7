// Every scenario of the fault suite, by the name `--scenario` takes.
import type { ScenarioResult } from '../report.js';
import type { ScenarioContext } from '../scenario.js';
import { agentKill } from './agent-kill.js';
import { agentStop } from './agent-stop.js';
import { concurrent } from './concurrent.js';
import { controllerKill } from './controller-kill.js';
import { controlPlaneRestart } from './control-plane-restart.js';

export const SCENARIOS = {
  'controller-kill': controllerKill,
  'agent-kill': agentKill,
  'apiserver-restart': controlPlaneRestart('apiserver'),
  'etcd-restart': controlPlaneRestart('etcd'),
  'agent-stop': agentStop,
  'concurrent-edits': concurrent,
} satisfies Record<string, (ctx: ScenarioContext) => Promise<ScenarioResult>>;

export type ScenarioName = keyof typeof SCENARIOS;
