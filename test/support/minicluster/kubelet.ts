// A test kubelet for one simulated node: it registers the Node (Ready, with
// capacity for the scheduler and the kernel release the agent reads), watches
// the Pods bound to it, and runs each with a PodRunner. It talks to the API
// server as system:node:NAME, so the Node authorizer and NodeRestriction
// hold it to its own Node and Pods, as they hold a real kubelet.
import type { KubeConfig } from '../../../src/kube/config.js';
import { rawJson } from '../../../src/kube/raw.js';
import { Reflector } from '../../../src/kube/reflector.js';
import { isNotFound, patchStatus } from '../../../src/kube/resources.js';
import type { Logger } from '../../../src/log.js';
import type { UnpackedImage } from '../../../lab/image/unpack.js';
import type { Pod } from './pod-types.js';
import { PodRunner, type NodeContext } from './pod-runner.js';

export interface SimulatedNode {
  readonly name: string;
  readonly kernelVersion: string;
  readonly labels?: Readonly<Record<string, string>>;
}

export interface KubeletOptions {
  readonly node: SimulatedNode;
  readonly kc: KubeConfig;
  readonly dir: string;
  readonly hostIP: string;
  readonly images: ReadonlyMap<string, UnpackedImage>;
  readonly log: Logger;
}

interface Service {
  spec: { clusterIP: string; ports: { name?: string; port: number }[] };
}

async function register(o: KubeletOptions): Promise<void> {
  const { name, kernelVersion, labels } = o.node;
  await rawJson(o.kc, 'POST', '/api/v1/nodes', {
    apiVersion: 'v1',
    kind: 'Node',
    metadata: {
      name,
      labels: {
        'kubernetes.io/hostname': name,
        'kubernetes.io/os': 'linux',
        'kubernetes.io/arch': 'amd64',
        ...labels,
      },
    },
  });
  const at = new Date().toISOString();
  const capacity = { cpu: '4', memory: '8Gi', pods: '110', 'ephemeral-storage': '50Gi' };
  await patchStatus(
    o.kc,
    `/api/v1/nodes/${name}`,
    {
      capacity,
      allocatable: capacity,
      addresses: [
        { type: 'InternalIP', address: o.hostIP },
        { type: 'Hostname', address: name },
      ],
      conditions: [
        {
          type: 'Ready',
          status: 'True',
          reason: 'KubeletReady',
          message: 'test kubelet',
          lastHeartbeatTime: at,
          lastTransitionTime: at,
        },
      ],
      daemonEndpoints: { kubeletEndpoint: { Port: 10250 } },
      nodeInfo: {
        kernelVersion,
        osImage: 'Debian GNU/Linux 12 (bookworm)',
        operatingSystem: 'linux',
        architecture: 'amd64',
        containerRuntimeVersion: 'test-kubelet://1',
        kubeletVersion: 'v1.37.2',
        kubeProxyVersion: '',
        machineID: name,
        systemUUID: name,
        bootID: name,
      },
    },
    'livepatch-fleet-simulator',
  );
}

const LEASE_RENEW_MS = 10_000;

/** The node's heartbeat, as a kubelet renews it: the node lifecycle controller reads it. */
async function renewLease(o: KubeletOptions): Promise<void> {
  const path = `/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/${o.node.name}`;
  const spec = {
    holderIdentity: o.node.name,
    leaseDurationSeconds: 40,
    renewTime: new Date().toISOString().replace('Z', '000Z'),
  };
  try {
    await rawJson(o.kc, 'PATCH', path, { spec }, 'application/merge-patch+json');
  } catch (err) {
    if (!isNotFound(err)) throw err;
    await rawJson(o.kc, 'POST', '/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases', {
      apiVersion: 'coordination.k8s.io/v1',
      kind: 'Lease',
      metadata: { name: o.node.name, namespace: 'kube-node-lease' },
      spec,
    });
  }
}

export class Kubelet {
  private readonly runners = new Map<string, PodRunner>();
  private heartbeat: NodeJS.Timeout | undefined;
  private readonly reflector: Reflector<Pod>;
  private readonly ctx: NodeContext;
  private service: Record<string, string> | undefined;

  constructor(private readonly o: KubeletOptions) {
    this.ctx = {
      name: o.node.name,
      kc: o.kc,
      dir: o.dir,
      hostIP: o.hostIP,
      images: o.images,
      serviceEnv: () => this.serviceEnv(),
      log: o.log.child({ node: o.node.name }),
    };
    this.reflector = new Reflector<Pod>(o.kc, {
      path: '/api/v1/pods',
      fieldSelector: `spec.nodeName=${o.node.name}`,
      log: this.ctx.log,
      onChange: (name) => {
        this.sync(name);
      },
    });
  }

  async start(): Promise<void> {
    await register(this.o);
    await renewLease(this.o);
    this.heartbeat = setInterval(() => {
      renewLease(this.o).catch((err: unknown) => {
        this.ctx.log.warn('cannot renew the node lease', { error: (err as Error).message });
      });
    }, LEASE_RENEW_MS);
    this.reflector.start();
    await this.reflector.waitForSync();
  }

  /** Stops every container (no graceful Pod deletion: the cluster is going away). */
  async stop(): Promise<void> {
    clearInterval(this.heartbeat);
    this.reflector.stop();
    await Promise.all([...this.runners.values()].map((r) => r.terminate()));
  }

  logs(): string[] {
    return [...this.runners.values()].flatMap((r) => r.logs());
  }

  private sync(name: string): void {
    const pod = this.reflector.get(name);
    const runner = this.runners.get(name);
    if (runner && (!pod || runner.uid !== pod.metadata.uid)) {
      this.runners.delete(name);
      void runner.terminate();
    }
    if (!pod) return;
    const current = this.runners.get(name);
    if (current) {
      current.update(pod);
      return;
    }
    if (pod.metadata.deletionTimestamp) return;
    const fresh = new PodRunner(this.ctx, pod);
    this.runners.set(name, fresh);
    void fresh.start();
  }

  /** The kubernetes Service's variables, as a kubelet puts them in every container. */
  private async serviceEnv(): Promise<Record<string, string>> {
    if (this.service) return this.service;
    const svc = await rawJson<Service>(
      this.o.kc,
      'GET',
      '/api/v1/namespaces/default/services/kubernetes',
    );
    const ip = svc.spec.clusterIP;
    const port = String(svc.spec.ports.find((p) => p.name === 'https')?.port ?? 443);
    this.service = {
      KUBERNETES_SERVICE_HOST: ip,
      KUBERNETES_SERVICE_PORT: port,
      KUBERNETES_SERVICE_PORT_HTTPS: port,
      KUBERNETES_PORT: `tcp://${ip}:${port}`,
      [`KUBERNETES_PORT_${port}_TCP`]: `tcp://${ip}:${port}`,
      [`KUBERNETES_PORT_${port}_TCP_PROTO`]: 'tcp',
      [`KUBERNETES_PORT_${port}_TCP_PORT`]: port,
      [`KUBERNETES_PORT_${port}_TCP_ADDR`]: ip,
    };
    return this.service;
  }
}
