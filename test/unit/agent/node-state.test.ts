// The agent's node-local memory: what an agent restarted during an API outage
// starts from.
import { describe, expect, test } from '@jest/globals';
import { mkdtemp, readFile, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { NodeStateFile } from '../../../agent/memory/node-state.js';
import type { DesiredPatch, ObservedPatch } from '../../../src/api/generated/types.js';
import { nodeName } from '../../../src/api/names.js';
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
const patches = [
  {
    livePatch: 'lp-a',
    patchName: 'livepatch_a',
    phase: 'Transitioning',
    observedGeneration: 2,
    transitionStartTime: '2026-01-01T00:00:00.000Z',
  },
] as ObservedPatch[];

async function file(): Promise<string> {
  return join(await mkdtemp(join(tmpdir(), 'node-state-')), 'state', 'agent-state.json');
}

describe('the node-local state', () => {
  test('what was saved comes back, with the Node facts, to a new agent on the same node', async () => {
    const path = await file();
    const first = new NodeStateFile(path, NODE, log);
    first.facts = { kernelVersion: '6.1.0-26-amd64', providerID: 'aws:///i-1' };
    await first.save(desired, patches);
    expect((await stat(path)).mode & 0o777).toBe(0o600);
    const loaded = await new NodeStateFile(path, NODE, log).load();
    expect(loaded).toEqual({
      node: NODE,
      facts: { kernelVersion: '6.1.0-26-amd64', providerID: 'aws:///i-1' },
      desired,
      patches,
    });
  });

  test('nothing to start from: no file, a file of another node, a file that is not JSON', async () => {
    const path = await file();
    expect(await new NodeStateFile(path, NODE, log).load()).toBeUndefined();
    await new NodeStateFile(path, nodeName('node-b'), log).save(desired, patches);
    expect(await new NodeStateFile(path, NODE, log).load()).toBeUndefined();
    await writeFile(path, '{"version": 1, "node": "node-a", ');
    expect(await new NodeStateFile(path, NODE, log).load()).toBeUndefined();
  });

  test('a save that cannot be written does not throw: the guard goes on', async () => {
    const blocker = await file();
    await writeFile(join(blocker, '..', '..', 'plain-file'), 'x');
    const state = new NodeStateFile(
      join(blocker, '..', '..', 'plain-file', 'agent-state.json'),
      NODE,
      log,
    );
    await expect(state.save(desired, patches)).resolves.toBeUndefined();
  });

  test('an unchanged state is not written again', async () => {
    const path = await file();
    const state = new NodeStateFile(path, NODE, log);
    await state.save(desired, patches);
    await writeFile(path, 'overwritten by someone');
    await state.save(desired, patches);
    expect(await readFile(path, 'utf8')).toBe('overwritten by someone');
  });
});
