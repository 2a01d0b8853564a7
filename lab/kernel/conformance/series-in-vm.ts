// Runs one phase of the series reboot scenario (series-reboot.ts) inside a
// VM, against the real kernel through the sysfs backend. The agent's memory
// (what it last reported) stays in the job folder across the reboot, as the
// agent's --state-dir does on a node's disk.
import { readFile, writeFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { kernelProfile } from '../../../agent/kernel/profile.js';
import { SysfsKernel } from '../../../agent/kernel/sysfs.js';
import type { ObservedPatch } from '../../../src/api/generated/types.js';
import { ARRIVAL_ORDERS, runRebootPhase, type ArrivalOrder } from './series-reboot.js';
import { VmLab } from './vm-lab.js';

const { values } = parseArgs({
  options: {
    modules: { type: 'string' },
    order: { type: 'string' },
    phase: { type: 'string' },
    memory: { type: 'string' },
    out: { type: 'string' },
  },
});
const { modules, order, phase, memory, out } = values;
const orders: readonly string[] = ARRIVAL_ORDERS;
if (!modules || !order || !orders.includes(order) || !memory || !out)
  throw new Error(
    `usage: series-in-vm --modules DIR --order ${ARRIVAL_ORDERS.join('|')} --phase arrival|rebooted --memory FILE --out FILE`,
  );
if (phase !== 'arrival' && phase !== 'rebooted') throw new Error('--phase is arrival or rebooted');

const backend = new SysfsKernel();
const release = await backend.release();
const lab = new VmLab({
  backend,
  profile: kernelProfile(release),
  modules: { own: modules, other: modules },
});
const remembered =
  phase === 'rebooted' ? (JSON.parse(await readFile(memory, 'utf8')) as ObservedPatch[]) : [];
const outcome = await runRebootPhase(lab, order as ArrivalOrder, phase, remembered);
await writeFile(memory, JSON.stringify(outcome.reported, null, 2) + '\n');
await writeFile(out, JSON.stringify({ release, result: outcome.result }, null, 2) + '\n');
process.stdout.write(`${outcome.result.passed ? 'PASS' : 'FAIL'} ${outcome.result.scenario}\n`);
