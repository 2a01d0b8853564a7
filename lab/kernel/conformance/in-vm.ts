// Runs the conformance scenarios inside a VM, against the real kernel through
// the sysfs backend, and writes what it saw as JSON for the host to compare.
// Started by the VM's init (lab/kernel/vm.ts) from the host's own files.
import { writeFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { kernelProfile } from '../../../agent/kernel/profile.js';
import { SysfsKernel } from '../../../agent/kernel/sysfs.js';
import { runScenarios } from './scenarios.js';
import { VmLab } from './vm-lab.js';

const { values } = parseArgs({
  options: {
    'modules-own': { type: 'string' },
    'modules-other': { type: 'string' },
    out: { type: 'string' },
  },
});
const own = values['modules-own'];
const other = values['modules-other'];
const out = values.out;
if (!own || !other || !out)
  throw new Error('usage: in-vm --modules-own DIR --modules-other DIR --out FILE');

const backend = new SysfsKernel();
const release = await backend.release();
const lab = new VmLab({ backend, profile: kernelProfile(release), modules: { own, other } });
const results = await runScenarios(lab, () => Date.now());
await writeFile(out, JSON.stringify({ release, results }, null, 2) + '\n');
for (const r of results)
  process.stdout.write(`${r.passed ? 'PASS' : 'FAIL'} ${r.scenario} ${r.durationMs} ms\n`);
