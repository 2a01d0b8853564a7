// `npm run bench`: the operator's speed and memory, measured, printed and
// recorded in bench/results/latest.json (a list of runs), never asserted.
// BENCH_NODES=100,1000,3000 (the default) chooses the fleet sizes.
import { writeFile, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { repositoryRoot } from '../../src/paths.js';
import { liveRun, AGENT_NODE_OPTIONS, type RunResult } from './live.js';
import { MIX } from './mix.js';
import { requirePinnedNode, startRecordedRun } from '../record.js';

const COLUMNS: [string, (r: RunResult) => string][] = [
  ['nodes', (r) => String(r.nodes)],
  ['makespan s', (r) => r.makespanSeconds.toFixed(1)],
  ['bound s', (r) => r.lowerBoundSeconds.toFixed(1)],
  ['ratio', (r) => r.makespanRatio.toFixed(2)],
  ['ideal s', (r) => r.idealRollingSeconds.toFixed(1)],
  ['vs ideal', (r) => r.overheadRatio.toFixed(2)],
  ['writes/node', (r) => r.apiWritesPerNode.toFixed(2)],
  ['LP status', (r) => String(r.livePatchStatusWrites)],
  ['ctrl MiB', (r) => r.controllerPeakRssMiB.toFixed(0)],
  ['ctrl CPU s', (r) => r.controllerCpuSeconds.toFixed(1)],
  ['agent MiB', (r) => r.agentIdleRssMiB.toFixed(1)],
  ['fleet MiB', (r) => r.fleetPeakRssMiB.toFixed(0)],
  ['fleet idle CPU %', (r) => r.idleFleetCpuPercent.toFixed(1)],
  ['stall s', (r) => r.stallReactionSeconds.toFixed(2)],
  ['rollback s', (r) => r.rollbackMakespanSeconds.toFixed(1)],
  ['idle w/s/1k', (r) => r.idleOperatorWritesPerSecondPer1000Nodes.toFixed(2)],
  ['idle ev/s', (r) => r.idleControllerWatchEventsPerSecond.toFixed(1)],
  ['idle CPU %', (r) => r.idleControllerCpuPercent.toFixed(1)],
  ['restart s', (r) => r.restartToFirstActionSeconds.toFixed(1)],
];

function table(runs: readonly RunResult[]): string {
  const rows = [COLUMNS.map(([h]) => h), ...runs.map((r) => COLUMNS.map(([, f]) => f(r)))];
  const widths = COLUMNS.map((_, i) => Math.max(...rows.map((row) => (row[i] ?? '').length)));
  return rows.map((row) => row.map((c, i) => c.padStart(widths[i] ?? 0)).join('  ')).join('\n');
}

const USAGE = `Usage: npm run bench

Measures the operator on a real control plane at each fleet size and appends
the run to bench/results/latest.json; it takes no flags, only environment:
  BENCH_NODES=100,1000,3000     the fleet sizes (default)
  BENCH_LIVENESS=heartbeat      agents without Pods, each writing a heartbeat
  BENCH_IDLE_SECONDS=300        how long the idle fleet is watched
  BENCH_CONTROLLER_NODE_OPTIONS the controller's NODE_OPTIONS (default: the chart's)
`;
// Any argument (--help included) prints the usage rather than starting a run of thousands of nodes.
const args = process.argv.slice(2);
if (args.length > 0) {
  const help = args.every((a) => a === '--help' || a === '-h');
  (help ? process.stdout : process.stderr).write(USAGE);
  process.exit(help ? 0 : 2);
}

requirePinnedNode('bench/results/latest.json');
const recorded = await startRecordedRun();
const sizes = (process.env['BENCH_NODES'] ?? '100,1000,3000').split(',').map(Number);
const runs: RunResult[] = [];
for (const size of sizes) {
  console.log(`running ${size} nodes ...`);
  const run = await liveRun(size);
  runs.push(run);
  console.log(JSON.stringify(run));
}
console.log(`\n${table(runs)}\n`);
const record = {
  generatedAt: new Date().toISOString(),
  run: recorded.finish(),
  setup:
    'real kube-apiserver + etcd; controller, fleet simulator and one agent as separate processes; ' +
    'Nodes the size and shape a cloud kubelet writes (fleet --realistic-nodes); ' +
    `idle figures over ${process.env['BENCH_IDLE_SECONDS'] ?? 300} s after Complete; ` +
    'restart: a new controller started as a LivePatch arrives, until its first node entry; ' +
    `maxUnavailable 10%, bakeTime 0s; transition mix ${MIX.map((k) => `${k.share * 100}% ${k.label}`).join(', ')} (seeded); ` +
    `NODE_OPTIONS as the chart sets: agent "${AGENT_NODE_OPTIONS}", controller as each run's controllerNodeOptions ` +
    '(the memory limit the README gives at its size times controller.heapPercent); ' +
    'stall.timeout 20s, Rollback',
  runs,
};
const dir = join(repositoryRoot(), 'bench', 'results');
await mkdir(dir, { recursive: true });
await writeFile(join(dir, 'latest.json'), `${JSON.stringify(record, null, 2)}\n`);
console.log(`wrote ${join(dir, 'latest.json')}`);
