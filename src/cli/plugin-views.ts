// What `kubectl livepatch status` and `nodes` print: one LivePatch node by
// node (or followed live by watch), and every node with every patch on it,
// all from the nodes' own reports. Read-only.
import type { LivePatch, LivePatchNode, ObservedPatch } from '../api/generated/types.js';
import { STEERING_ANNOTATIONS } from '../api/constants.js';
import { abortAnnotation, byWhom, promoteAnnotation } from '../api/steering.js';
import { KSTATUS_CONDITION } from '../controller/kstatus-conditions.js';
import { bothClocks, describeWindow } from '../controller/maintenance-window.js';
import { describeTasks } from '../api/tasks.js';
import type { KubeConfig } from '../kube/config.js';
import { rawJson } from '../kube/raw.js';
import { Reflector } from '../kube/reflector.js';
import { PATHS } from '../kube/resources.js';
import { createLogger } from '../log.js';
import { progressBar, progressLine } from './progress.js';
import { describeStep, heldPause } from './promote.js';
import { untilSignal } from './signals.js';

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

const ROLLING_FORWARD: ReadonlySet<string | undefined> = new Set([
  undefined,
  'Pending',
  'Progressing',
  'Paused',
  'Waiting',
]);

/** Where the rollout stands in spec.rollout.steps, and how to promote a pause it is held at. */
function stepLine(lp: LivePatch): string[] {
  const steps = lp.spec.rollout.steps ?? [];
  const name = lp.metadata.name ?? '';
  const at = lp.status?.currentStep ?? 0;
  const held = heldPause(lp);
  if (held)
    return [
      `  step: ${held.index + 1} of ${steps.length} (${describeStep(steps[held.index])}), held since ${held.since}. ` +
        `To end it: kubectl livepatch promote ${name}; to skip every remaining step: kubectl livepatch promote ${name} --full`,
    ];
  if (!steps.length || !ROLLING_FORWARD.has(lp.status?.phase)) return [];
  return [
    at < steps.length
      ? `  step: ${at + 1} of ${steps.length} (${describeStep(steps[at])})`
      : `  step: past the last of ${steps.length}: on to every targeted node`,
  ];
}

/** The last promotion the controller acted on, this attempt. */
function promotionLine(lp: LivePatch): string[] {
  const p = lp.status?.promotion;
  if (!p || p.attempt !== (lp.spec.rollout.attempt ?? 0)) return [];
  const what = p.full ? 'every remaining step skipped' : `pause step ${p.step ?? ''} ended`;
  return [`  promoted: ${what}${byWhom(p.requestedBy)} at ${p.time}`];
}

/** A promote annotation that does nothing, said where the user looks. */
function promoteNote(lp: LivePatch): string[] {
  const promotion = promoteAnnotation(lp);
  const key = STEERING_ANNOTATIONS.promote;
  if (promotion.kind === 'stale')
    return [
      `  note: ${key} names ${promotion.names}, not the current ${promotion.current}: it does nothing`,
    ];
  if (promotion.kind === 'invalid')
    return [
      `  note: ${key} is ${JSON.stringify(promotion.value)}, neither attempt-N/step-K@TIME nor attempt-N/full: it does nothing. Use kubectl livepatch promote ${lp.metadata.name ?? ''}`,
    ];
  return [];
}

/** Ready, Reconciling and Stalled repeat Complete, Progressing and Degraded for GitOps tools: shown once. */
const FOR_TOOLS: ReadonlySet<string> = new Set(Object.values(KSTATUS_CONDITION));

/** Which newer members of its series hold its nodes, most nodes first, as status.supersededBy lists them. */
function supersededNote(lp: LivePatch): string[] {
  const by = lp.status?.supersededBy ?? [];
  if (!by.length) return [];
  const each = by.map((b) => `${b.livePatch} on ${b.nodes} node${b.nodes === 1 ? '' : 's'}`);
  return [`  superseded by: ${each.join(', ')}`];
}

/**
 * The maintenance window in one line: open until when, or when it opens next,
 * in UTC and on the window's own clock; or why the controller cannot read it.
 */
function windowNote(lp: LivePatch): string[] {
  const w = lp.spec.rollout.window;
  if (!w) return [];
  const text = describeWindow(w);
  const held = lp.status?.conditions?.find((c) => c.type === KSTATUS_CONDITION.reconciling);
  if (lp.status?.phase === 'Waiting' && held?.reason === 'InvalidWindow')
    return [`  window: ${text}: ${held.message}`];
  const s = lp.status?.window;
  const when = (iso: string): string => bothClocks(w.timeZone, Date.parse(iso));
  if (!s) return [`  window: ${text}`];
  if (!s.open)
    return [
      `  window: ${text}: closed, opens ${s.nextOpen ? when(s.nextOpen) : 'not in the next two weeks'}`,
    ];
  return [
    `  window: ${text}: open, ${s.closesAt ? `closes ${when(s.closesAt)}` : 'does not close in the next two weeks'}`,
  ];
}

/** The status page of one LivePatch, from the LivePatch and the nodes' own reports. */
export function renderStatus(lp: LivePatch, nodes: readonly LivePatchNode[]): string {
  const name = lp.metadata.name ?? '';
  const s = lp.status;
  const head = [
    `LivePatch ${name}: ${lp.spec.state}, ${s?.phase ?? 'Pending'}, ${s?.summary ?? '0/0'} patched (patchName ${lp.spec.patchName})`,
    ...(s?.conditions ?? [])
      .filter((c) => c.status === 'True' && !FOR_TOOLS.has(c.type))
      .map((c) => `  ${c.type}: ${c.reason}: ${c.message}`),
    ...windowNote(lp),

    ...stepLine(lp),
    ...promotionLine(lp),
    ...promoteNote(lp),
    ...supersededNote(lp),
    ...abortNote(lp),
  ];
  const rows = nodes.map((n) => nodeRow(n, name)).filter((r): r is string[] => r !== undefined);
  const body = rows.length
    ? table([['NODE', 'KERNEL', 'PHASE', 'TRANSITION', 'PENDING', 'BLOCKING', 'MESSAGE'], ...rows])
    : 'no node has this patch yet';
  return `${head.join('\n')}\n\n${body}\n`;
}

export async function status(kc: KubeConfig, name: string): Promise<string> {
  const lp = await rawJson<LivePatch>(kc, 'GET', `${PATHS.livePatches}/${name}`);
  const nodes = await rawJson<{ items: LivePatchNode[] }>(kc, 'GET', PATHS.livePatchNodes);
  return renderStatus(lp, nodes.items);
}

/**
 * Follows the LivePatch and the nodes by watch: on a terminal the page is
 * redrawn with a progress bar; otherwise a line is printed when the summary
 * changes, so logs and pipes get one line per step.
 */
export async function watchStatus(
  kc: KubeConfig,
  name: string,
  terminal: boolean,
): Promise<string> {
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
export async function nodesTable(kc: KubeConfig): Promise<string> {
  const list = await rawJson<{ items: LivePatchNode[] }>(kc, 'GET', PATHS.livePatchNodes);
  const rows = list.items.flatMap(nodeLines);
  if (!rows.length) return 'no LivePatchNodes: is the agent DaemonSet running?\n';
  return `${table([['NODE', 'KERNEL', 'LIVEPATCH', 'PATCH', 'PHASE', 'MESSAGE'], ...rows])}\n`;
}
