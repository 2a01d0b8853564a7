// Samples every LivePatch and LivePatchNode status a few times a second for
// the invariants that hold at every moment (maxUnavailable, one transition
// per node, counts that never go backwards). Polls rather than watches: a
// watch the suite breaks on purpose (API server, etcd) must not blind the
// witness. A failed poll is a gap, not an error. Beside the polls it keeps the
// API server's watch history of the LivePatchNodes (watch-history.ts), from
// which the kernels' flights take the agents' Loading.
import type { LivePatch, LivePatchNode } from '../../src/api/generated/types.js';
import type { KubeConfig } from '../../src/kube/config.js';
import { rawJson } from '../../src/kube/raw.js';
import { PATHS } from '../../src/kube/resources.js';
import type { LivePatchSample, NodeSample, PhaseSeen, Snapshot } from './evidence.js';
import { WatchHistory } from './watch-history.js';

const nodeSample = (n: LivePatchNode): NodeSample => ({
  node: n.metadata.name ?? '',
  patches: (n.status?.patches ?? []).map((p) => ({
    livePatch: p.livePatch,
    patchName: p.patchName,
    phase: p.phase,
  })),
});

const livePatchSample = (lp: LivePatch): LivePatchSample => ({
  name: lp.metadata.name ?? '',
  generation: lp.metadata.generation ?? 0,
  ...(lp.status?.observedGeneration !== undefined
    ? { observedGeneration: lp.status.observedGeneration }
    : {}),
  ...(lp.status?.phase ? { phase: lp.status.phase } : {}),
  counts: lp.status?.nodes ?? {},
});

export async function takeSnapshot(kc: KubeConfig): Promise<Snapshot> {
  const [lps, lpns] = await Promise.all([
    rawJson<{ items: LivePatch[] }>(kc, 'GET', PATHS.livePatches),
    rawJson<{ items: LivePatchNode[] }>(kc, 'GET', PATHS.livePatchNodes),
  ]);
  return {
    at: Date.now(),
    livePatches: lps.items.map(livePatchSample),
    nodes: lpns.items.map(nodeSample),
  };
}

export class Sampler {
  readonly snapshots: Snapshot[] = [];
  private readonly history: WatchHistory;
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private stopped = false;

  constructor(
    private readonly kc: KubeConfig,
    private readonly intervalMs = 250,
  ) {
    this.history = new WatchHistory(kc);
  }

  /** Every entry's phase changes as the watch delivered them. */
  get seen(): readonly PhaseSeen[] {
    return this.history.seen;
  }

  start(): void {
    void this.history.start();
    const tick = (): void => {
      if (this.stopped) return;
      this.running = takeSnapshot(this.kc)
        .then((s) => {
          this.snapshots.push(s);
        })
        .catch(() => undefined)
        .finally(() => {
          if (!this.stopped) this.timer = setTimeout(tick, this.intervalMs);
        });
    };
    tick();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.history.stop();
    if (this.timer) clearTimeout(this.timer);
    await this.running;
  }
}
