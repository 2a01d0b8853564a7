// One Pod on one node, from the test kubelet: its sandbox (network
// namespace), its volumes, each container run from its image exactly as the
// spec says (command, args, env with downward API values and the Service
// variables, user, read-only root), the probes, restarts with back-off, the
// status the controllers and `helm --wait` read, and a graceful end when the
// Pod is deleted.
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { KubeConfig } from '../../../src/kube/config.js';
import { rawJson } from '../../../src/kube/raw.js';
import type { Logger } from '../../../src/log.js';
import type { UnpackedImage } from '../../../lab/image/unpack.js';
import { startContainer, type RunningContainer } from './container.js';
import { createSandbox, destroySandbox, type PodSandbox } from './network.js';
import type { Container, Pod } from './pod-types.js';
import { probeOnce } from './probes.js';
import { fieldValue, makeVolumes } from './volumes.js';

export interface NodeContext {
  readonly name: string;
  /** The node's own identity (system:node:NAME). */
  readonly kc: KubeConfig;
  readonly dir: string;
  readonly hostIP: string;
  readonly images: ReadonlyMap<string, UnpackedImage>;
  /** KUBERNETES_SERVICE_HOST and the rest, from the kubernetes Service. */
  readonly serviceEnv: () => Promise<Record<string, string>>;
  readonly log: Logger;
}

type State =
  | { readonly waiting: { readonly reason: string; readonly message?: string } }
  | { readonly running: { readonly startedAt: string } }
  | {
      readonly terminated: {
        readonly exitCode: number;
        readonly reason: string;
        readonly finishedAt: string;
      };
    };

interface ContainerState {
  readonly spec: Container;
  state: State;
  lastState?: State;
  ready: boolean;
  started: boolean;
  restartCount: number;
  running?: RunningContainer;
  timers: NodeJS.Timeout[];
}

const now = (): string => new Date().toISOString();
const MAX_BACKOFF_MS = 60_000;

export class PodRunner {
  private sandbox: PodSandbox | undefined;
  private readonly containers: ContainerState[];
  private readonly startTime = now();
  private stopping: Promise<void> | undefined;
  private written = '';
  private volumes = new Map<string, string>();

  constructor(
    private readonly ctx: NodeContext,
    private pod: Pod,
  ) {
    this.containers = pod.spec.containers.map((spec) => ({
      spec,
      state: { waiting: { reason: 'ContainerCreating' } },
      ready: false,
      started: false,
      restartCount: 0,
      timers: [],
    }));
  }

  get uid(): string {
    return this.pod.metadata.uid;
  }

  private get dir(): string {
    return join(this.ctx.dir, 'pods', this.pod.metadata.uid);
  }

  private get where(): Record<string, string> {
    return { pod: `${this.pod.metadata.namespace}/${this.pod.metadata.name}`, node: this.ctx.name };
  }

  async start(): Promise<void> {
    try {
      if (this.pod.spec.hostNetwork || this.pod.spec.hostPID)
        throw new Error('the test kubelet runs no hostNetwork or hostPID pods');
      this.sandbox = await createSandbox();
      this.volumes = await makeVolumes(this.ctx.kc, this.pod, this.dir, this.ips());
      for (const c of this.containers) await this.run(c);
    } catch (err) {
      this.ctx.log.error('cannot start the pod', { ...this.where, error: (err as Error).message });
      for (const c of this.containers)
        c.state = { waiting: { reason: 'CreateContainerError', message: (err as Error).message } };
    }
    await this.report();
  }

  /** A newer copy of the Pod: a deletion starts the graceful end. */
  update(pod: Pod): void {
    this.pod = pod;
    if (pod.metadata.deletionTimestamp) void this.terminate();
  }

  terminate(): Promise<void> {
    this.stopping ??= this.end();
    return this.stopping;
  }

  /** Where each container's output goes, for a test that failed. */
  logs(): string[] {
    return this.containers.map((c) => join(this.dir, c.spec.name, 'container.log'));
  }

  private ips(): { podIP: string; hostIP: string } {
    return { podIP: this.sandbox?.ip ?? '', hostIP: this.ctx.hostIP };
  }

  private async env(c: Container, image: UnpackedImage): Promise<Record<string, string>> {
    const env: Record<string, string> = {};
    for (const e of image.config.Env ?? []) {
      const at = e.indexOf('=');
      env[e.slice(0, at)] = e.slice(at + 1);
    }
    env['HOSTNAME'] = this.pod.metadata.name;
    env['HOME'] ??= '/';
    Object.assign(env, await this.ctx.serviceEnv());
    for (const v of c.env ?? []) {
      if (v.valueFrom?.fieldRef)
        env[v.name] = fieldValue(
          this.pod,
          v.valueFrom.fieldRef,
          this.ips().podIP,
          this.ips().hostIP,
        );
      else if (v.valueFrom)
        throw new Error(`env ${v.name}: the test kubelet resolves fieldRef only`);
      else env[v.name] = v.value ?? '';
    }
    return env;
  }

  private argv(c: Container, image: UnpackedImage): string[] {
    // Kubernetes' rule: command replaces the image's Entrypoint and drops its Cmd; args replace Cmd.
    const command = c.command ?? image.config.Entrypoint ?? [];
    const args = c.args ?? (c.command ? [] : (image.config.Cmd ?? []));
    return [...command, ...args];
  }

  private user(c: Container, image: UnpackedImage): { uid: number; gid: number } {
    const [u = '0', g] = (image.config.User ?? '0').split(':');
    const pick = (key: 'runAsUser' | 'runAsGroup', fallback: number): number =>
      c.securityContext?.[key] ?? this.pod.spec.securityContext?.[key] ?? fallback;
    const uid = pick('runAsUser', Number(u));
    const gid = pick('runAsGroup', Number(g ?? u));
    const nonRoot = c.securityContext?.runAsNonRoot ?? this.pod.spec.securityContext?.runAsNonRoot;
    if (nonRoot && uid === 0)
      throw new Error(`container ${c.name} must run as non-root but would run as root`);
    return { uid, gid };
  }

  private async run(c: ContainerState): Promise<void> {
    const image = this.ctx.images.get(c.spec.image);
    if (!image) {
      c.state = {
        waiting: {
          reason: 'ErrImageNeverPull',
          message: `image ${c.spec.image} is not loaded on node ${this.ctx.name}`,
        },
      };
      return;
    }
    const sandbox = this.sandbox;
    if (!sandbox) return;
    const mounts = (c.spec.volumeMounts ?? []).map((m) => ({
      hostPath: this.volumes.get(m.name) ?? '',
      mountPath: m.mountPath,
      readOnly: m.readOnly ?? false,
    }));
    const sc = c.spec.securityContext;
    c.running = await startContainer({
      sandboxPid: sandbox.pid,
      hostname: this.pod.metadata.name,
      image,
      argv: this.argv(c.spec, image),
      env: await this.env(c.spec, image),
      mounts,
      ...this.user(c.spec, image),
      readOnlyRoot: sc?.readOnlyRootFilesystem ?? false,
      noNewPrivs: sc?.allowPrivilegeEscalation === false,
      dir: join(this.dir, c.spec.name),
    });
    c.state = { running: { startedAt: now() } };
    c.started = !c.spec.startupProbe;
    c.ready = !c.spec.readinessProbe && c.started;
    this.watch(c, c.running);
    this.ctx.log.info('container started', {
      ...this.where,
      container: c.spec.name,
      pid: c.running.pid,
    });
  }

  private watch(c: ContainerState, running: RunningContainer): void {
    this.startProbes(c, running);
    void running.exited.then(async (code) => {
      for (const t of c.timers.splice(0)) clearTimeout(t);
      c.lastState = {
        terminated: {
          exitCode: code ?? 137,
          reason: code === 0 ? 'Completed' : 'Error',
          finishedAt: now(),
        },
      };
      c.ready = false;
      c.started = false;
      c.running = undefined;
      if (this.stopping) return;
      this.ctx.log.warn('container exited; restarting', {
        ...this.where,
        container: c.spec.name,
        code,
      });
      const backoff = Math.min(MAX_BACKOFF_MS, 10_000 * 2 ** c.restartCount);
      c.restartCount++;
      c.state = {
        waiting: {
          reason: 'CrashLoopBackOff',
          message: `back-off ${backoff / 1000}s restarting failed container`,
        },
      };
      await this.report();
      setTimeout(() => {
        if (!this.stopping) void this.run(c).then(() => this.report());
      }, backoff);
    });
  }

  private startProbes(c: ContainerState, running: RunningContainer): void {
    const ip = this.sandbox?.ip ?? '';
    const every = (
      probe: NonNullable<Container['livenessProbe']>,
      tick: (ok: boolean) => void,
    ): void => {
      let busy = false;
      const once = (): void => {
        if (busy || c.running !== running) return;
        busy = true;
        void probeOnce(ip, c.spec, probe).then((ok) => {
          busy = false;
          if (c.running === running) tick(ok);
        });
      };
      // First after initialDelaySeconds (at least a second, for the process to listen), then every period.
      const first = setTimeout(
        () => {
          once();
          c.timers.push(setInterval(once, (probe.periodSeconds ?? 10) * 1000));
        },
        Math.max(1, probe.initialDelaySeconds ?? 0) * 1000,
      );
      c.timers.push(first);
    };
    const counter = (
      probe: NonNullable<Container['livenessProbe']>,
      onFail: () => void,
      onOk: () => void,
    ) => {
      let failures = 0;
      every(probe, (ok) => {
        failures = ok ? 0 : failures + 1;
        if (ok) onOk();
        else if (failures >= (probe.failureThreshold ?? 3)) onFail();
      });
    };
    const restart = (why: string) => (): void => {
      if (!c.running) return;
      this.ctx.log.warn(`${why} probe failed; restarting the container`, {
        ...this.where,
        container: c.spec.name,
      });
      void c.running.stop(30_000);
    };
    const { startupProbe, livenessProbe, readinessProbe } = c.spec;
    if (startupProbe)
      counter(startupProbe, restart('startup'), () => void this.changed(() => (c.started = true)));
    if (livenessProbe)
      counter(
        livenessProbe,
        () => {
          if (c.started) restart('liveness')();
        },
        () => undefined,
      );
    if (readinessProbe)
      counter(
        readinessProbe,
        () => void this.changed(() => (c.ready = false)),
        () => void this.changed(() => (c.ready = c.started)),
      );
  }

  private async changed(change: () => void): Promise<void> {
    change();
    await this.report();
  }

  private status(): object {
    const ready = this.containers.every((c) => c.ready) ? 'True' : 'False';
    const condition = (type: string, status: string): object => ({
      type,
      status,
      lastTransitionTime: this.startTime,
    });
    const ip = this.sandbox?.ip;
    return {
      phase: 'Running',
      hostIP: this.ctx.hostIP,
      hostIPs: [{ ip: this.ctx.hostIP }],
      ...(ip ? { podIP: ip, podIPs: [{ ip }] } : {}),
      startTime: this.startTime,
      conditions: [
        condition('PodReadyToStartContainers', ip ? 'True' : 'False'),
        condition('Initialized', 'True'),
        condition('ContainersReady', ready),
        condition('Ready', ready),
        condition('PodScheduled', 'True'),
      ],
      containerStatuses: this.containers.map((c) => ({
        name: c.spec.name,
        image: c.spec.image,
        imageID: '',
        ...(c.running ? { containerID: `test-kubelet://${c.running.pid}` } : {}),
        ready: c.ready,
        started: c.started,
        restartCount: c.restartCount,
        state: c.state,
        ...(c.lastState ? { lastState: c.lastState } : {}),
      })),
    };
  }

  private async report(): Promise<void> {
    if (this.stopping) return;
    const status = this.status();
    const json = JSON.stringify(status);
    if (json === this.written) return;
    const { namespace, name } = this.pod.metadata;
    try {
      await rawJson(
        this.ctx.kc,
        'PATCH',
        `/api/v1/namespaces/${namespace}/pods/${name}/status`,
        { status },
        'application/strategic-merge-patch+json',
      );
      this.written = json;
    } catch (err) {
      this.ctx.log.warn('cannot write the pod status', {
        ...this.where,
        error: (err as Error).message,
      });
    }
  }

  private async end(): Promise<void> {
    const graceMs =
      (this.pod.metadata.deletionGracePeriodSeconds ??
        this.pod.spec.terminationGracePeriodSeconds ??
        30) * 1000;
    await Promise.all(
      this.containers.map(async (c) => {
        for (const t of c.timers.splice(0)) clearTimeout(t);
        await c.running?.stop(graceMs);
      }),
    );
    if (this.sandbox) destroySandbox(this.sandbox);
    const { namespace, name, uid } = this.pod.metadata;
    if (this.pod.metadata.deletionTimestamp) {
      // The grace period as a query parameter: the API server took it from the body of a DELETE sent this way.
      await rawJson(
        this.ctx.kc,
        'DELETE',
        `/api/v1/namespaces/${namespace}/pods/${name}?gracePeriodSeconds=0`,
        {
          apiVersion: 'v1',
          kind: 'DeleteOptions',
          gracePeriodSeconds: 0,
          preconditions: { uid },
        },
      ).catch((err: unknown) => {
        this.ctx.log.warn('cannot remove the pod', {
          ...this.where,
          error: (err as Error).message,
        });
      });
    }
    await rm(this.dir, { recursive: true, force: true }).catch(() => undefined);
    this.ctx.log.info('pod stopped', this.where);
  }
}
