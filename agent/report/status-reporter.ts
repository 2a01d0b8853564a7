// Writes the agent's status to its node's LivePatchNode in the background, so
// that the kernel loop, and the stall guard in it, never waits on the API
// server: the latest status wins, a failed write is retried until the server
// answers again, and a missing LivePatchNode is created first. When a status
// is due is status-write.ts's call.
import type { KubeConfig } from '../../src/kube/config.js';
import { FIELD_MANAGER } from '../../src/api/constants.js';
import type { LivePatchNodeStatus } from '../../src/api/generated/types.js';
import type { NodeName } from '../../src/api/names.js';
import type { Clock } from '../../src/clock.js';
import { isNotFound, patchStatus } from '../../src/kube/resources.js';
import type { Logger } from '../../src/log.js';
import { ensureLivePatchNode, livePatchNodePath } from './livepatchnode.js';
import { statusKey } from '../pass/reporting.js';
import { agentStatusWrite, type WrittenStatus } from './status-write.js';

export interface ReporterOptions {
  readonly kubeConfig: KubeConfig;
  readonly nodeName: NodeName;
  readonly clock: Clock;
  readonly log: Logger;
  /** A status is written again after this long even when nothing changed. */
  readonly heartbeatMs: number;
  /** Wait before trying a failed write again. */
  readonly retryMs: number;
  /** Called after each write: a change, or a heartbeat alone. */
  readonly onWritten?: (why: 'change' | 'heartbeat') => void;
}

export class StatusReporter {
  private latest: LivePatchNodeStatus | undefined;
  private written: WrittenStatus | undefined;
  private inFlight: Promise<void> | undefined;
  private retry: NodeJS.Timeout | undefined;
  /** Since when the latest status has differed from the written one. */
  private differsSince: number | undefined;
  private settle: NodeJS.Timeout | undefined;
  private failing: { since: number; error: string } | undefined;
  private stopped = false;

  constructor(private readonly o: ReporterOptions) {}

  /** Hands over the status of the latest kernel pass; written when it changed or a heartbeat is due. */
  submit(status: LivePatchNodeStatus): void {
    this.latest = status;
    this.flush();
  }

  /** Why the node's status is not reaching the API server, or undefined when it is. */
  problem(): string | undefined {
    if (this.failing) {
      const seconds = Math.round((this.o.clock.now() - this.failing.since) / 1000);
      return `cannot report to the API server for ${seconds}s: ${this.failing.error}`;
    }
    return this.written ? undefined : 'no status reported yet';
  }

  /** Waits for the write in flight, then writes nothing more. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.retry) clearTimeout(this.retry);
    if (this.settle) clearTimeout(this.settle);
    await this.inFlight;
  }

  private flush(): void {
    const status = this.latest;
    if (this.inFlight || this.stopped || !status) return;
    const json = JSON.stringify(status);
    const key = statusKey(status);
    if (!this.isDue(json, key)) return;
    this.inFlight = this.write(status, json, key).finally(() => {
      this.inFlight = undefined;
      if (this.latest !== status) this.flush();
    });
  }

  /** A heartbeat, a phase-level change, or progress that has held (and looks again when it will have). */
  private isDue(json: string, key: string): boolean {
    const { write, differsSince } = agentStatusWrite({
      written: this.written,
      json,
      key,
      differsSince: this.differsSince,
      heartbeatMs: this.o.heartbeatMs,
      now: this.o.clock.now(),
    });
    this.differsSince = differsSince;
    if (write.kind === 'later') this.flushAfter(write.inMs);
    return write.kind === 'now';
  }

  /** Passes may stop coming (the agent sleeps until its heartbeat): look again when the progress has held. */
  private flushAfter(ms: number): void {
    if (this.settle) return;
    this.settle = setTimeout(() => {
      this.settle = undefined;
      this.flush();
    }, ms);
  }

  private async write(status: LivePatchNodeStatus, json: string, key: string): Promise<void> {
    const now = this.o.clock.now();
    // Merge patch: absent keys must be sent as null to be removed.
    const body = { transitioning: null, ...status, heartbeatTime: new Date(now).toISOString() };
    const path = livePatchNodePath(this.o.nodeName);
    try {
      try {
        await patchStatus(this.o.kubeConfig, path, body, FIELD_MANAGER.agent);
      } catch (err) {
        if (!isNotFound(err)) throw err;
        await ensureLivePatchNode(this.o.kubeConfig, this.o.nodeName, this.o.log);
        await patchStatus(this.o.kubeConfig, path, body, FIELD_MANAGER.agent);
      }
      const changed = this.written?.json !== json;
      this.written = { json, key, at: now };
      if (this.latest === status) this.differsSince = undefined;
      this.o.onWritten?.(changed ? 'change' : 'heartbeat');
      if (this.failing) {
        const seconds = Math.round((now - this.failing.since) / 1000);
        this.o.log.info('reporting to the API server again', { node: this.o.nodeName, seconds });
      }
      this.failing = undefined;
    } catch (err) {
      this.failed((err as Error).message);
    }
  }

  private failed(error: string): void {
    if (!this.failing) {
      this.o.log.warn('cannot report to the API server; the node keeps guarding and retries', {
        node: this.o.nodeName,
        error,
      });
      this.failing = { since: this.o.clock.now(), error };
    } else this.failing = { ...this.failing, error };
    if (this.stopped) return;
    if (this.retry) clearTimeout(this.retry);
    this.retry = setTimeout(() => {
      this.retry = undefined;
      this.flush();
    }, this.o.retryMs);
  }
}
