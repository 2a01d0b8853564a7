// Leader election on a coordination.k8s.io Lease, like client-go's: several
// replicas may run, exactly one acts. The holder renews every retry period;
// it stops acting as soon as it cannot renew within renewDeadline (and the
// process exits, so a fresh replica can take over cleanly). A standby takes
// the Lease when the holder's record has not changed for leaseDuration, as it
// observed it on its own clock: clocks of different machines never compare.
// Takeover after a holder dies: at most leaseDuration + retryPeriod (17 s by
// default); after a clean shutdown, which releases the Lease, one retry period.
// A replica that lost the Lease because its renewals failed past the renew
// deadline (an API server or etcd outage) stops acting, and releases the
// Lease on its way out if it still names it, once the server answers:
// otherwise the standby would wait out a whole lease after the control plane
// is back before anyone acts.
import type { KubeConfig } from '../kube/config.js';
import type { Logger } from '../log.js';
import { rawJson } from '../kube/raw.js';
import { isConflict, isNotFound } from '../kube/resources.js';

export interface LeaderOptions {
  readonly namespace: string;
  readonly name: string;
  readonly identity: string;
  readonly leaseDurationMs?: number;
  readonly renewDeadlineMs?: number;
  readonly retryPeriodMs?: number;
}

interface Lease {
  metadata: { name: string; namespace: string; resourceVersion?: string };
  spec: {
    holderIdentity?: string | null;
    leaseDurationSeconds?: number;
    acquireTime?: string | null;
    renewTime?: string | null;
    leaseTransitions?: number;
  };
}

const microTime = (ms: number): string => new Date(ms).toISOString().replace('Z', '000Z');

/**
 * When to try the Lease again: every retry period, except that a standby
 * wakes the moment the holder's record (unchanged since `observedAt`) expires,
 * rather than at the next retry after that. Takeover after a holder dies is
 * then at most leaseDuration + retryPeriod (17 s by default), not up to one
 * retry period more.
 */
export function nextTryMs(o: {
  readonly leading: boolean;
  readonly observedAt: number | undefined;
  readonly leaseMs: number;
  readonly retryMs: number;
  readonly now: number;
}): number {
  if (o.leading || o.observedAt === undefined) return o.retryMs;
  const expiresIn = o.observedAt + o.leaseMs - o.now;
  return expiresIn > 0 && expiresIn < o.retryMs ? expiresIn : o.retryMs;
}

export class LeaderElector {
  private renewedAt = 0;
  private observed: { record: string; at: number } | undefined;
  private timer: NodeJS.Timeout | undefined;
  /** The tick in progress, if any: stop() waits for it so no renewal lands after the release. */
  private ticking: Promise<void> | undefined;
  private stopped = false;
  private leading = false;
  /** This replica wrote the Lease as its holder at least once. */
  private held = false;
  private readonly leaseMs: number;
  private readonly renewDeadlineMs: number;
  private readonly retryMs: number;

  constructor(
    private readonly kc: KubeConfig,
    private readonly o: LeaderOptions,
    private readonly log: Logger,
    private readonly onChange: (leading: boolean) => void,
  ) {
    this.leaseMs = o.leaseDurationMs ?? 15_000;
    this.renewDeadlineMs = o.renewDeadlineMs ?? 10_000;
    this.retryMs = o.retryPeriodMs ?? 2_000;
  }

  private get path(): string {
    return `/apis/coordination.k8s.io/v1/namespaces/${this.o.namespace}/leases/${this.o.name}`;
  }

  /** True only while the last renewal is recent enough: a partitioned leader stops acting by itself. */
  isLeader(): boolean {
    return this.leading && Date.now() - this.renewedAt < this.renewDeadlineMs;
  }

  start(): void {
    this.ticking = this.tick();
  }

  /**
   * Releases the Lease if it still names this replica, so a standby takes over
   * at once; also after a lost leadership, since this replica acts no more. A
   * replica that lost it to an API server outage tries again until the server
   * answers, for at most one lease duration (the Lease expires by then anyway).
   */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    await this.ticking;
    if (!this.held) return;
    this.leading = false;
    const deadline = Date.now() + this.leaseMs;
    for (;;) {
      const error = await this.release();
      if (error === undefined) return;
      const retry = Date.now() + this.retryMs < deadline;
      this.log.warn(
        retry
          ? 'could not release the leader lease; retrying'
          : 'could not release the leader lease; it expires by itself',
        { lease: this.o.name, error, ...(retry ? { retryInMs: this.retryMs } : {}) },
      );
      if (!retry) return;
      await new Promise((r) => setTimeout(r, this.retryMs));
    }
  }

  /** Hands the Lease back if it still names this replica; the error when the server could not be asked. */
  private async release(): Promise<string | undefined> {
    try {
      const lease = await rawJson<Lease>(this.kc, 'GET', this.path);
      if (lease.spec.holderIdentity !== this.o.identity) return undefined;
      const spec = {
        ...lease.spec,
        holderIdentity: null,
        acquireTime: null,
        renewTime: null,
        leaseDurationSeconds: 1,
      };
      await rawJson(this.kc, 'PUT', this.path, { ...lease, spec });
      this.log.info('released the leader lease', { lease: this.o.name });
      return undefined;
    } catch (err) {
      return (err as Error).message;
    }
  }

  private async tick(): Promise<void> {
    try {
      await this.tryAcquireOrRenew();
    } catch (err) {
      this.log.warn('leader election failed', {
        lease: this.o.name,
        error: (err as Error).message,
      });
    }
    this.setLeading(this.leading && Date.now() - this.renewedAt < this.renewDeadlineMs);
    if (!this.stopped) {
      const wait = nextTryMs({
        leading: this.leading,
        observedAt: this.observed?.at,
        leaseMs: this.leaseMs,
        retryMs: this.retryMs,
        now: Date.now(),
      });
      this.timer = setTimeout(() => {
        this.ticking = this.tick();
      }, wait);
    }
  }

  private setLeading(leading: boolean): void {
    if (leading === this.leading) return;
    this.leading = leading;
    this.log.info(leading ? 'became the leader' : 'lost the leadership', {
      lease: this.o.name,
      identity: this.o.identity,
    });
    this.onChange(leading);
  }

  private spec(now: number, previous: Lease['spec'] | undefined): Lease['spec'] {
    const mine = previous?.holderIdentity === this.o.identity;
    return {
      holderIdentity: this.o.identity,
      leaseDurationSeconds: Math.ceil(this.leaseMs / 1000),
      acquireTime: mine && previous.acquireTime ? previous.acquireTime : microTime(now),
      renewTime: microTime(now),
      leaseTransitions: (previous?.leaseTransitions ?? 0) + (mine ? 0 : 1),
    };
  }

  private async tryAcquireOrRenew(): Promise<void> {
    const now = Date.now();
    let lease: Lease;
    try {
      lease = await rawJson<Lease>(this.kc, 'GET', this.path);
    } catch (err) {
      if (!isNotFound(err)) throw err;
      const body = {
        apiVersion: 'coordination.k8s.io/v1',
        kind: 'Lease',
        metadata: { name: this.o.name, namespace: this.o.namespace },
        spec: this.spec(now, undefined),
      };
      await this.write(
        'POST',
        `/apis/coordination.k8s.io/v1/namespaces/${this.o.namespace}/leases`,
        body,
        now,
      );
      return;
    }
    // Seen when the answer came, not when the tick began: a GET held up by an outage must not age the record.
    const seenAt = Date.now();
    const record = JSON.stringify(lease.spec);
    if (this.observed?.record !== record) this.observed = { record, at: seenAt };
    const holder = lease.spec.holderIdentity;
    const expired = !holder || seenAt - this.observed.at >= this.leaseMs;
    if (holder !== this.o.identity && !expired) {
      this.setLeading(false);
      return;
    }
    await this.write('PUT', this.path, { ...lease, spec: this.spec(now, lease.spec) }, now);
  }

  /** Optimistic concurrency: two candidates may try at once; the resourceVersion lets only one win. */
  private async write(
    method: 'POST' | 'PUT',
    path: string,
    body: object,
    now: number,
  ): Promise<void> {
    try {
      const written = await rawJson<Lease>(this.kc, method, path, body);
      this.observed = { record: JSON.stringify(written.spec), at: Date.now() };
      // From the tick's start: the renewal counts from the earliest the write could have landed.
      this.renewedAt = now;
      this.held = true;
      this.setLeading(true);
    } catch (err) {
      if (!isConflict(err)) throw err;
      this.setLeading(false);
    }
  }
}
