// The plugin's command table: the help derived from it says what the
// hand-written help said, word for word, and every flag it lists is parsed.
import { describe, expect, test } from '@jest/globals';
import { COMMANDS, parseOptions, usage } from '../../src/cli/plugin-commands.js';

const HELP = `Usage: kubectl livepatch <command> [NAME] [--kubeconfig FILE] [--context NAME]

  status NAME      the LivePatch's phase and conditions, then every node that has it:
                   phase, transition, pending and blocking tasks, and the node's message
  status NAME -w   the same, kept up to date as the nodes report (a progress bar on a
                   terminal, one line per change otherwise) until Ctrl-C
  nodes            every node and every livepatch on it, managed or not, one line each
  pause NAME       set spec.rollout.paused=true: no new node starts, nothing is reversed
  resume NAME      set spec.rollout.paused=false (this also releases an empty pause step)
  promote NAME     end the pause step the rollout is held at (timed or not), that one only:
                   annotates the LivePatch with livepatch.io/promote=attempt-N/step-K@<when
                   the step began>; a later pause step holds again, and a repeated or stale
                   promote does nothing. Refused when it is not held at a pause step
    --full         skip every remaining step of this attempt, pauses included, held or not
                   (livepatch.io/promote=attempt-N/full): the rollout goes on to every targeted
                   node, at most maxUnavailable at a time, until retry starts a new attempt
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

promote, abort and retry write the LivePatch (never its status) with the resourceVersion
they read, name you in livepatch.io/requested-by, and print what to watch next. A refusal
changes nothing, says why on stderr and exits 3.

The cluster is found as kubectl finds it: --kubeconfig FILE, else the files KUBECONFIG
lists, merged (for a cluster, user or context name the first file wins), else
~/.kube/config; --context NAME picks a context other than the current one. Requests go
through the cluster's proxy-url, else HTTPS_PROXY unless NO_PROXY names the server.
LivePatches, LivePatchNodes and Nodes are cluster-scoped: -n/--namespace is accepted
and changes nothing.
`;

describe('kubectl livepatch command table', () => {
  test('the help is derived from the table, unchanged from the hand-written one', () => {
    expect(usage()).toBe(HELP);
  });

  test('every command and flag in the table is in the help and parsed', () => {
    const options = parseOptions();
    for (const c of COMMANDS) {
      expect(usage()).toContain(`  ${c.name}`);
      for (const f of c.flags) {
        expect(options[f.name]).toEqual({
          type: 'boolean',
          ...(f.short ? { short: f.short } : {}),
        });
        expect(usage()).toContain(f.short ? `-${f.short}` : `--${f.name}`);
      }
    }
    expect(options).toMatchObject({
      kubeconfig: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    });
  });

  test('only nodes runs without a LivePatch name', () => {
    expect(COMMANDS.filter((c) => c.operand === 'none').map((c) => c.name)).toEqual(['nodes']);
  });
});
