// A scenario's figures, the table `npm run chaos` prints and the README
// shows, and the messages of violated invariants (scenario, seed, node, what
// was seen). Pure.
import type { Violation } from './invariants.js';

/** One fault's aim and where it landed, by the kernel's own timeline at the moment of the fault. */
export interface FaultPoint {
  readonly node: string;
  readonly patch: string;
  readonly at: string;
  readonly intended: string;
  readonly landed: string;
}

export interface ScenarioResult {
  readonly scenario: string;
  readonly seed: number;
  /** Rollouts, cycles or restarts the scenario ran. */
  readonly runs: number;
  readonly faults: number;
  readonly endStates: { readonly reached: number; readonly expected: number };
  readonly doubleLoads: number;
  readonly leftInTransition: number;
  /** What the recovery time measures, and its samples in seconds. */
  readonly recovery: { readonly what: string; readonly seconds: readonly number[] };
  readonly violations: readonly string[];
  readonly durationSeconds: number;
  /** Where each fault was aimed and where it landed (scenarios that aim at a kernel's moment). */
  readonly faultPoints?: readonly FaultPoint[];
  /** Anything else the scenario measured (kinds of faults, a README figure it is held to). */
  readonly notes?: Readonly<Record<string, string | number>>;
}

export function median(values: readonly number[]): number {
  if (values.length === 0) return 0;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? (sorted[mid] ?? 0) : ((sorted[mid - 1] ?? 0) + (sorted[mid] ?? 0)) / 2;
}

/** One line per violation: where (scenario, seed, node or LivePatch) and what was seen. */
export function violationMessages(
  scenario: string,
  seed: number,
  violations: readonly Violation[],
): string[] {
  return violations.map((v) => {
    const where = [v.node && `node ${v.node}`, v.livePatch && `LivePatch ${v.livePatch}`]
      .filter(Boolean)
      .join(', ');
    return `${scenario} (seed ${seed})${where ? `, ${where}` : ''}: ${v.invariant} violated: ${v.seen}`;
  });
}

const COLUMNS: readonly [string, (r: ScenarioResult) => string][] = [
  ['scenario', (r) => r.scenario],
  ['runs', (r) => String(r.runs)],
  ['faults', (r) => String(r.faults)],
  ['end states', (r) => `${r.endStates.reached}/${r.endStates.expected}`],
  ['double loads', (r) => String(r.doubleLoads)],
  ['left in transition', (r) => String(r.leftInTransition)],
  ['recovery median', (r) => `${median(r.recovery.seconds).toFixed(1)} s`],
  ['recovery max', (r) => `${Math.max(0, ...r.recovery.seconds).toFixed(1)} s`],
  ['violations', (r) => String(r.violations.length)],
  ['landed as intended', (r) => landedText(r.faultPoints)],
];

/** Faults that landed where they were aimed, of those aimed: `-` when the scenario aims at no kernel moment. */
export function landedText(points: readonly FaultPoint[] | undefined): string {
  if (!points?.length) return '-';
  return `${points.filter((p) => p.landed === p.intended).length}/${points.length}`;
}

/** The results as a Markdown table (right-aligned figures), as printed and as in the README. */
export function markdownTable(results: readonly ScenarioResult[]): string {
  const rows = results.map((r) => COLUMNS.map(([, f]) => f(r)));
  const widths = COLUMNS.map(([h], i) =>
    Math.max(h.length, ...rows.map((row) => (row[i] ?? '').length)),
  );
  const line = (cells: readonly string[]): string =>
    `| ${cells.map((c, i) => (i === 0 ? c.padEnd(widths[i] ?? 0) : c.padStart(widths[i] ?? 0))).join(' | ')} |`;
  const rule = `| ${widths.map((w, i) => (i === 0 ? '-'.repeat(w) : `${'-'.repeat(w - 1)}:`)).join(' | ')} |`;
  return [line(COLUMNS.map(([h]) => h)), rule, ...rows.map(line)].join('\n');
}

/** What each scenario's recovery time measures, for the notes under the table. */
export const recoveryNotes = (results: readonly ScenarioResult[]): string[] =>
  results.map((r) => `${r.scenario}: recovery is ${r.recovery.what}`);
