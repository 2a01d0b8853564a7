// Controller replicas as a Deployment runs them: 2 or 3 processes sharing
// the leader Lease. Kills the leader with SIGKILL (no chance to release the
// Lease), starts a replacement at once as the Deployment would, and measures
// the take-over from the replicas' own log lines.
import type { Running } from '../operator-process.js';
import { leaseHolder, until } from './api.js';
import type { ChaosCluster } from './cluster.js';

interface Replica {
  readonly identity: string;
  readonly proc: Running;
}

/** When a replica logged `message` at or after `since` (its JSON log's timestamp), if it did. */
function loggedAfter(proc: Running, message: string, since: number): number | undefined {
  for (const line of proc.output().split('\n')) {
    if (!line.startsWith('{')) continue;
    try {
      const entry = JSON.parse(line) as { message?: string; timestamp?: string };
      const t = Date.parse(entry.timestamp ?? '');
      if (entry.message === message && t >= since) return t;
    } catch {
      // A line cut by the kill: not a log entry.
    }
  }
  return undefined;
}

export class Replicas {
  private readonly live: Replica[] = [];
  private started = 0;

  constructor(
    private readonly cluster: ChaosCluster,
    private readonly prefix: string,
  ) {}

  get count(): number {
    return this.live.length;
  }

  private async add(): Promise<Replica> {
    const identity = `${this.prefix}-${++this.started}`;
    const replica = { identity, proc: this.cluster.startController(identity) };
    this.live.push(replica);
    await replica.proc.waitFor(/controller running/, 60_000);
    return replica;
  }

  /** Starts or stops (cleanly, a standby) replicas until `n` run. */
  async scaleTo(n: number): Promise<void> {
    while (this.live.length < n) await this.add();
    while (this.live.length > n) {
      const holder = await leaseHolder(this.cluster.kc);
      const standby = this.live.find((r) => r.identity !== holder);
      if (!standby) return;
      this.live.splice(this.live.indexOf(standby), 1);
      await standby.proc.stop('SIGTERM');
    }
  }

  /** The live replica that holds the Lease, once one does. */
  async leader(timeoutMs = 60_000): Promise<Replica | undefined> {
    const found = await until(
      () => leaseHolder(this.cluster.kc),
      (h) => this.live.some((r) => r.identity === h),
      timeoutMs,
    );
    return this.live.find((r) => r.identity === found.last);
  }

  /**
   * SIGKILLs the leader, starts a replacement, and waits for a replica to
   * lead again. Resolves with the take-over time in ms (undefined if none led
   * within `timeoutMs`) and who was killed.
   */
  async killLeader(
    timeoutMs = 60_000,
  ): Promise<{ killed: string; takeoverMs?: number } | undefined> {
    const leader = await this.leader();
    if (!leader) return undefined;
    await leader.proc.stop('SIGKILL');
    const killedAt = Date.now();
    this.live.splice(this.live.indexOf(leader), 1);
    const replacement = this.add();
    const led = await until(
      () =>
        Promise.resolve(
          this.live
            .map((r) => loggedAfter(r.proc, 'became the leader', killedAt))
            .find((t) => t !== undefined),
        ),
      (t) => t !== undefined,
      timeoutMs,
    );
    await replacement;
    return { killed: leader.identity, ...(led.last ? { takeoverMs: led.last - killedAt } : {}) };
  }

  /** Replaces replicas that exited (one that lost the Lease exits), as a Deployment would; how many. */
  async heal(): Promise<number> {
    const gone = this.live.filter((r) => r.proc.child.exitCode !== null);
    for (const r of gone) this.live.splice(this.live.indexOf(r), 1);
    for (let i = 0; i < gone.length; i++) await this.add();
    return gone.length;
  }

  /**
   * Heals every second until stopped, as a Deployment's ReplicaSet does: an
   * outage can take the standby too, and a rollout with no replica left
   * would wait for the suite, not for the operator. Resolves with how many
   * replicas it replaced.
   */
  supervise(): () => Promise<number> {
    let replaced = 0;
    let running: Promise<void> = Promise.resolve();
    const timer = setInterval(() => {
      running = running.then(async () => {
        replaced += await this.heal();
      });
    }, 1000);
    return async () => {
      clearInterval(timer);
      await running;
      return replaced;
    };
  }

  /** Replicas that exited on their own (a lost Lease exits 1), with their last words. */
  exited(): string[] {
    return this.live
      .filter((r) => r.proc.child.exitCode !== null)
      .map((r) => `${r.identity} exited ${r.proc.child.exitCode}: ${r.proc.output().slice(-500)}`);
  }
}
