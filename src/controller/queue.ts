// A keyed work queue: a key waiting is never queued twice, one key is never
// worked on twice at once (a change during work queues it once more), failed
// keys back off exponentially, and a key can come back after a delay.
// One worker: every LivePatch writes into shared LivePatchNodes, and serial
// reconciles keep those writes from racing each other.
import type { Logger } from '../log.js';

export interface WorkResult {
  /** Look at this key again after this long, even if nothing changes. */
  readonly requeueAfterMs?: number;
}

/** How a reconcile ended, in controller-runtime's words (its `result` label). */
export type ReconcileResult = 'success' | 'error' | 'requeue_after';

/** What the queue tells its metrics: the counters controller-runtime keeps for its queue and reconciles. */
export interface QueueObserver {
  /** A key went in (not one already waiting). */
  added(): void;
  /** A failed key was put back with backoff. */
  retried(): void;
  reconciled(result: ReconcileResult, seconds: number): void;
}

const BASE_BACKOFF_MS = 500;
const MAX_BACKOFF_MS = 60_000;

export class WorkQueue {
  private readonly queue: string[] = [];
  private readonly queued = new Set<string>();
  private readonly dirty = new Set<string>();
  private readonly failures = new Map<string, number>();
  private readonly timers = new Map<string, { timer: NodeJS.Timeout; due: number }>();
  private processing: string | undefined;
  /** When the key being worked on was taken, for the liveness check. */
  private processingSince: number | undefined;
  private wake: (() => void) | undefined;
  private stopped = false;
  private done: Promise<void> | undefined;

  constructor(
    private readonly handler: (key: string) => Promise<WorkResult>,
    private readonly log: Logger,
    private readonly observer?: QueueObserver,
  ) {}

  add(key: string): void {
    if (this.stopped) return;
    if (this.processing === key) {
      if (!this.dirty.has(key)) this.observer?.added();
      this.dirty.add(key);
      return;
    }
    if (this.queued.has(key)) return;
    this.observer?.added();
    this.queued.add(key);
    this.queue.push(key);
    this.wake?.();
  }

  /** Adds the key after `ms`; of several delays pending for one key, the earliest wins. */
  addAfter(key: string, ms: number): void {
    if (this.stopped) return;
    const due = Date.now() + ms;
    const pending = this.timers.get(key);
    if (pending && pending.due <= due) return;
    if (pending) clearTimeout(pending.timer);
    const timer = setTimeout(() => {
      this.timers.delete(key);
      this.add(key);
    }, ms);
    this.timers.set(key, { timer, due });
  }

  /** Keys waiting for the worker. */
  depth(): number {
    return this.queue.length;
  }

  /** Milliseconds the worker has spent on its current key; 0 when idle. */
  busyFor(): number {
    return this.processingSince === undefined ? 0 : Date.now() - this.processingSince;
  }

  start(): void {
    this.done = this.run();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    for (const t of this.timers.values()) clearTimeout(t.timer);
    this.timers.clear();
    this.wake?.();
    await this.done;
  }

  private secondsBusy(): number {
    return this.busyFor() / 1000;
  }

  private async next(): Promise<string | undefined> {
    while (!this.stopped && this.queue.length === 0) {
      await new Promise<void>((resolve) => {
        this.wake = resolve;
      });
      this.wake = undefined;
    }
    return this.stopped ? undefined : this.queue.shift();
  }

  private async run(): Promise<void> {
    for (let key = await this.next(); key !== undefined; key = await this.next()) {
      this.queued.delete(key);
      this.processing = key;
      this.processingSince = Date.now();
      try {
        const result = await this.handler(key);
        this.failures.delete(key);
        if (result.requeueAfterMs !== undefined)
          this.addAfter(key, Math.max(10, result.requeueAfterMs));
        this.observer?.reconciled(
          result.requeueAfterMs === undefined ? 'success' : 'requeue_after',
          this.secondsBusy(),
        );
      } catch (err) {
        const n = (this.failures.get(key) ?? 0) + 1;
        this.failures.set(key, n);
        const delay = Math.min(MAX_BACKOFF_MS, BASE_BACKOFF_MS * 2 ** (n - 1));
        this.log.warn('reconcile failed; retrying', {
          key,
          error: (err as Error).message,
          retryInMs: delay,
        });
        this.addAfter(key, delay);
        this.observer?.reconciled('error', this.secondsBusy());
        this.observer?.retried();
      } finally {
        this.processing = undefined;
        this.processingSince = undefined;
        if (this.dirty.delete(key)) this.add(key);
      }
    }
  }
}
