// The conformance scenarios: each drives a kernel through the KernelBackend
// interface and records what it sees against the rule of docs/kernel.md it
// checks. They run on real kernels in VMs (the truth) and on the simulator
// configured as the same release, whose trace must be identical. Some run the
// agent's own decisions and actions (agent-pass.ts) to show what it makes of
// the kernel's answers. They run in this order on one kernel; each leaves the
// kernel as it found it, except the three forced ones near the end, which pin
// modules, and the last, which locks the kernel down for good.
import { foreignBuildLogLine } from '../../../agent/kernel/profile.js';
import { REFUSAL_REST_MS } from '../../../agent/pass/cooldowns.js';
import { EMPTY_MEMORY, type PassMemory } from '../../../agent/pass/pass.js';
import { agentPass, desiredEntry, type AgentPass } from './agent-pass.js';
import { patchName, type PatchName } from '../../../src/api/names.js';
import {
  TAINT_LIVEPATCH,
  TAINT_OOT_MODULE,
  TAINT_UNSIGNED_MODULE,
} from '../../../src/api/taint.js';
import {
  entryText,
  eventually,
  outcome,
  refusalLog,
  sampled,
  Trace,
  type Lab,
  type Scenario,
  type TestModule,
} from './lab.js';

/** A test module's name, usable both as a module file and as the patch it loads. */
const testModule = <T extends TestModule>(name: T): PatchName & T =>
  patchName(name) as PatchName & T;
const CMDLINE = testModule('lpt_cmdline');
const CMDLINE_V2 = testModule('lpt_cmdline_v2');
const HOLDER = testModule('lpt_holder');
const STALL = testModule('lpt_stall');
const UPPER = testModule('lpt_Upper');
const STALL_TWIN = testModule('lpt_stall_twin');
const SLEEPER = testModule('lpt_sleeper');
const SIGNAL = testModule('lpt_signal');
const NO_KLP = testModule('lpt_noklp');
const PREPATCH_FAIL = testModule('lpt_prepatch_fail');
const PREPATCH_WAIT = testModule('lpt_prepatch_wait');
const STATE = testModule('lpt_state');
const STATE_NONE = testModule('lpt_state_none');
const STATE_V1 = testModule('lpt_state_v1');
const STATE_V2 = testModule('lpt_state_v2');
const STALL_FORCE = testModule('lpt_stall_force');

/** The agent's insmod timeout in the blocked-callback scenario: its default is a minute. */
const SHORT_TOOL_TIMEOUT_MS = 3000;

/**
 * When a transition blocked only by a kthread asleep interruptibly completes:
 * the kernel signals at its 15th retry (retries come about once a second, on
 * whole-second boundaries) and switches the woken kthread at the next one, about
 * 16 s in; a VM under emulation runs a little late. Before 13 s would mean it
 * did not wait for the signal.
 */
export const SIGNAL_WINDOW_S = { from: 13, to: 20 } as const;

const gone = (lab: Lab, name: string) => async (): Promise<boolean> =>
  (await lab.sysfsEntry(name)) === undefined;
const settled = (lab: Lab, name: string) => async (): Promise<boolean> =>
  (await lab.sysfsEntry(name))?.transition === false;
const released = (lab: Lab, name: string) => async (): Promise<boolean> =>
  (await lab.refcnt(name)) === 0;

/** Disables a settled patch, waits for its module to be free, unloads it. */
async function remove(lab: Lab, t: Trace, name: PatchName & TestModule): Promise<void> {
  if (await lab.sysfsEntry(name)) {
    await lab.backend.setEnabled(name, false);
    t.check(`the disable of ${name} completes`, await eventually(lab, gone(lab, name)), true);
  }
  t.check(`${name}'s reference drops`, await eventually(lab, released(lab, name)), true);
  t.check(`rmmod ${name}`, await outcome(lab.backend.unload(name, 10_000)), 'ok');
}

async function load(lab: Lab, t: Trace, name: PatchName & TestModule, rule: string): Promise<void> {
  t.check(rule, await outcome(lab.backend.load(lab.module(name))), 'ok');
}

/** Three reads a second apart all show the transition still running, in the given direction. */
async function stalledTransition(
  lab: Lab,
  t: Trace,
  name: string,
  enabling: boolean,
): Promise<void> {
  const seen = await sampled(lab, async () => entryText(await lab.sysfsEntry(name)));
  t.check(`a kthread asleep in the changed function keeps ${name} in transition`, seen, [
    `enabled=${enabling ? 1 : 0} transition=1`,
  ]);
}

const loadTransitionPatched: Scenario = {
  name: 'load-transition-patched',
  title: 'insmod enables the patch at once; its transition completes and the new code runs',
  async run(lab, t) {
    await load(lab, t, CMDLINE, 'insmod of a livepatch succeeds');
    t.check(
      'the patch is enabled as insmod returns',
      (await lab.sysfsEntry(CMDLINE))?.enabled,
      true,
    );
    t.check('the transition completes', await eventually(lab, settled(lab, CMDLINE)), true);
    const listed = (await lab.backend.patches()).find((p) => p.name === CMDLINE);
    t.check(
      'the replace file exists from 6.11 only',
      listed?.replace,
      lab.profile.replaceFile ? false : undefined,
    );
    t.check('the new code runs', await lab.cmdlineOwner(), CMDLINE);
    const taint = await lab.backend.tainted();
    t.check(
      'an out-of-tree unsigned livepatch taints O, E and K',
      [TAINT_OOT_MODULE, TAINT_UNSIGNED_MODULE, TAINT_LIVEPATCH].map((b) => (taint & b) !== 0),
      [true, true, true],
    );
    t.check('the enabled patch holds its module', await lab.refcnt(CMDLINE), 1);
  },
};

const sameValue: Scenario = {
  name: 'write-same-value',
  title: 'writing the value enabled already has is EINVAL',
  async run(lab, t) {
    t.check(
      'enabled=1 on an enabled patch',
      await outcome(lab.backend.setEnabled(CMDLINE, true)),
      'EINVAL',
    );
  },
};

const forceOutside: Scenario = {
  name: 'force-outside-transition',
  title: 'force is refused on a patch that is not in transition',
  async run(lab, t) {
    t.check('force outside a transition', await outcome(lab.backend.force(CMDLINE)), 'EINVAL');
  },
};

const disableUnload: Scenario = {
  name: 'disable-unload',
  title: 'disable: the directory goes, the code is back, refcnt drops to 0, then rmmod',
  async run(lab, t) {
    t.check(
      'enabled=0 on an enabled patch',
      await outcome(lab.backend.setEnabled(CMDLINE, false)),
      'ok',
    );
    t.check('enabled reads 0 at once', (await lab.sysfsEntry(CMDLINE))?.enabled ?? false, false);
    t.check(
      'the directory goes when the disable completes',
      await eventually(lab, gone(lab, CMDLINE)),
      true,
    );
    t.check('the kernel code runs again', await lab.cmdlineOwner(), undefined);
    t.check('the module stays loaded until rmmod', await lab.backend.isLoaded(CMDLINE), true);
    t.check('its reference drops to 0', await eventually(lab, released(lab, CMDLINE)), true);
    t.check('rmmod', await outcome(lab.backend.unload(CMDLINE, 10_000)), 'ok');
    t.check('the module is gone', await lab.backend.isLoaded(CMDLINE), false);
  },
};

const unloadNotLoaded: Scenario = {
  name: 'unload-not-loaded',
  title: 'unloading a module that is not loaded is already done',
  async run(lab, t) {
    t.check(
      'unload of a module not loaded',
      await outcome(lab.backend.unload(CMDLINE, 1000)),
      'ok',
    );
    t.check('nothing is loaded', await lab.backend.isLoaded(CMDLINE), false);
  },
};

const stallReversed: Scenario = {
  name: 'stall-reversed',
  title: 'a stall names the blocking kthread; a second load is EBUSY; reversing ends it',
  async run(lab, t) {
    t.check(
      'insmod of an ordinary module',
      await outcome(lab.backend.load(lab.module(HOLDER))),
      'ok',
    );
    await lab.hold(true);
    await load(lab, t, STALL, 'insmod of the patch of the function the kthread sleeps in');
    await stalledTransition(lab, t, STALL, true);
    const tasks = await lab.backend.transitionTasks(STALL, 10);
    const pid = await lab.kthreadPid('lpt_holder');
    t.check(
      'the kthread is the one blocking task, by pid and comm',
      tasks.blocking.map((b) => `${b.comm}[${b.pid === pid ? 'its pid' : String(b.pid)}]`),
      ['lpt_holder[its pid]'],
    );
    t.check('pending counts it', tasks.pending, 1);
    t.check(
      'insmod of another livepatch during a transition',
      await outcome(lab.backend.load(lab.module(CMDLINE))),
      'EBUSY',
    );
    t.check('the other module was not loaded', await lab.backend.isLoaded(CMDLINE), false);
    t.check(
      'enabled=0 mid-transition reverses it',
      await outcome(lab.backend.setEnabled(STALL, false)),
      'ok',
    );
    t.check('enabled reads 0 at once', (await lab.sysfsEntry(STALL))?.enabled ?? false, false);
    t.check(
      'the reversal completes: the kthread never left the old code',
      await eventually(lab, gone(lab, STALL)),
      true,
    );
    t.check('nothing blocks any more', (await lab.backend.transitionTasks(STALL, 10)).pending, 0);
    await remove(lab, t, STALL);
  },
};

const busyRetried: Scenario = {
  name: 'busy-load-retried',
  title:
    'a load during a transition is EBUSY at once; the same load succeeds once the transition ends',
  async run(lab, t) {
    await load(lab, t, STALL, 'insmod of the stalling patch');
    t.check(
      'insmod during the transition: one attempt, EBUSY',
      await outcome(lab.backend.load(lab.module(CMDLINE))),
      'EBUSY',
    );
    await lab.hold(false);
    t.check('the stalled patch completes', await eventually(lab, settled(lab, STALL)), true);
    t.check(
      'the same insmod again succeeds',
      await outcome(lab.backend.load(lab.module(CMDLINE))),
      'ok',
    );
    t.check('the retried patch completes', await eventually(lab, settled(lab, CMDLINE)), true);
    await remove(lab, t, CMDLINE);
    await remove(lab, t, STALL);
  },
};

const upperCaseName: Scenario = {
  name: 'upper-case-name',
  title: 'a module name with upper-case letters is kept as it is: modinfo, sysfs directory, rmmod',
  async run(lab, t) {
    t.check(
      'modinfo names it with its case',
      (await lab.backend.moduleInfo(lab.module(UPPER))).name,
      UPPER,
    );
    await load(lab, t, UPPER, 'insmod of lpt_Upper');
    t.check(
      'its directory is /sys/kernel/livepatch/lpt_Upper',
      (await lab.backend.patches()).map((p) => p.name),
      [UPPER],
    );
    t.check('/sys/module/lpt_Upper exists', await lab.backend.isLoaded(UPPER), true);
    t.check('the transition completes', await eventually(lab, settled(lab, UPPER)), true);
    await remove(lab, t, UPPER);
    t.check('unloaded', await lab.backend.isLoaded(UPPER), false);
  },
};

const ftraceOff: Scenario = {
  name: 'ftrace-disabled-busy',
  title:
    'with kernel.ftrace_enabled=0 a livepatch load is EBUSY, and the kernel log says ftrace refused its handler',
  async run(lab, t) {
    t.check(
      'ftrace_enabled=0 with no patch loaded',
      await outcome(lab.setFtraceEnabled(false)),
      'ok',
    );
    const refused = await refusalLog(lab.backend.load(lab.module(CMDLINE)));
    t.check('insmod of a livepatch', refused.errno, 'EBUSY');
    t.check(
      'the kernel log names ftrace refusing the handler of cmdline_proc_show',
      refused.log.some((l) =>
        l.includes("failed to register ftrace handler for function 'cmdline_proc_show'"),
      ),
      true,
    );
    t.check('nothing loaded', await lab.backend.isLoaded(CMDLINE), false);
    t.check('ftrace_enabled=1 again', await outcome(lab.setFtraceEnabled(true)), 'ok');
    await load(lab, t, CMDLINE, 'insmod of the same livepatch then');
    t.check(
      'ftrace_enabled=0 under a loaded patch is refused',
      await outcome(lab.setFtraceEnabled(false)),
      'EBUSY',
    );
    t.check('the transition completes', await eventually(lab, settled(lab, CMDLINE)), true);
    await remove(lab, t, CMDLINE);
  },
};

const reverseDisable: Scenario = {
  name: 'reverse-disable',
  title: 'a disable blocked by a kthread asleep in the new code is reversed by writing 1',
  async run(lab, t) {
    await load(lab, t, STALL, 'insmod while the kthread is elsewhere');
    t.check('the transition completes', await eventually(lab, settled(lab, STALL)), true);
    await lab.hold(true);
    t.check('enabled=0', await outcome(lab.backend.setEnabled(STALL, false)), 'ok');
    await stalledTransition(lab, t, STALL, false);
    t.check(
      'enabled=1 mid-disable reverses it',
      await outcome(lab.backend.setEnabled(STALL, true)),
      'ok',
    );
    t.check('the reversal completes', await eventually(lab, settled(lab, STALL)), true);
    t.check(
      'the patch is enabled again',
      entryText(await lab.sysfsEntry(STALL)),
      'enabled=1 transition=0',
    );
    await lab.hold(false);
    await remove(lab, t, STALL);
  },
};

const atomicReplace: Scenario = {
  name: 'atomic-replace',
  title:
    "a replace patch removes the older patch's directory; its module stays, its reference drops",
  async run(lab, t) {
    await load(lab, t, CMDLINE, 'insmod of the first patch');
    t.check('it completes', await eventually(lab, settled(lab, CMDLINE)), true);
    await load(lab, t, CMDLINE_V2, 'insmod of the cumulative patch');
    t.check('it completes', await eventually(lab, settled(lab, CMDLINE_V2)), true);
    t.check('the older directory goes', await eventually(lab, gone(lab, CMDLINE)), true);
    t.check('the older module stays loaded', await lab.backend.isLoaded(CMDLINE), true);
    t.check(
      "the older module's reference drops",
      await eventually(lab, released(lab, CMDLINE)),
      true,
    );
    t.check('the cumulative code runs', await lab.cmdlineOwner(), CMDLINE_V2);
    const listed = (await lab.backend.patches()).map((p) => [p.name, p.replace ?? null]);
    t.check('only the cumulative patch is listed; replace shows from 6.11', listed, [
      [CMDLINE_V2, lab.profile.replaceFile ? true : null],
    ]);
    t.check(
      'rmmod of the replaced module',
      await outcome(lab.backend.unload(CMDLINE, 10_000)),
      'ok',
    );
    await lab.backend.setEnabled(CMDLINE_V2, false);
    t.check('the disable completes', await eventually(lab, gone(lab, CMDLINE_V2)), true);
    t.check(
      "the kernel's own code runs, not the replaced patch's",
      await lab.cmdlineOwner(),
      undefined,
    );
    await remove(lab, t, CMDLINE_V2);
  },
};

const interruptibleSignalled: Scenario = {
  name: 'interruptible-sleeper-signalled',
  title:
    'a kthread asleep interruptibly in the changed function switches only after the fake signal, about 15 s in',
  async run(lab, t) {
    t.check(
      'insmod of an ordinary module',
      await outcome(lab.backend.load(lab.module(SLEEPER))),
      'ok',
    );
    await load(lab, t, SIGNAL, 'insmod of the patch of the function the kthread sleeps in');
    const started = lab.now();
    await stalledTransition(lab, t, SIGNAL, true);
    t.check(
      'the kthread is the one blocking task',
      (await lab.backend.transitionTasks(SIGNAL, 10)).blocking.map((b) => b.comm),
      ['lpt_sleeper'],
    );
    const completed = await eventually(lab, settled(lab, SIGNAL), 30_000);
    const seconds = (lab.now() - started) / 1000;
    t.check(
      `the transition completes on its own between ${SIGNAL_WINDOW_S.from} and ${SIGNAL_WINDOW_S.to} s in`,
      completed && seconds >= SIGNAL_WINDOW_S.from && seconds <= SIGNAL_WINDOW_S.to
        ? 'in the window'
        : `${completed ? 'completed' : 'still in transition'} after ${seconds.toFixed(1)} s`,
      'in the window',
    );
    await lab.hold(false, 'lpt_sleeper');
    await remove(lab, t, SIGNAL);
    t.check(
      'rmmod of the ordinary module',
      await outcome(lab.backend.unload(SLEEPER, 10_000)),
      'ok',
    );
  },
};

const noPatchDirectory: Scenario = {
  name: 'livepatch-without-directory',
  title:
    'a livepatch=Y module whose init enables no patch: the agent unloads it again and fails it once, saying so',
  async run(lab, t) {
    const desired = [desiredEntry(NO_KLP, 'Enabled')];
    const now = lab.now();
    const first = await agentPass(lab, desired, EMPTY_MEMORY, now);
    t.check('the agent loads it', first.action?.kind, 'load');
    t.check(
      'the load fails as a refusal of the module, not to be retried',
      [first.failure?.reason, first.failure?.retryable],
      ['ModuleRejected', false],
    );
    t.check(
      'the message says no directory appeared, and that it was unloaded again',
      /created no \/sys\/kernel\/livepatch\/lpt_noklp: .*; it was unloaded again\./.test(
        first.failure?.message ?? '',
      ),
      true,
    );
    t.check('the module is gone', await lab.backend.isLoaded(NO_KLP), false);
    t.check('no directory', await lab.sysfsEntry(NO_KLP), undefined);
    const later = await agentPass(lab, desired, first.memory, now + REFUSAL_REST_MS + 1000);
    t.check(
      'after its rest the agent loads it no more: Failed for this generation',
      [later.action?.kind ?? null, later.decision.patches[0]?.phase],
      [null, 'Failed'],
    );
  },
};

const prePatchRefused: Scenario = {
  name: 'pre-patch-callback-refused',
  title:
    "a pre-patch callback that fails refuses the load (EINVAL); the agent's refusal quotes the kernel's line",
  async run(lab, t) {
    const pass = await agentPass(
      lab,
      [desiredEntry(PREPATCH_FAIL, 'Enabled')],
      EMPTY_MEMORY,
      lab.now(),
    );
    const message = pass.failure?.message ?? '';
    t.check('the agent loads it', pass.action?.kind, 'load');
    t.check(
      'a refusal, not to be retried',
      [pass.failure?.reason, pass.failure?.retryable],
      ['ModuleRefused', false],
    );
    t.check('insmod answers EINVAL', message.includes(': EINVAL: '), true);
    t.check(
      "the message names the patch's callback and quotes the kernel's line",
      /pre-patch callback refused to load it/.test(message) &&
        message.includes("livepatch: pre-patch callback failed for object 'vmlinux'"),
      true,
    );
    t.check('nothing loaded', await lab.backend.isLoaded(PREPATCH_FAIL), false);
    t.check('no directory', await lab.sysfsEntry(PREPATCH_FAIL), undefined);
    t.check("the kernel's own code runs", await lab.cmdlineOwner(), undefined);
  },
};

const stateIncompatible: Scenario = {
  name: 'klp-state-incompatible',
  title:
    "a replace patch that drops a loaded patch's klp_state, or has it at a lower version, is refused; the agent quotes the kernel",
  async run(lab, t) {
    await load(lab, t, STATE, 'insmod of a stacked patch declaring state 1 at version 2');
    t.check('it completes', await eventually(lab, settled(lab, STATE)), true);
    const refusals: [PatchName & TestModule, string][] = [
      [STATE_NONE, 'an atomic-replace patch without state 1'],
      [STATE_V1, 'an atomic-replace patch with state 1 at version 1'],
    ];
    for (const [name, what] of refusals) {
      const pass = await agentPass(lab, [desiredEntry(name, 'Enabled')], EMPTY_MEMORY, lab.now());
      const message = pass.failure?.message ?? '';
      t.check(
        `${what}: the agent's load is refused (EINVAL), not to be retried`,
        [
          pass.action?.kind,
          pass.failure?.reason,
          pass.failure?.retryable,
          message.includes(': EINVAL: '),
        ],
        ['load', 'ModuleRefused', false, true],
      );
      t.check(
        `${what}: the message quotes the kernel's line`,
        message.includes(
          `Livepatch patch (${name}) is not compatible with the already installed livepatches`,
        ),
        true,
      );
      t.check(`${what}: nothing loaded`, await lab.backend.isLoaded(name), false);
    }
    t.check(
      'the stacked patch is still the only one',
      (await lab.backend.patches()).map((p) => p.name),
      [STATE],
    );
    await load(
      lab,
      t,
      STATE_V2,
      'insmod of an atomic-replace patch with state 1 at the same version',
    );
    t.check('it completes', await eventually(lab, settled(lab, STATE_V2)), true);
    t.check('it replaced the stacked patch', await eventually(lab, gone(lab, STATE)), true);
    await remove(lab, t, STATE_V2);
    await remove(lab, t, STATE);
  },
};

const prePatchTimeout: Scenario = {
  name: 'pre-patch-callback-timeout',
  title:
    "an insmod whose pre-patch callback blocks is given up after the agent's timeout (ETIMEDOUT), said plainly; the kernel finishes it later",
  async run(lab, t) {
    await lab.hold(true);
    const timed = lab.timedBackend(SHORT_TOOL_TIMEOUT_MS);
    const desired = [desiredEntry(PREPATCH_WAIT, 'Enabled')];
    const pass = await agentPass(lab, desired, EMPTY_MEMORY, lab.now(), timed);
    const message = pass.failure?.message ?? '';
    t.check('the agent loads it', pass.action?.kind, 'load');
    t.check(
      'it stops waiting: a refusal, not to be retried',
      [pass.failure?.reason, pass.failure?.retryable],
      ['ModuleRefused', false],
    );
    t.check(
      'the message says insmod did not return in time and the init is blocked',
      message.includes(
        `ETIMEDOUT: insmod did not return within ${SHORT_TOOL_TIMEOUT_MS / 1000}s: the module's init or exit is blocked in the kernel`,
      ),
      true,
    );
    t.check(
      'while the callback sleeps the directory shows the transition begun, the patch not enabled',
      entryText(await lab.sysfsEntry(PREPATCH_WAIT)),
      'enabled=0 transition=1',
    );
    t.check('the module is loaded, in its init', await lab.backend.isLoaded(PREPATCH_WAIT), true);
    await lab.hold(false);
    t.check(
      'released, the init finishes: enabled, and its transition completes',
      await eventually(
        lab,
        async () => entryText(await lab.sysfsEntry(PREPATCH_WAIT)) === 'enabled=1 transition=0',
      ),
      true,
    );
    await remove(lab, t, PREPATCH_WAIT);
  },
};

const vermagic: Scenario = {
  name: 'vermagic-refusal',
  title: 'a livepatch built for the other kernel is refused with ENOEXEC and leaves nothing',
  async run(lab, t) {
    const refused = await refusalLog(lab.backend.load(lab.module(CMDLINE, 'other')));
    t.check('insmod of a build for another release', refused.errno, 'ENOEXEC');
    t.check(
      'the kernel log names the mismatch: module_layout before 6.4, struct module size from 6.4',
      refused.log.some((l) => l === foreignBuildLogLine(lab.profile, CMDLINE)),
      true,
    );
    t.check('nothing loaded', await lab.backend.isLoaded(CMDLINE), false);
    t.check('no directory', await lab.sysfsEntry(CMDLINE), undefined);
  },
};

const forceEnable: Scenario = {
  name: 'force-enable',
  title:
    'forcing a stalled enable completes it; from 5.18 its module and the other patches stay removable, before every patch is pinned',
  async run(lab, t) {
    await load(lab, t, CMDLINE_V2, 'insmod of a patch of another function');
    t.check('it completes', await eventually(lab, settled(lab, CMDLINE_V2)), true);
    await lab.hold(true);
    await load(lab, t, STALL, 'insmod of the stalling patch');
    await stalledTransition(lab, t, STALL, true);
    t.check('force during the transition', await outcome(lab.backend.force(STALL)), 'ok');
    t.check('the transition completes', await eventually(lab, settled(lab, STALL)), true);
    t.check(
      'the patch is enabled',
      entryText(await lab.sysfsEntry(STALL)),
      'enabled=1 transition=0',
    );
    await lab.backend.setEnabled(STALL, false);
    t.check('the disable completes', await eventually(lab, gone(lab, STALL)), true);
    const freed = await eventually(lab, released(lab, STALL), 5000);
    t.check(
      'the reference drops only when force did not mark it',
      freed,
      lab.profile.forceMarksOnlyRemoved,
    );
    if (freed) t.check('rmmod', await outcome(lab.backend.unload(STALL, 10_000)), 'ok');
    await lab.backend.setEnabled(CMDLINE_V2, false);
    t.check('the other patch disables', await eventually(lab, gone(lab, CMDLINE_V2)), true);
    const otherFreed = await eventually(lab, released(lab, CMDLINE_V2), 5000);
    t.check(
      'before 5.18 the force marked the patch not in transition too: its reference never drops',
      otherFreed,
      lab.profile.forceMarksOnlyRemoved,
    );
    if (otherFreed)
      t.check(
        'rmmod of the other patch',
        await outcome(lab.backend.unload(CMDLINE_V2, 10_000)),
        'ok',
      );
  },
};

const forceDisable: Scenario = {
  name: 'force-disable-pinned',
  title: 'forcing a stalled disable completes it and pins the module forever',
  async run(lab, t) {
    // Before 5.18 the forced enable pinned lpt_stall's module: its twin stands in.
    const stall = lab.profile.forceMarksOnlyRemoved ? STALL : STALL_TWIN;
    await lab.hold(false);
    await load(lab, t, stall, 'insmod while the kthread is elsewhere');
    t.check('the transition completes', await eventually(lab, settled(lab, stall)), true);
    await lab.hold(true);
    t.check('enabled=0', await outcome(lab.backend.setEnabled(stall, false)), 'ok');
    await stalledTransition(lab, t, stall, false);
    t.check('force during the disable', await outcome(lab.backend.force(stall)), 'ok');
    t.check('the disable completes', await eventually(lab, gone(lab, stall)), true);
    t.check('the reference never drops', await sampled(lab, () => lab.refcnt(stall)), [1]);
    t.check('rmmod of a forced module', await outcome(lab.backend.unload(stall, 2000)), 'EBUSY');
  },
};

const pinned = (pass: AgentPass, name: string): boolean =>
  pass.decision.patches.find((p) => p.patchName === name)?.pinned === true;

const forcePinsListed: Scenario = {
  name: 'force-pins-listed-only',
  title:
    'a forced transition pins only patches with a directory: a disabled module still loaded stays removable, before 5.18 too; the agent marks the same',
  async run(lab, t) {
    await load(lab, t, CMDLINE, 'insmod of patch A');
    t.check('it completes', await eventually(lab, settled(lab, CMDLINE)), true);
    t.check('disable A', await outcome(lab.backend.setEnabled(CMDLINE, false)), 'ok');
    t.check("A's directory goes", await eventually(lab, gone(lab, CMDLINE)), true);
    t.check(
      "A's module stays, its reference drops",
      await eventually(lab, released(lab, CMDLINE)),
      true,
    );
    // The kthread sleeps in the forced-off patch's copy of the function: it leaves it and
    // goes back to sleep in the kernel's own, which B replaces.
    await lab.hold(false);
    await lab.sleep(1000);
    await lab.hold(true);
    await load(lab, t, STALL_FORCE, 'insmod of patch B, of the function the kthread sleeps in');
    await stalledTransition(lab, t, STALL_FORCE, true);
    // The agent forces only a reversal that stalled too, and one kthread cannot stall
    // both ways: it is handed the memory of a disable of B it reversed, which leaves
    // the kernel as it is now (enabled=1 transition=1).
    const b = desiredEntry(STALL_FORCE, 'Disabled', { stallTimeout: '20s', allowForce: true });
    const desired = [desiredEntry(CMDLINE, 'Disabled'), b];
    const now = lab.now();
    const memory: PassMemory = {
      ...EMPTY_MEMORY,
      previous: [
        {
          livePatch: b.livePatch,
          patchName: STALL_FORCE,
          phase: 'Reversing',
          observedGeneration: 1,
          enabled: true,
          transition: true,
          transitionStartTime: new Date(now - 60_000).toISOString(),
        },
      ],
    };
    const forced = await agentPass(lab, desired, memory, now);
    t.check(
      'the agent forces B',
      [forced.action?.kind, forced.action?.patchName, forced.failure ?? null],
      ['force', STALL_FORCE, null],
    );
    t.check(
      'the agent marks B pinned before 5.18 only',
      pinned(forced, STALL_FORCE),
      !lab.profile.forceMarksOnlyRemoved,
    );
    t.check(
      'the agent does not mark A pinned: it has no directory',
      pinned(forced, CMDLINE),
      false,
    );
    t.check(
      'the forced transition completes',
      await eventually(lab, settled(lab, STALL_FORCE)),
      true,
    );
    const next = await agentPass(lab, desired, forced.memory, now + 1000);
    t.check(
      'the agent then unloads A, and rmmod succeeds',
      [next.action?.kind, next.action?.patchName, next.failure?.message ?? null],
      ['unload', CMDLINE, null],
    );
    t.check('A is gone', await lab.backend.isLoaded(CMDLINE), false);
    await lab.backend.setEnabled(STALL_FORCE, false);
    t.check('B disables', await eventually(lab, gone(lab, STALL_FORCE)), true);
    const freed = await eventually(lab, released(lab, STALL_FORCE), 5000);
    t.check(
      "B's reference drops exactly when the agent did not mark it pinned",
      freed,
      !pinned(forced, STALL_FORCE),
    );
    if (freed) t.check('rmmod B', await outcome(lab.backend.unload(STALL_FORCE, 10_000)), 'ok');
  },
};

const signatures: Scenario = {
  name: 'lockdown-and-signatures',
  title: 'lockdown refuses unsigned modules with EPERM; enforced signatures with EKEYREJECTED',
  async run(lab, t) {
    await lab.lockDown();
    const locked = await refusalLog(lab.backend.load(lab.module(CMDLINE)));
    t.check('insmod of an unsigned module under lockdown', locked.errno, 'EPERM');
    t.check(
      'the kernel log names lockdown',
      locked.log.some((l) => /lockdown/i.test(l)),
      true,
    );
    await lab.enforceSignatures();
    t.check(
      'insmod of an unsigned module with module.sig_enforce',
      await outcome(lab.backend.load(lab.module(CMDLINE))),
      'EKEYREJECTED',
    );
    t.check('nothing loaded', await lab.backend.isLoaded(CMDLINE), false);
  },
};

export const CONFORMANCE_SCENARIOS: readonly Scenario[] = [
  loadTransitionPatched,
  sameValue,
  forceOutside,
  disableUnload,
  unloadNotLoaded,
  stallReversed,
  busyRetried,
  upperCaseName,
  ftraceOff,
  reverseDisable,
  atomicReplace,
  interruptibleSignalled,
  noPatchDirectory,
  prePatchRefused,
  stateIncompatible,
  prePatchTimeout,
  vermagic,
  forceEnable,
  forceDisable,
  forcePinsListed,
  signatures,
];

export interface ScenarioResult {
  readonly scenario: string;
  readonly title: string;
  readonly passed: boolean;
  readonly durationMs: number;
  readonly steps: Trace['steps'];
  readonly error?: string;
}

/** Runs every scenario in order; a scenario that throws is recorded as failed and the next one still runs. */
export async function runScenarios(lab: Lab, now: () => number): Promise<ScenarioResult[]> {
  const results: ScenarioResult[] = [];
  for (const s of CONFORMANCE_SCENARIOS) {
    const t = new Trace();
    const start = now();
    let error: string | undefined;
    try {
      await s.run(lab, t);
    } catch (err) {
      error = err instanceof Error ? (err.stack ?? err.message) : String(err);
    }
    results.push({
      scenario: s.name,
      title: s.title,
      passed: error === undefined && t.ok,
      durationMs: now() - start,
      steps: t.steps,
      ...(error ? { error } : {}),
    });
  }
  return results;
}
