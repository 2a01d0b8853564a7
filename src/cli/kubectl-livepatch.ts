#!/usr/bin/env node
// `kubectl livepatch` (a kubectl plugin: put kubectl-livepatch on PATH).
// status: one LivePatch, node by node, from the nodes' own reports (-w: live).
// nodes: every node and every patch it has, one line each.
// pause / resume: flip spec.rollout.paused, which also releases an empty pause step.
// abort / retry: ask the controller, through the LivePatch itself (steer.ts), to
// roll back now or to roll out afresh; never the controller's status.
import { parseArgs } from 'node:util';
import type { LivePatch, LivePatchNode, ObservedPatch } from '../api/generated/types.js';
import { describeTasks } from '../api/tasks.js';
import { loadKubeConfig } from '../kube/config.js';
import { rawJson } from '../kube/raw.js';
import { Reflector } from '../kube/reflector.js';
import { isConflict, mergePatch, PATHS } from '../kube/resources.js';
import { whoAmI } from '../kube/whoami.js';
import { FIELD_MANAGER, STEERING_ANNOTATIONS } from '../api/constants.js';
import { abortAnnotation } from '../api/steering.js';
import { createLogger } from '../log.js';
import { progressBar, progressLine } from './progress.js';
import { pauseNote, planAbort, planRetry, type Steer } from './steer.js';
import { untilSignal } from './signals.js';

const HELP = `Usage: kubectl livepatch <command> [NAME] [--kubeconfig FILE]

  status NAME      the LivePatch's phase and conditions, then every node that has it:
                   phase, transition, pending and blocking tasks, and the node's message
  status NAME -w   the same, kept up to date as the nodes report (a progress bar on a
                   terminal, one line per change otherwise) until Ctrl-C
  nodes            every node and every livepatch on it, managed or not, one line each
  pause NAME       set spec.rollout.paused=true: no new node starts, nothing is reversed
  resume NAME      set spec.rollout.paused=false (this also releases an empty pause step)
  abort NAME       roll back now, as stall.action Rollback would: annotates the LivePatch with
                   livepatch.io/abort=attempt-<spec.rollout.attempt>; the controller unpatches
                   every node, in-flight ones first, and ends RolledBack with reason Aborted.
                   It stays aborted through pause, resume and edits, until retry. Refused when
                   it is already RollingBack, RolledBack, Disabled or being deleted, and when it
                   is Complete unless --rollback-complete is given
    --rollback-complete
                   also abort a Complete rollout: every node unpatches, then retry can roll it
                   out again (spec.state: Disabled is the way to take a patch off for good)
  retry NAME       after RolledBack or Failed, or when nodes stalled or failed (a failureBudget
                   or stall.action Ignore let the rollout go on), a fresh attempt: increments
                   spec.rollout.attempt (a new generation) and ends an abort; the steps start
                   over and nodes that stalled or failed are tried again. Refused otherwise,
                   and while Disabled or being deleted

abort and retry write the LivePatch (never its status) with the resourceVersion they read,
name you in livepatch.io/requested-by, and print what to watch next. A refusal changes
nothing, says why on stderr and exits 3.
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

/** An abort annotation that does nothing, said where the user looks. */
function abortNote(lp: LivePatch): string[] {
  const abort = abortAnnotation(lp);
  const key = STEERING_ANNOTATIONS.abort;
  if (abort.kind === 'stale')
    return [
      `  note: ${key} names ${abort.names}, not the current ${abort.current}: it does nothing`,
    ];
  if (abort.kind === 'invalid')
    return [
      `  note: ${key} is ${JSON.stringify(abort.value)}, neither attempt-N nor a generation: it does nothing. Use kubectl livepatch abort ${lp.metadata.name ?? ''}`,
    ];
  return [];
}

/** The status page of one LivePatch, from the LivePatch and the nodes' own reports. */
function renderStatus(lp: LivePatch, nodes: readonly LivePatchNode[]): string {
  const name = lp.metadata.name ?? '';
  const s = lp.status;
  const head = [
    `LivePatch ${name}: ${lp.spec.state}, ${s?.phase ?? 'Pending'}, ${s?.summary ?? '0/0'} patched (patchName ${lp.spec.patchName})`,
    ...(s?.conditions ?? [])
      .filter((c) => c.status === 'True')
      .map((c) => `  ${c.type}: ${c.reason}: ${c.message}`),
    ...abortNote(lp),
  ];
  const rows = nodes.map((n) => nodeRow(n, name)).filter((r): r is string[] => r !== undefined);
  const body = rows.length
    ? table([['NODE', 'KERNEL', 'PHASE', 'TRANSITION', 'PENDING', 'BLOCKING', 'MESSAGE'], ...rows])
    : 'no node has this patch yet';
  return `${head.join('\n')}\n\n${body}\n`;
}

async function status(kc: Kc, name: string): Promise<string> {
  const lp = await rawJson<LivePatch>(kc, 'GET', `${PATHS.livePatches}/${name}`);
  const nodes = await rawJson<{ items: LivePatchNode[] }>(kc, 'GET', PATHS.livePatchNodes);
  return renderStatus(lp, nodes.items);
}

/**
 * Follows the LivePatch and the nodes by watch: on a terminal the page is
 * redrawn with a progress bar; otherwise a line is printed when the summary
 * changes, so logs and pipes get one line per step.
 */
async function watchStatus(kc: Kc, name: string, terminal: boolean): Promise<string> {
  const log = createLogger({ component: 'kubectl-livepatch', format: 'text', level: 'error' });
  let last = '';
  let timer: NodeJS.Timeout | undefined;
  const draw = (): void => {
    timer = undefined;
    const lp = livePatches.get(name);
    if (!lp) return;
    if (nodes) {
      process.stdout.write(`\x1b[H\x1b[2J${progressBar(lp)}\n\n${renderStatus(lp, nodes.list())}`);
      return;
    }
    const line = progressLine(lp);
    // The first 9 characters are the time of day: print only real changes.
    if (line.slice(9) !== last.slice(9)) process.stdout.write(`${line}\n`);
    last = line;
  };
  // Bursts of node reports coalesce into one redraw.
  const schedule = (): void => {
    timer ??= setTimeout(draw, 100);
  };
  const livePatches = new Reflector<LivePatch>(kc, {
    path: PATHS.livePatches,
    fieldSelector: `metadata.name=${name}`,
    log,
    onChange: schedule,
  });
  // Plain lines need the LivePatch alone: no watch of every node off a terminal.
  const nodes = terminal
    ? new Reflector<LivePatchNode>(kc, { path: PATHS.livePatchNodes, log, onChange: schedule })
    : undefined;
  const stop = (): void => {
    livePatches.stop();
    nodes?.stop();
  };
  livePatches.start();
  nodes?.start();
  await livePatches.waitForSync();
  if (!livePatches.get(name)) {
    stop();
    throw new Error(`livepatch ${name} not found`);
  }
  await untilSignal();
  stop();
  if (timer) clearTimeout(timer);
  return '';
}

/** One node's lines for `nodes`: its patches, the unmanaged ones, or why it has none. */
function nodeLines(n: LivePatchNode): string[][] {
  const node = n.metadata.name ?? '';
  const kernel = n.status?.kernelRelease ?? '';
  const managed = (n.status?.patches ?? []).map((p) => [
    node,
    kernel,
    p.livePatch,
    p.patchName,
    p.phase,
    p.message ?? '',
  ]);
  const unmanaged = (n.status?.unmanaged ?? []).map((u) => {
    const state = u.transition ? 'Transitioning' : u.enabled ? 'Enabled' : 'Disabled';
    return [node, kernel, '(unmanaged)', u.patchName, state, 'loaded outside livepatch-operator'];
  });
  if (managed.length || unmanaged.length) return [...managed, ...unmanaged];
  const ready = n.status?.conditions?.find((c) => c.type === 'Ready');
  const why = ready?.status === 'False' ? ready.message : 'no livepatch';
  return [[node, kernel, '-', '-', '-', why]];
}

/** Every node, every patch on it (managed or not), one line each. */
async function nodesTable(kc: Kc): Promise<string> {
  const list = await rawJson<{ items: LivePatchNode[] }>(kc, 'GET', PATHS.livePatchNodes);
  const rows = list.items.flatMap(nodeLines);
  if (!rows.length) return 'no LivePatchNodes: is the agent DaemonSet running?\n';
  return `${table([['NODE', 'KERNEL', 'LIVEPATCH', 'PATCH', 'PHASE', 'MESSAGE'], ...rows])}\n`;
}

async function setPaused(kc: Kc, name: string, paused: boolean): Promise<string> {
  const written = await mergePatch<LivePatch>(
    kc,
    `${PATHS.livePatches}/${name}`,
    { spec: { rollout: { paused } } },
    FIELD_MANAGER.plugin,
  );
  return `livepatch.livepatch.io/${name} ${paused ? 'paused' : 'resumed'}\n${pauseNote(written)}`;
}

class Refused extends Error {
  override readonly name = 'Refused';
}

const STEER_ATTEMPTS = 3;

/**
 * Reads, decides, writes with the resourceVersion read; a conflict means the
 * LivePatch changed in between (the controller wrote its status), so it is
 * read and decided again.
 */
async function steer(kc: Kc, name: string, decide: (lp: LivePatch) => Steer): Promise<string> {
  const path = `${PATHS.livePatches}/${name}`;
  for (let attempt = 1; ; attempt++) {
    const decision = decide(await rawJson<LivePatch>(kc, 'GET', path));
    if (decision.kind === 'refuse') throw new Refused(`refused: ${decision.message}`);
    try {
      const written = await mergePatch<LivePatch>(kc, path, decision.patch, FIELD_MANAGER.plugin);
      return decision.done(written);
    } catch (err) {
      if (!isConflict(err) || attempt >= STEER_ATTEMPTS) throw err;
    }
  }
}

/** Who is asking, for livepatch.io/requested-by; a note on stderr when the API server cannot say. */
async function requester(kc: Kc): Promise<{ by?: string }> {
  const me = await whoAmI(kc);
  if (me.kind === 'known') return { by: me.username };
  process.stderr.write(
    `note: the API server did not say who you are (${me.why}); ${STEERING_ANNOTATIONS.requestedBy} stays unset\n`,
  );
  return {};
}

async function main(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      kubeconfig: { type: 'string' },
      watch: { type: 'boolean', short: 'w' },
      'rollback-complete': { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  const [command, name] = positionals;
  if (values.help || !command) {
    process.stdout.write(HELP);
    return command || values.help ? 0 : 2;
  }
  const kc = loadKubeConfig(values.kubeconfig);
  if (command === 'nodes') {
    process.stdout.write(await nodesTable(kc));
    return 0;
  }
  if (!name) {
    process.stderr.write(`${command} needs a LivePatch name\n\n${HELP}`);
    return 2;
  }
  const run: Record<string, () => Promise<string>> = {
    status: () => (values.watch ? watchStatus(kc, name, process.stdout.isTTY) : status(kc, name)),
    pause: () => setPaused(kc, name, true),
    resume: () => setPaused(kc, name, false),
    abort: async () => {
      const o = {
        rollbackComplete: values['rollback-complete'] ?? false,
        ...(await requester(kc)),
      };
      return steer(kc, name, (lp) => planAbort(lp, o));
    },
    retry: async () => {
      const o = await requester(kc);
      return steer(kc, name, (lp) => planRetry(lp, o));
    },
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
    if (err instanceof Refused) {
      process.stderr.write(`kubectl livepatch: ${err.message}\n`);
      process.exitCode = 3;
      return;
    }
    process.stderr.write(
      `kubectl livepatch: ${err instanceof Error ? err.message : String(err)}\n`,
    );
    process.exitCode = 1;
  },
);
