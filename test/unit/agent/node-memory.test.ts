// Where an agent takes up its past, and the Events it writes: an agent
// restarted during an outage starts from the node's file; without one, from its
// last report once the API answers; and a repeated refusal is announced once.
import { describe, expect, test } from '@jest/globals';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Announcer } from '../../../agent/report/announcer.js';
import { NodeMemory } from '../../../agent/memory/node-memory.js';
import { NodeStateFile } from '../../../agent/memory/node-state.js';
import type {
  DesiredPatch,
  LivePatchNode,
  ObservedPatch,
} from '../../../src/api/generated/types.js';
import { API_VERSION } from '../../../src/api/constants.js';
import { nodeName } from '../../../src/api/names.js';
import type { KubeConfig } from '../../../src/kube/config.js';
import type { EventRecord, EventTarget } from '../../../src/kube/events.js';
import { createLogger } from '../../../src/log.js';

const log = createLogger({ component: 'test', format: 'text', level: 'error' });
const NODE = nodeName('node-a');

const desired = [
  {
    livePatch: 'lp-a',
    patchName: 'livepatch_a',
    state: 'Enabled',
    module: { hostPath: '/var/lib/a.ko', sha256: 'a'.repeat(64) },
    generation: 2,
    stallTimeout: '45s',
  },
] as DesiredPatch[];
const transitioning = {
  livePatch: 'lp-a',
  patchName: 'livepatch_a',
  phase: 'Transitioning',
  observedGeneration: 2,
  transitionStartTime: '2026-01-01T00:00:00.000Z',
} as ObservedPatch;
const failed = { ...transitioning, livePatch: 'lp-b', phase: 'Failed' } as ObservedPatch;

/** A reflector that has (or has not yet) heard from the API server. */
function reflector(node: LivePatchNode | undefined, synced: boolean) {
  let answer: () => void = () => undefined;
  const sync = new Promise<void>((resolve) => (answer = resolve));
  if (synced) answer();
  const r = {
    hasSynced: synced,
    get: (name: string) => (node && name === NODE ? node : undefined),
    waitForSync: () => sync,
    answer: () => {
      r.hasSynced = true;
      answer();
    },
  };
  return r;
}

const lpn = (patches: ObservedPatch[], spec: DesiredPatch[] = desired): LivePatchNode => ({
  apiVersion: API_VERSION,
  kind: 'LivePatchNode',
  metadata: { name: NODE },
  spec: { patches: spec },
  status: { patches },
});

async function stateFile(): Promise<NodeStateFile> {
  const dir = await mkdtemp(join(tmpdir(), 'node-memory-'));
  return new NodeStateFile(join(dir, 'agent-state.json'), NODE, log);
}

function memory(r: ReturnType<typeof reflector>, state?: NodeStateFile): NodeMemory {
  return new NodeMemory({
    nodeName: NODE,
    // Never used: each test's node exists, or the API never answers.
    kubeConfig: {} as KubeConfig,
    log,
    reflector: r,
    startSyncWaitMs: 20,
    ...(state ? { state } : {}),
  });
}

describe("the agent's memory of its node", () => {
  test('restarted during an outage: resumes what the node saved, asked-for patches and all, Failed ones retried', async () => {
    const state = await stateFile();
    await state.save(desired, [transitioning, failed]);
    const offline = reflector(undefined, false);
    const m = memory(offline, state);
    expect(await m.resume()).toEqual([transitioning]);
    expect(m.desired()).toEqual(desired);
  });

  test('without saved state: adopts what the node last reported, once the API answers', async () => {
    const online = reflector(lpn([transitioning, failed]), true);
    const m = memory(online, await stateFile());
    expect(await m.resume()).toBeUndefined();
    expect(await m.adoptReported(() => undefined)).toEqual([transitioning]);
  });

  test('without saved state and without the API: guards nothing, adopts the report when it comes, and saves nothing before', async () => {
    const offline = reflector(lpn([transitioning]), false);
    const state = await stateFile();
    const m = memory(offline, state);
    let late: ObservedPatch[] | undefined;
    expect(await m.adoptReported((p) => (late = p))).toEqual([]);
    await m.save([], []);
    expect(await state.load()).toBeUndefined();
    offline.answer();
    await offline.waitForSync();
    await Promise.resolve();
    expect(late).toEqual([transitioning]);
    await m.save(desired, [transitioning]);
    expect((await state.load())?.patches).toEqual([transitioning]);
  });

  test('once the API answered, the desired patches are its own, not the saved ones', async () => {
    const state = await stateFile();
    await state.save(desired, [transitioning]);
    const online = reflector(lpn([], []), true);
    const m = memory(online, state);
    await m.resume();
    expect(m.desired()).toEqual([]);
  });
});

describe('the announcer', () => {
  test('a refusal repeated on every retry is one Event; a new message, or a stall, is another', async () => {
    const recorded: [EventTarget, EventRecord][] = [];
    const a = new Announcer(
      {
        record: (target, event) => {
          recorded.push([target, event]);
          return Promise.resolve();
        },
      },
      NODE,
    );
    const refusal = { livePatch: 'lp-a', reason: 'ModuleRefused', message: 'unsigned', once: true };
    a.announce([refusal]);
    a.announce([refusal]);
    a.announce([{ ...refusal, message: 'wrong kernel' }]);
    const stall = { livePatch: 'lp-a', reason: 'NodeStalled', message: 'stalled', once: false };
    a.announce([stall, stall]);
    await a.drain();
    expect(recorded.map(([, e]) => [e.reason, e.message])).toEqual([
      ['ModuleRefused', 'node node-a: unsigned'],
      ['ModuleRefused', 'node node-a: wrong kernel'],
      ['NodeStalled', 'node node-a: stalled'],
      ['NodeStalled', 'node node-a: stalled'],
    ]);
    expect(recorded[0]?.[0]).toMatchObject({ kind: 'LivePatch', name: 'lp-a' });
  });
});
