// Every scenario of the fault suite, by the name `--scenario` takes.
import type { ScenarioResult } from '../report.js';
import type { ScenarioContext } from '../scenario.js';
import { controllerKill } from './controller-kill.js';

export const SCENARIOS = {
  'controller-kill': controllerKill,
} satisfies Record<string, (ctx: ScenarioContext) => Promise<ScenarioResult>>;

export type ScenarioName = keyof typeof SCENARIOS;
