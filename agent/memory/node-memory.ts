// What the agent knows of its past, and what it leaves for the next one: the
// node-local file (node-state.ts) when there is one, else this node's last
// report in the API. The desired patches come from the API once it answered
// (its cache outlives an outage), else from the file, so an agent started
// during an outage still guards the transitions already in the kernel.
import type { DesiredPatch, LivePatchNode, ObservedPatch } from '../../src/api/generated/types.js';
import type { NodeName } from '../../src/api/names.js';
import type { KubeConfig } from '../../src/kube/config.js';
import type { Reflector } from '../../src/kube/reflector.js';
import type { Logger } from '../../src/log.js';
import { ensureLivePatchNode } from '../report/livepatchnode.js';
import type { NodeStateFile } from './node-state.js';

/** How long a start without node-local state waits for the API server before guarding nothing. */
export const START_SYNC_WAIT_MS = 10_000;

export interface NodeMemoryOptions {
  readonly nodeName: NodeName;
  readonly kubeConfig: KubeConfig;
  readonly log: Logger;
  readonly reflector: Pick<Reflector<LivePatchNode>, 'get' | 'hasSynced' | 'waitForSync'>;
  readonly state?: NodeStateFile;
  readonly startSyncWaitMs?: number;
}

/** Failed entries are retried once per agent start. */
const unfailed = (patches: readonly ObservedPatch[]): ObservedPatch[] =>
  patches.filter((p) => p.phase !== 'Failed');

export class NodeMemory {
  private remembered: readonly DesiredPatch[] = [];
  /** The node's memory was found at start: what this agent saves continues it. */
  private resumed = false;

  constructor(private readonly o: NodeMemoryOptions) {}

  /** The entries the agent before this one saved on the node, if it did: newer than (or as new as) its last report. */
  async resume(): Promise<ObservedPatch[] | undefined> {
    const saved = await this.o.state?.load();
    if (!saved) return undefined;
    this.resumed = true;
    this.remembered = saved.desired;
    this.o.log.info('resuming from the node-local state', {
      node: this.o.nodeName,
      patches: saved.desired.map((d) => d.livePatch),
    });
    return unfailed(saved.patches);
  }

  /**
   * Without node-local state: what this node last reported, so transitions
   * keep their start time. Waits a while for the API server (the reflector
   * must be started); if it does not answer, `late` gets the report once it does.
   */
  async adoptReported(late: (patches: ObservedPatch[]) => void): Promise<ObservedPatch[]> {
    const waitMs = this.o.startSyncWaitMs ?? START_SYNC_WAIT_MS;
    // A real timer, not the clock: this waits for the network.
    let timer: NodeJS.Timeout | undefined;
    const synced = await Promise.race([
      this.o.reflector.waitForSync().then(() => true),
      new Promise<false>((resolve) => (timer = setTimeout(resolve, waitMs, false))),
    ]);
    clearTimeout(timer);
    if (synced) {
      await this.ensureNode();
      return this.reported();
    }
    this.o.log.warn(
      'the API server does not answer and this node has no saved state: nothing to guard until it does',
      { node: this.o.nodeName, waitedMs: waitMs },
    );
    void this.o.reflector.waitForSync().then(() => {
      late(this.reported());
    });
    return [];
  }

  /** From the API once it answered, else from the node's memory. */
  desired(): DesiredPatch[] {
    if (!this.o.reflector.hasSynced) return [...this.remembered];
    return [...(this.o.reflector.get(this.o.nodeName)?.spec.patches ?? [])];
  }

  /**
   * Saved only once it knows its past (its memory, or its last report in the
   * API): a pass with neither, during an outage, would save "no patches", and
   * the agent after it would take a stall reversal under way for a transition
   * heading the wrong way.
   */
  async save(desired: readonly DesiredPatch[], patches: readonly ObservedPatch[]): Promise<void> {
    if (this.resumed || this.o.reflector.hasSynced) await this.o.state?.save(desired, patches);
  }

  /** Whether saving before an action is worth its bake stamps: there is a file to save to. */
  get saves(): boolean {
    return this.o.state !== undefined;
  }

  private reported(): ObservedPatch[] {
    return unfailed(this.o.reflector.get(this.o.nodeName)?.status?.patches ?? []);
  }

  /** Created now rather than by the first status write, so that it exists once the agent has started. */
  private async ensureNode(): Promise<void> {
    if (this.o.reflector.get(this.o.nodeName)) return;
    await ensureLivePatchNode(this.o.kubeConfig, this.o.nodeName, this.o.log).catch(
      (err: unknown) => {
        this.o.log.warn('cannot create the LivePatchNode yet; the status write will', {
          node: this.o.nodeName,
          error: (err as Error).message,
        });
      },
    );
  }
}
