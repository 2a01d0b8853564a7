#!/usr/bin/env node
// `kubectl livepatch` (a kubectl plugin: put kubectl-livepatch on PATH).
// status: one LivePatch, node by node, from the nodes' own reports.
// pause / resume: flip spec.rollout.paused, which also releases an empty pause step.
import { parseArgs } from 'node:util';
import type { LivePatch, LivePatchNode, ObservedPatch } from '../api/generated/types.js';
import { describeTasks } from '../api/tasks.js';
import { loadKubeConfig } from '../kube/config.js';
import { rawJson } from '../kube/raw.js';
import { mergePatch, PATHS } from '../kube/resources.js';
import { FIELD_MANAGER } from '../api/constants.js';

const HELP = `Usage: kubectl livepatch <command> NAME [--kubeconfig FILE]

  status NAME   the LivePatch's phase and conditions, then every node that has it:
                phase, transition, pending and blocking tasks, and the node's message
  pause NAME    set spec.rollout.paused=true: no new node starts, nothing is reversed
  resume NAME   set spec.rollout.paused=false (this also releases an empty pause step)
`;

type Kc = ReturnType<typeof loadKubeConfig>;

function table(rows: string[][]): string {
  const widths = rows[0]?.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length))) ?? [];
  return rows
    .map((r) =>
      r.map((cell, i) => (i === r.length - 1 ? cell : cell.padEnd(widths[i] ?? 0))).join('   '),
    )
    .join('\n');
}

function nodeRow(node: LivePatchNode, name: string): string[] | undefined {
  const reported = node.status?.patches?.find((x) => x.livePatch === name);
  if (!reported && !node.spec.patches?.some((x) => x.livePatch === name)) return undefined;
  // Written but not reported yet: the agent has not answered.
  const p: Partial<ObservedPatch> = reported ?? {
    phase: 'Pending',
    message: 'waiting for the node agent',
  };
  return [
    node.metadata.name ?? '',
    node.status?.kernelRelease ?? '',
    p.phase ?? '',
    p.transition ? 'yes' : '',
    p.pendingTasks ? String(p.pendingTasks) : '',
    describeTasks(p.blockingTasks ?? []),
    p.message ?? '',
  ];
}

async function status(kc: Kc, name: string): Promise<string> {
  const lp = await rawJson<LivePatch>(kc, 'GET', `${PATHS.livePatches}/${name}`);
  const nodes = await rawJson<{ items: LivePatchNode[] }>(kc, 'GET', PATHS.livePatchNodes);
  const s = lp.status;
  const head = [
    `LivePatch ${name}: ${lp.spec.state}, ${s?.phase ?? 'Pending'}, ${s?.summary ?? '0/0'} patched (patchName ${lp.spec.patchName})`,
    ...(s?.conditions ?? [])
      .filter((c) => c.status === 'True')
      .map((c) => `  ${c.type}: ${c.reason}: ${c.message}`),
  ];
  const rows = nodes.items
    .map((n) => nodeRow(n, name))
    .filter((r): r is string[] => r !== undefined);
  const body = rows.length
    ? table([['NODE', 'KERNEL', 'PHASE', 'TRANSITION', 'PENDING', 'BLOCKING', 'MESSAGE'], ...rows])
    : 'no node has this patch yet';
  return `${head.join('\n')}\n\n${body}\n`;
}

async function setPaused(kc: Kc, name: string, paused: boolean): Promise<string> {
  await mergePatch(
    kc,
    `${PATHS.livePatches}/${name}`,
    { spec: { rollout: { paused } } },
    FIELD_MANAGER.plugin,
  );
  return `livepatch.livepatch.io/${name} ${paused ? 'paused' : 'resumed'}\n`;
}

async function main(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: { kubeconfig: { type: 'string' }, help: { type: 'boolean', short: 'h' } },
  });
  const [command, name] = positionals;
  if (values.help || !command) {
    process.stdout.write(HELP);
    return command || values.help ? 0 : 2;
  }
  if (!name) {
    process.stderr.write(`${command} needs a LivePatch name\n\n${HELP}`);
    return 2;
  }
  const kc = loadKubeConfig(values.kubeconfig);
  const run: Record<string, () => Promise<string>> = {
    status: () => status(kc, name),
    pause: () => setPaused(kc, name, true),
    resume: () => setPaused(kc, name, false),
  };
  const action = run[command];
  if (!action) {
    process.stderr.write(`unknown command "${command}"\n\n${HELP}`);
    return 2;
  }
  process.stdout.write(await action());
  return 0;
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(
      `kubectl livepatch: ${err instanceof Error ? err.message : String(err)}\n`,
    );
    process.exitCode = 1;
  },
);
