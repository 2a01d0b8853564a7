// The series reboot scenario on the simulator, configured as each pinned
// kernel line (and 5.10): the builds arrive in either order, the node
// reboots into the same kernel (a fresh simulated kernel) with the agent's
// memory, and only the newest build ends enabled. test/kernel/series-reboot.test.ts
// runs the same phases on the real kernels and holds the simulator to them.
import { describe, expect, test } from '@jest/globals';
import { ARRIVAL_ORDERS, runRebootPhase } from '../../../lab/kernel/conformance/series-reboot.js';
import { SimLab } from '../../../lab/kernel/conformance/sim-lab.js';
import { KERNEL_LINES } from '../../../lab/kernel/kernels.js';

const releases = [...new Set(['5.10.0-35-amd64', ...KERNEL_LINES.map((l) => l.release)])];

describe.each(releases)('simulated %s', (release) => {
  test.each(ARRIVAL_ORDERS)(
    'builds arriving %s, then a reboot: only the newest ends enabled',
    async (order) => {
      const before = await SimLab.create(release, release);
      const arrival = await runRebootPhase(before, order, 'arrival');
      expect({
        error: arrival.result.error,
        broken: arrival.result.steps.filter((s) => !s.ok),
      }).toEqual({
        error: undefined,
        broken: [],
      });
      const after = await SimLab.create(release, release);
      const rebooted = await runRebootPhase(after, order, 'rebooted', arrival.reported);
      expect({
        error: rebooted.result.error,
        broken: rebooted.result.steps.filter((s) => !s.ok),
      }).toEqual({
        error: undefined,
        broken: [],
      });
      expect(rebooted.result.steps.map((s) => s.rule)).toContain(
        'the newest build of the series runs',
      );
    },
  );
});
