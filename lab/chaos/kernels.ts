// Each simulated node's kernel, read from its own file (which its agent
// writes before it acts on any change) and brought up to now: a transition
// keeps going while no agent runs, so the file alone is the past.
import { readSimKernelFile } from '../../agent/kernel/sim/sim-state-file.js';
import { SimulatedKernel } from '../../agent/kernel/sim/simulator.js';
import { kernelRelease } from '../../src/api/names.js';
import { systemClock } from '../../src/clock.js';
import { readingOf, type KernelReading } from './evidence.js';

export async function readKernel(
  node: string,
  file: string,
  release: string,
): Promise<KernelReading> {
  const r = kernelRelease(release);
  const read = await readSimKernelFile(file, r);
  if (read.kind === 'ignored')
    throw new Error(`node ${node}: cannot read its kernel ${file}: ${read.why}`);
  if (read.kind === 'none') return { node, loads: {}, patches: [], modules: [], timeline: [] };
  // No onChange: reading the kernel must not write it.
  const kernel = new SimulatedKernel({ release: r, clock: systemClock, state: read.state });
  await kernel.patches();
  return readingOf(node, kernel.state());
}
