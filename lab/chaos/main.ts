// `npm run chaos`: the fault suite on the real control plane. Prints the seed
// (`--seed N` or CHAOS_SEED replays a run), runs every scenario (or
// `--scenario NAME`), prints the table and writes bench/results/chaos.json.
// Exits 1 when an invariant was violated, naming scenario, seed, node and
// what was seen.
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { repositoryRoot } from '../../src/paths.js';
import { requirePinnedNode, startRecordedRun, type RecordHeader } from '../record.js';
import { ChaosUsageError, parseChaosArgs, type ChaosArgs } from './args.js';
import { freshSeed, Random } from './random.js';
import { markdownTable, recoveryNotes, type ScenarioResult } from './report.js';
import type { ScenarioContext } from './scenario.js';
import { FAULT_SCENARIOS, type FaultScenarioName } from './scenarios/index.js';

/** A row of chaos.json: a scenario's figures and the run that made them (rows kept from earlier runs keep theirs). */
type RecordedResult = ScenarioResult & { readonly run?: RecordHeader };

/** The rows of an earlier chaos.json for scenarios not run now. */
async function earlierResults(file: string, running: readonly string[]): Promise<RecordedResult[]> {
  try {
    const earlier = JSON.parse(await readFile(file, 'utf8')) as { results?: RecordedResult[] };
    return (earlier.results ?? []).filter((r) => !running.includes(r.scenario));
  } catch {
    return [];
  }
}

const names = Object.keys(FAULT_SCENARIOS) as FaultScenarioName[];
let args: ChaosArgs;
try {
  args = parseChaosArgs(process.argv.slice(2), process.env, names);
} catch (err) {
  if (!(err instanceof ChaosUsageError)) throw err;
  console.error(err.message);
  process.exit(2);
}
// A slice writes nothing, so any Node may run it; a record comes from the pinned one only.
if (!args.slice) requirePinnedNode('bench/results/chaos.json');
const recorded = await startRecordedRun();
const chosen = args.scenarios;
const seed = args.seed ?? freshSeed();
console.log(
  `chaos seed ${seed} (replay: npm run chaos -- --seed ${seed}${args.named ? chosen.map((s) => ` --scenario ${s}`).join('') : ''})`,
);

const results: ScenarioResult[] = [];
for (const [i, name] of names.entries()) {
  const scenario = FAULT_SCENARIOS[name];
  if (!chosen.includes(name) || (args.slice && scenario.faults.slice === 0)) continue;
  const ctx: ScenarioContext = {
    seed,
    rng: new Random(seed).fork(i),
    faults: args.slice ? scenario.faults.slice : scenario.faults.full,
    say: (line) => {
      console.log(`${new Date().toISOString().slice(11, 19)} ${line}`);
    },
  };
  console.log(`\n== ${name} ==`);
  const result = await scenario.run(ctx);
  results.push(result);
  console.log(JSON.stringify(result));
}

console.log(`\n${markdownTable(results)}\n\n${recoveryNotes(results).join('\n')}`);
const violations = results.flatMap((r) => r.violations);
if (!args.slice) {
  const file = join(repositoryRoot(), 'bench', 'results', 'chaos.json');
  // One scenario run again replaces its own row; the others keep theirs (each row has its seed).
  const kept = args.named ? await earlierResults(file, chosen) : [];
  const run = recorded.finish();
  const fresh = results.map((r): RecordedResult => ({ ...r, run }));
  const record = {
    generatedAt: new Date().toISOString(),
    setup:
      'real kube-apiserver + etcd; controller replicas, the fleet simulator and standalone agents as ' +
      'separate processes; each simulated kernel kept in its node folder, read by the suite as evidence',
    results: names.flatMap((name) => [...kept, ...fresh].filter((r) => r.scenario === name)),
  };
  await mkdir(dirname(file), { recursive: true });
  await writeFile(file, `${JSON.stringify(record, null, 2)}\n`);
  console.log(`wrote ${file}`);
}
if (violations.length) {
  console.error(`\n${violations.length} invariant(s) violated:\n${violations.join('\n')}`);
  process.exit(1);
}
