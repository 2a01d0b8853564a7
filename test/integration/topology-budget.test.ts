// Topology budgets on the real API server: nodes in three zones and one
// without the zone label, one node in flight per zone, zone by zone in a
// stated order. A watch of the LivePatchNodes sees every entry the controller
// writes and every report the agents make, so the budget and the order are
// checked at each change, not by sampling.
import { describe, expect, test } from '@jest/globals';
import type { LivePatch, LivePatchNode, ObservedPatch } from '../../src/api/generated/types.js';
import { loadKubeConfig } from '../../src/kube/config.js';
import { Reflector } from '../../src/kube/reflector.js';
import { PATHS } from '../../src/kube/resources.js';
import { createLogger } from '../../src/log.js';
import { kubectl, kubectlOk } from '../support/kubectl.js';
import { applyLivePatch, getLivePatch } from '../support/livepatches.js';
import { useOwnCluster } from '../support/own-cluster.js';

const KERNEL = '6.1.0-26-amd64';
const ZONE = 'topology.kubernetes.io/zone';
const NAME = 'zoned';
const cluster = useOwnCluster({ nodes: 10, kernels: [KERNEL], prefix: 'zone' });

/** Settled by its own report: Patched, and its bake over (the agent stamps taintAfterBake then). */
const settled = (r: ObservedPatch | undefined): boolean =>
  r?.phase === 'Patched' && r.taintAfterBake !== undefined;

/** A node by its entry and its own report: no entry yet, in flight (baking included), or settled. */
function stageOf(lpn: LivePatchNode): 'waiting' | 'flying' | 'settled' {
  if (!lpn.spec.patches?.some((p) => p.livePatch === NAME)) return 'waiting';
  return settled(lpn.status?.patches?.find((p) => p.livePatch === NAME)) ? 'settled' : 'flying';
}

/** What a watch of the LivePatchNodes saw, change by change: the most in flight per zone, when each zone started and finished. */
class ZoneWatch {
  readonly maxInFlight = new Map<string, number>();
  /** The change at which a zone's first node got its entry. */
  readonly startedAt = new Map<string, number>();
  /** The change at which a zone's last node settled. */
  readonly finishedAt = new Map<string, number>();
  private change = 0;

  constructor(private readonly zoneOf: (node: string) => string) {}

  record(lpns: readonly LivePatchNode[]): void {
    this.change++;
    const flying = new Map<string, number>();
    const unsettled = new Set<string>();
    for (const lpn of lpns) {
      const zone = this.zoneOf(lpn.metadata.name ?? '');
      const stage = stageOf(lpn);
      if (stage !== 'waiting' && !this.startedAt.has(zone)) this.startedAt.set(zone, this.change);
      if (stage !== 'settled') unsettled.add(zone);
      if (stage === 'flying') flying.set(zone, (flying.get(zone) ?? 0) + 1);
    }
    for (const [zone, n] of flying)
      this.maxInFlight.set(zone, Math.max(this.maxInFlight.get(zone) ?? 0, n));
    for (const zone of this.startedAt.keys())
      if (!unsettled.has(zone) && !this.finishedAt.has(zone))
        this.finishedAt.set(zone, this.change);
  }
}

describe('topology budgets', () => {
  test('one node in flight per zone, zones finished in the stated order, the unlabeled node last; status shows the zones', async () => {
    const nodes = cluster().fleet.nodes;
    const zoneOf = new Map<string, string>();
    const zones = ['zone-a', 'zone-b', 'zone-c'];
    for (const [i, node] of nodes.entries()) {
      const zone = zones[Math.floor(i / 3)];
      if (!zone) continue;
      zoneOf.set(node, zone);
      await kubectlOk(['label', 'node', node, `${ZONE}=${zone}`]);
    }
    const unlabeled = nodes.filter((n) => !zoneOf.has(n));
    expect(unlabeled).toHaveLength(1);
    await cluster().startController('zone-controller');

    // Every change to any LivePatchNode, in the API server's order: in flight per zone, first start, finish.
    const log = createLogger({ component: 'test', format: 'text', level: 'error' });
    const kc = loadKubeConfig(cluster().plane.kubeconfig);
    const watched = new ZoneWatch((node) => zoneOf.get(node) ?? '');
    const lpns: Reflector<LivePatchNode> = new Reflector<LivePatchNode>(kc, {
      path: PATHS.livePatchNodes,
      log,
      onChange: () => {
        watched.record(lpns.list());
      },
    });
    // The LivePatch's own status on the way, as a watch of it sees it.
    const seen: LivePatch[] = [];
    const lps: Reflector<LivePatch> = new Reflector<LivePatch>(kc, {
      path: PATHS.livePatches,
      log,
      onChange: (name) => {
        const lp = lps.get(name);
        if (lp?.status?.topology) seen.push(lp);
      },
    });
    lpns.start();
    lps.start();
    await Promise.all([lpns.waitForSync(), lps.waitForSync()]);
    try {
      await applyLivePatch(NAME, {
        kernel: KERNEL,
        spec: {
          rollout: {
            maxUnavailable: 3,
            bakeTime: '1s',
            topology: {
              maxUnavailable: 1,
              order: 'ZoneByZone',
              zones: ['zone-c', 'zone-a', 'zone-b'],
            },
          },
        },
      });
      const waited = await kubectl([
        'wait',
        '--for=condition=Complete',
        `lp/${NAME}`,
        '--timeout=90s',
      ]);
      expect(waited.stdout).toContain('condition met');
    } finally {
      lpns.stop();
      lps.stop();
    }

    expect(watched.maxInFlight).toEqual(
      new Map([
        ['zone-a', 1],
        ['zone-b', 1],
        ['zone-c', 1],
        ['', 1],
      ]),
    );
    // Each zone's first entry comes after the last node of the zone before it settled.
    const order = ['zone-c', 'zone-a', 'zone-b', ''];
    const starts = order.map((z) => watched.startedAt.get(z));
    const finishes = order.map((z) => watched.finishedAt.get(z));
    for (let i = 1; i < order.length; i++)
      expect(starts[i]).toBeGreaterThan(finishes[i - 1] ?? Infinity);

    const lp = await getLivePatch(NAME);
    expect(lp.status).toMatchObject({ phase: 'Complete', summary: '10/10' });
    expect(lp.status?.topology).toEqual({
      key: ZONE,
      groups: 4,
      finished: 4,
      unlabeled: 1,
      zones: order.map((zone) => ({
        zone,
        targeted: zone ? 3 : 1,
        patched: zone ? 3 : 1,
        inFlight: 0,
      })),
    });
    // On the way the status showed a zone in flight while the ones after it had not started.
    expect(
      seen.some((l) => {
        const z = l.status?.topology?.zones ?? [];
        return z[1]?.inFlight === 1 && z[0]?.patched === 3 && z[2]?.patched === 0;
      }),
    ).toBe(true);
    const page = await kubectlOk(['livepatch', 'status', NAME]);
    expect(page).toContain(
      `zones (${ZONE}, zone by zone, 1 in flight per zone): zone-c 3/3, zone-a 3/3, zone-b 3/3, (no ${ZONE} label) 1/1`,
    );
  });

  test('zones given without ZoneByZone is refused at apply, saying what to set', async () => {
    const refused = await kubectl(
      ['apply', '-f', '-'],
      JSON.stringify({
        apiVersion: 'livepatch.io/v1alpha1',
        kind: 'LivePatch',
        metadata: { name: 'zones-without-order' },
        spec: {
          patchName: 'livepatch_zones_without_order',
          kernels: [
            {
              release: KERNEL,
              module: { url: 'https://mirror.example/x.ko', sha256: 'a'.repeat(64) },
            },
          ],
          rollout: { topology: { zones: ['zone-a'] } },
        },
      }),
    );
    expect(refused.stderr).toContain(
      'zones orders the groups of order ZoneByZone: set order: ZoneByZone, or remove zones',
    );
  });
});
