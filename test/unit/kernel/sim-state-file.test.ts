// The simulated kernel kept in a file: what an agent restarted after SIGKILL
// finds, and every file it must not trust.
import { describe, expect, test } from '@jest/globals';
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { kernelRelease, patchName } from '../../../src/api/names.js';
import { ManualClock } from '../../../src/clock.js';
import { DEFAULT_SIM_KNOBS } from '../../../agent/kernel/sim/sim-knobs.js';
import { buildSimModule, serializeSimModule } from '../../../agent/kernel/sim/sim-module.js';
import {
  parseSimKernelFile,
  readSimKernelFile,
  simKernelWriter,
} from '../../../agent/kernel/sim/sim-state-file.js';
import { SimulatedKernel } from '../../../agent/kernel/sim/simulator.js';

const RELEASE = kernelRelease('6.1.0-26-amd64');
const A = patchName('livepatch_a');

async function kernelIn(dir: string, clock: ManualClock): Promise<SimulatedKernel> {
  const file = join(dir, 'sim-kernel.json');
  const read = await readSimKernelFile(file, RELEASE);
  return new SimulatedKernel({
    release: RELEASE,
    clock,
    knobs: () => ({ ...DEFAULT_SIM_KNOBS, transitionSeconds: 4 }),
    ...(read.kind === 'restored' ? { state: read.state } : {}),
    onChange: simKernelWriter(file, RELEASE),
  });
}

describe('a simulated kernel kept in a file', () => {
  test('an agent restarted onto it finds the transition gone on while no agent ran', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'sim-kernel-file-'));
    const module = join(dir, 'a.ko');
    await writeFile(module, serializeSimModule(buildSimModule({ name: A, kernel: RELEASE })));
    const clock = new ManualClock();
    const first = await kernelIn(dir, clock);
    await first.load(module);
    expect((await first.patches())[0]?.transition).toBe(true);
    // The agent is killed here; the kernel's transition keeps going for 10 s.
    clock.advance(10_000);
    const second = await kernelIn(dir, clock);
    expect(await second.patches()).toEqual([
      expect.objectContaining({ name: A, enabled: true, transition: false }),
    ]);
    expect(second.state().loads).toEqual({ [A]: 1 });
    // The end of the transition is itself written down, before anyone loads again.
    const onDisk = parseSimKernelFile(
      await readFile(join(dir, 'sim-kernel.json'), 'utf8'),
      RELEASE,
    );
    expect(onDisk.kind === 'restored' && onDisk.state.transition).toBeFalsy();
    await expect(second.load(module)).rejects.toMatchObject({ errno: 'EEXIST' });
  });

  test("the kernel keeps its own timeline across agents: insmod, the transition's end at the tick it ended, disable, rmmod", async () => {
    const dir = await mkdtemp(join(tmpdir(), 'sim-kernel-file-'));
    const module = join(dir, 'a.ko');
    await writeFile(module, serializeSimModule(buildSimModule({ name: A, kernel: RELEASE })));
    const clock = new ManualClock();
    const loadedAt = clock.now();
    await (await kernelIn(dir, clock)).load(module);
    // No agent for 30 s: the transition (about 4 s) ends meanwhile, when nobody looks.
    clock.advance(30_000);
    const second = await kernelIn(dir, clock);
    await second.setEnabled(A, false);
    clock.advance(30_000);
    await second.unload(A, 1000);
    const onDisk = parseSimKernelFile(
      await readFile(join(dir, 'sim-kernel.json'), 'utf8'),
      RELEASE,
    );
    const timeline = onDisk.kind === 'restored' ? onDisk.state.timeline : undefined;
    expect(timeline?.map((e) => e.event)).toEqual([
      'insmod',
      'settled',
      'disable',
      'settled',
      'rmmod',
    ]);
    expect(timeline?.[0]?.at).toBe(loadedAt);
    // Ended by the kernel's clock, seconds after the insmod, not when the next agent looked.
    expect(timeline?.[1]?.at).toBeGreaterThan(loadedAt);
    expect(timeline?.[1]?.at).toBeLessThan(loadedAt + 10_000);
    expect(timeline?.[2]?.at).toBe(loadedAt + 30_000);
  });

  test('no file: a fresh boot', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'sim-kernel-file-'));
    expect(await readSimKernelFile(join(dir, 'missing.json'), RELEASE)).toEqual({ kind: 'none' });
  });

  const valid = {
    taint: 0,
    signaturesEnforced: false,
    lockedDown: false,
    loaded: [],
    modules: [],
    loads: {},
    sleepers: [],
  };
  test.each([
    ['not JSON', '{"version":1,', /not JSON/],
    [
      'another version',
      JSON.stringify({ version: 2, release: RELEASE, kernel: valid }),
      /version 1/,
    ],
    [
      'another kernel release (a reboot into it)',
      JSON.stringify({ version: 1, release: '6.8.0-45-generic', kernel: valid }),
      /6\.8\.0-45-generic's, this node runs 6\.1\.0-26-amd64/,
    ],
    ['no kernel', JSON.stringify({ version: 1, release: RELEASE }), /no kernel object/],
    [
      'loads that are not counts',
      JSON.stringify({ version: 1, release: RELEASE, kernel: { ...valid, loads: { a: 'x' } } }),
      /loads/,
    ],
    [
      'a list that is not one',
      JSON.stringify({ version: 1, release: RELEASE, kernel: { ...valid, modules: {} } }),
      /modules is not a list/,
    ],
    [
      'a transition that is not an object',
      JSON.stringify({ version: 1, release: RELEASE, kernel: { ...valid, transition: 3 } }),
      /transition/,
    ],
  ])('%s is ignored, with the reason', (_, text, why) => {
    const read = parseSimKernelFile(text, RELEASE);
    expect(read.kind).toBe('ignored');
    expect(read.kind === 'ignored' && read.why).toMatch(why);
  });

  test('a valid file is restored', () => {
    const read = parseSimKernelFile(
      JSON.stringify({ version: 1, release: RELEASE, kernel: valid }),
      RELEASE,
    );
    expect(read).toEqual({ kind: 'restored', state: valid });
  });
});
