// `kubectl livepatch` as an operator uses it while a rollout runs: the live
// status of one LivePatch, and every node with every patch on it.
import { describe, expect, test } from '@jest/globals';
import { kubectlOk, kubectlWatch } from '../support/kubectl.js';
import { applyLivePatch } from '../support/livepatches.js';
import { useOwnCluster } from '../support/own-cluster.js';
import { waitUntil } from '../../lab/wait.js';

const KERNEL = '6.1.0-26-amd64';
const cluster = useOwnCluster({
  nodes: 4,
  kernels: [KERNEL, '5.15.0-1-generic'],
  prefix: 'plugin',
});

describe('kubectl livepatch', () => {
  test('status -w follows a rollout by watch, one line per change, to Complete', async () => {
    await cluster().startController('plugin-controller');
    // Slow transitions, so the watch sees the rollout on its way.
    await kubectlOk([
      'annotate',
      'nodes',
      '--all',
      '--overwrite',
      'sim.livepatch.io/transition-seconds=3',
    ]);
    await applyLivePatch('watched', { kernel: KERNEL, spec: { rollout: { maxUnavailable: 1 } } });
    const watch = kubectlWatch(['livepatch', 'status', 'watched', '-w']);
    try {
      await waitUntil(
        'the watch to print Complete',
        () => Promise.resolve(watch.output()),
        (o) => /Complete\s+patched 2\/2/.test(o),
      );
    } finally {
      await watch.stop();
    }
    const lines = watch.output().trim().split('\n');
    const patched = lines.map((l) => Number(/patched (\d+)\//.exec(l)?.[1] ?? -1));
    expect(patched.every((n, i) => i === 0 || n >= (patched[i - 1] ?? 0))).toBe(true);
    expect(lines.some((l) => /Progressing\s+patched 1\/2\s+/.test(l))).toBe(true);
    expect(lines.at(-1)).toMatch(
      /^\d\d:\d\d:\d\d\s+watched\s+Complete\s+patched 2\/2\s+in flight 0\s+not applicable 2/,
    );
  });

  test('status -w names a LivePatch that does not exist', async () => {
    const watch = kubectlWatch(['livepatch', 'status', 'no-such-patch', '-w']);
    await waitUntil(
      'an answer',
      () => Promise.resolve(watch.output()),
      (o) => o.length > 0,
    );
    await watch.stop();
    expect(watch.output()).toContain('livepatch no-such-patch not found');
  });

  test('nodes: every node, every patch on it, one line each', async () => {
    const out = await kubectlOk(['livepatch', 'nodes']);
    const rows = out.trim().split('\n');
    expect(rows[0]).toMatch(/^NODE\s+KERNEL\s+LIVEPATCH\s+PATCH\s+PHASE\s+MESSAGE$/);
    const nodes = cluster().fleet.nodes;
    expect(rows).toHaveLength(nodes.length + 1);
    const onKernel = rows.filter((r) => r.includes(KERNEL));
    expect(onKernel).toHaveLength(2);
    for (const r of onKernel)
      expect(r).toMatch(/\s+watched\s+livepatch_watched\s+Patched\s+enabled; transition complete$/);
    for (const r of rows.filter((x) => x.includes('5.15.0-1-generic')))
      expect(r).toMatch(/\s+-\s+-\s+-\s+no livepatch$/);
  });

  test('status -w on a terminal redraws a progress bar over the node table, and prints no plain lines', async () => {
    await applyLivePatch('on-terminal', {
      kernel: KERNEL,
      spec: { rollout: { maxUnavailable: 1 } },
    });
    const watch = kubectlWatch(['livepatch', 'status', 'on-terminal', '-w'], { terminal: true });
    const full = `[${'#'.repeat(30)}] 2/2 patched, 0 in flight, 0 stalled, 0 failed`;
    try {
      await waitUntil(
        'the bar to fill',
        () => Promise.resolve(watch.output()),
        (o) => o.includes(full),
      );
    } finally {
      await watch.stop();
    }
    const screens = watch.output().split('\x1b[H\x1b[2J').slice(1);
    expect(screens.length).toBeGreaterThanOrEqual(2);
    expect(screens[0]).toMatch(/^\[[#-]{30}\] \d\/2 patched/);
    const last = screens.find((s) => s.includes(full)) ?? '';
    expect(last).toContain('LivePatch on-terminal: Enabled, Complete, 2/2 patched');
    expect(last.match(/\s+Patched\s+/g)).toHaveLength(2);
    expect(watch.output()).not.toMatch(/\d\d:\d\d:\d\d\s+on-terminal\s+/);
  });
});
