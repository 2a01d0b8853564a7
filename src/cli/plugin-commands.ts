// `kubectl livepatch`'s subcommands, in one table: the help text, the flags
// parsed and the dispatch (kubectl-livepatch.ts) all come from it, so no
// command can run undocumented or be documented and missing.
import type { ParseArgsOptionDescriptor, ParseArgsOptionsConfig } from 'node:util';
import type { LivePatchName } from '../api/names.js';
import type { KubeConfig } from '../kube/config.js';
import { nodesTable, status, watchStatus } from './plugin-views.js';
import { requester, setPaused, steer } from './plugin-writes.js';
import { planPromote } from './promote.js';
import { planAbort, planRetry } from './steer.js';

/** The subcommands' flags, all switches. */
export type FlagName = 'watch' | 'rollback-complete' | 'full';

export interface Invocation {
  readonly kc: KubeConfig;
  readonly flag: (name: FlagName) => boolean;
}

interface CommandFlag {
  readonly name: FlagName;
  readonly short?: string;
  /** A flag that makes another form of its command is listed as that form (`status NAME -w`), any other under its command. */
  readonly shownAs: 'form' | 'flag';
  /** What it does, in lines as the help prints them. */
  readonly help: readonly string[];
}

interface CommandBase {
  readonly name: string;
  /** What it does, in lines as the help prints them: wrapped by hand to the help's width. */
  readonly summary: readonly string[];
  readonly flags: readonly CommandFlag[];
}

/** A subcommand runs on one LivePatch (NAME), or on none; it returns what to print. */
export type Subcommand =
  | (CommandBase & {
      readonly operand: 'none';
      readonly run: (i: Invocation) => Promise<string>;
    })
  | (CommandBase & {
      readonly operand: 'livePatch';
      readonly run: (i: Invocation, name: LivePatchName) => Promise<string>;
    });

async function abort({ kc, flag }: Invocation, name: LivePatchName): Promise<string> {
  const o = { rollbackComplete: flag('rollback-complete'), ...(await requester(kc)) };
  return steer(kc, name, (lp) => planAbort(lp, o));
}

async function promote({ kc, flag }: Invocation, name: LivePatchName): Promise<string> {
  const o = { full: flag('full'), ...(await requester(kc)) };
  return steer(kc, name, (lp) => planPromote(lp, o));
}

async function retry({ kc }: Invocation, name: LivePatchName): Promise<string> {
  const o = await requester(kc);
  return steer(kc, name, (lp) => planRetry(lp, o));
}

export const COMMANDS: readonly Subcommand[] = [
  {
    name: 'status',
    operand: 'livePatch',
    summary: [
      "the LivePatch's phase and conditions, then every node that has it:",
      "phase, transition, pending and blocking tasks, and the node's message",
    ],
    flags: [
      {
        name: 'watch',
        short: 'w',
        shownAs: 'form',
        help: [
          'the same, kept up to date as the nodes report (a progress bar on a',
          'terminal, one line per change otherwise) until Ctrl-C',
        ],
      },
    ],
    run: ({ kc, flag }, name) =>
      flag('watch') ? watchStatus(kc, name, process.stdout.isTTY) : status(kc, name),
  },
  {
    name: 'nodes',
    operand: 'none',
    summary: ['every node and every livepatch on it, managed or not, one line each'],
    flags: [],
    run: ({ kc }) => nodesTable(kc),
  },
  {
    name: 'pause',
    operand: 'livePatch',
    summary: ['set spec.rollout.paused=true: no new node starts, nothing is reversed'],
    flags: [],
    run: ({ kc }, name) => setPaused(kc, name, true),
  },
  {
    name: 'resume',
    operand: 'livePatch',
    summary: ['set spec.rollout.paused=false (this also releases an empty pause step)'],
    flags: [],
    run: ({ kc }, name) => setPaused(kc, name, false),
  },
  {
    name: 'promote',
    operand: 'livePatch',
    summary: [
      'end the pause step the rollout is held at (timed or not), that one only:',
      'annotates the LivePatch with livepatch.io/promote=attempt-N/step-K@<when',
      'the step began>; a later pause step holds again, and a repeated or stale',
      'promote does nothing. Refused when it is not held at a pause step',
    ],
    flags: [
      {
        name: 'full',
        shownAs: 'flag',
        help: [
          'skip every remaining step of this attempt, pauses included, held or not',
          '(livepatch.io/promote=attempt-N/full): the rollout goes on to every targeted',
          'node, at most maxUnavailable at a time, until retry starts a new attempt',
        ],
      },
    ],
    run: promote,
  },
  {
    name: 'abort',
    operand: 'livePatch',
    summary: [
      'roll back now, as stall.action Rollback would: annotates the LivePatch with',
      'livepatch.io/abort=attempt-<spec.rollout.attempt>; the controller unpatches',
      'every node, in-flight ones first, and ends RolledBack with reason Aborted.',
      'It stays aborted through pause, resume and edits, until retry. Refused when',
      'it is already RollingBack, RolledBack, Disabled or being deleted, and when it',
      'is Complete unless --rollback-complete is given',
    ],
    flags: [
      {
        name: 'rollback-complete',
        shownAs: 'flag',
        help: [
          'also abort a Complete rollout: every node unpatches, then retry can roll it',
          'out again (spec.state: Disabled is the way to take a patch off for good)',
        ],
      },
    ],
    run: abort,
  },
  {
    name: 'retry',
    operand: 'livePatch',
    summary: [
      'after RolledBack or Failed, or when nodes stalled or failed (a failureBudget',
      'or stall.action Ignore let the rollout go on), a fresh attempt: increments',
      'spec.rollout.attempt (a new generation) and ends an abort; the steps start',
      'over and nodes that stalled or failed are tried again. Refused otherwise,',
      'and while Disabled or being deleted',
    ],
    flags: [],
    run: retry,
  },
];

/** Flags every subcommand takes, before the subcommands' own. */
const GLOBAL_OPTIONS: ParseArgsOptionsConfig = {
  kubeconfig: { type: 'string' },
  context: { type: 'string' },
  // Accepted as kubectl accepts it for cluster-scoped kinds, and changes nothing (see CONNECTION_NOTE).
  namespace: { type: 'string', short: 'n' },
  help: { type: 'boolean', short: 'h' },
};

/** What parseArgs accepts: the global flags and every subcommand's, wherever they are given. */
export function parseOptions(): ParseArgsOptionsConfig {
  const own = COMMANDS.flatMap((c) => c.flags).map((f): [string, ParseArgsOptionDescriptor] => [
    f.name,
    { type: 'boolean', ...(f.short ? { short: f.short } : {}) },
  ]);
  return { ...GLOBAL_OPTIONS, ...Object.fromEntries(own) };
}

/** Where every help text starts, past its synopsis. */
const TEXT_COLUMN = 19;

/** One entry of the help: its synopsis, then its text at TEXT_COLUMN (on a line of its own past it). */
function helpEntry(indent: number, synopsis: string, text: readonly string[]): string[] {
  const head = `${' '.repeat(indent)}${synopsis}`;
  const pad = ' '.repeat(TEXT_COLUMN);
  const [first = '', ...rest] = text;
  const top =
    head.length < TEXT_COLUMN - 1 ? [head.padEnd(TEXT_COLUMN) + first] : [head, pad + first];
  return [...top, ...rest.map((line) => pad + line)];
}

function commandHelp(c: Subcommand): string[] {
  const synopsis = c.operand === 'livePatch' ? `${c.name} NAME` : c.name;
  const flags = c.flags.flatMap((f) => {
    const spelled = f.short ? `-${f.short}` : `--${f.name}`;
    return f.shownAs === 'form'
      ? helpEntry(2, `${synopsis} ${spelled}`, f.help)
      : helpEntry(4, `--${f.name}`, f.help);
  });
  return [...helpEntry(2, synopsis, c.summary), ...flags];
}

const STEERING_NOTE = `promote, abort and retry write the LivePatch (never its status) with the resourceVersion
they read, name you in livepatch.io/requested-by, and print what to watch next. A refusal
changes nothing, says why on stderr and exits 3.`;

const CONNECTION_NOTE = `The cluster is found as kubectl finds it: --kubeconfig FILE, else the files KUBECONFIG
lists, merged (for a cluster, user or context name the first file wins), else
~/.kube/config; --context NAME picks a context other than the current one. Requests go
through the cluster's proxy-url, else HTTPS_PROXY unless NO_PROXY names the server.
LivePatches, LivePatchNodes and Nodes are cluster-scoped: -n/--namespace is accepted
and changes nothing.`;

export function usage(): string {
  const commands = COMMANDS.flatMap(commandHelp);
  return `Usage: kubectl livepatch <command> [NAME] [--kubeconfig FILE] [--context NAME]\n\n${commands.join('\n')}\n\n${STEERING_NOTE}\n\n${CONNECTION_NOTE}\n`;
}
