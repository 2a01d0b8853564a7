// A simulated node's kernel kept in a file, so that it outlives its agent
// process as a real kernel does: a SIGKILLed agent restarts onto the same
// patches, transitions and load counts. Written synchronously and atomically
// (temporary file, then rename) before the kernel answers the change, so an
// agent never acts on a change its kernel would forget. Time keeps going while
// no agent runs: the simulator's transitions run on the wall clock, so a
// restored kernel catches up on every retry tick it missed.
import { readFile } from 'node:fs/promises';
import { mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import type { KernelRelease } from '../../../src/api/names.js';
import type { SimKernelState } from './simulator.js';

/** Its name in the agent's --state-dir. */
export const SIM_KERNEL_FILE = 'sim-kernel.json';

const VERSION = 1;

/** What a kernel file holds: the kernel's state, and the release it belongs to (another release is another boot). */
interface SimKernelFile {
  readonly version: number;
  readonly release: string;
  readonly kernel: SimKernelState;
}

export type SimKernelRead =
  | { readonly kind: 'none' }
  | { readonly kind: 'restored'; readonly state: SimKernelState }
  | { readonly kind: 'ignored'; readonly why: string };

const isRecord = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

/** Why a parsed kernel state is not one this simulator can restore, or undefined when it is. */
function shapeProblem(kernel: unknown): string | undefined {
  if (!isRecord(kernel)) return 'no kernel object';
  if (typeof kernel['taint'] !== 'number') return 'taint is not a number';
  for (const key of ['loaded', 'modules', 'sleepers'])
    if (!Array.isArray(kernel[key])) return `${key} is not a list`;
  const loads = kernel['loads'];
  if (!isRecord(loads) || !Object.values(loads).every((n) => Number.isInteger(n)))
    return 'loads is not a map of counts';
  if (kernel['timeline'] !== undefined && !Array.isArray(kernel['timeline']))
    return 'timeline is not a list';
  if (kernel['transition'] !== undefined && !isRecord(kernel['transition']))
    return 'transition is not an object';
  return undefined;
}

/** The kernel a file describes, for this release; anything unreadable is a fresh boot, with the reason. */
export function parseSimKernelFile(text: string, release: KernelRelease): SimKernelRead {
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (err) {
    return { kind: 'ignored', why: `not JSON (${(err as Error).message})` };
  }
  if (!isRecord(data) || data['version'] !== VERSION)
    return { kind: 'ignored', why: `not a version ${VERSION} kernel file` };
  if (data['release'] !== release)
    return {
      kind: 'ignored',
      why: `it is kernel ${String(data['release'])}'s, this node runs ${release} (a reboot)`,
    };
  const problem = shapeProblem(data['kernel']);
  if (problem) return { kind: 'ignored', why: problem };
  return { kind: 'restored', state: (data as unknown as SimKernelFile).kernel };
}

export async function readSimKernelFile(
  path: string,
  release: KernelRelease,
): Promise<SimKernelRead> {
  try {
    return parseSimKernelFile(await readFile(path, 'utf8'), release);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { kind: 'none' };
    return { kind: 'ignored', why: (err as Error).message };
  }
}

/** The simulator's onChange: the whole kernel to `path`, atomically, before the change is answered. */
export function simKernelWriter(
  path: string,
  release: KernelRelease,
): (state: SimKernelState) => void {
  mkdirSync(dirname(path), { recursive: true });
  const tmp = `${path}.tmp-${process.pid}`;
  return (kernel) => {
    const file: SimKernelFile = { version: VERSION, release, kernel };
    writeFileSync(tmp, JSON.stringify(file));
    renameSync(tmp, path);
  };
}
