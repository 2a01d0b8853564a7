// Nodes the size and shape a kubelet gives them, for benchmarks at fleet
// scale: a cloud node carries its instance labels, addresses, resources, four
// pressure conditions, the images it pulled and the kubelet's annotations, and
// weighs 10–30 KB once the API server adds managedFields. A benchmark with 1 KB
// Nodes would measure a cache and a relist far lighter than a real fleet's.
// Pure and seeded by the node's index, so two runs register the same fleet.

import { seededRandom } from '../seeded-random.js';

/** Images on a typical node: the system pods' and a handful of workloads', each by digest and tag. */
const IMAGE_REPOS = [
  'registry.k8s.io/kube-proxy',
  'registry.k8s.io/pause',
  'registry.k8s.io/coredns/coredns',
  'registry.k8s.io/metrics-server/metrics-server',
  'registry.k8s.io/sig-storage/csi-node-driver-registrar',
  'registry.k8s.io/sig-storage/livenessprobe',
  'registry.k8s.io/ingress-nginx/controller',
  'quay.io/prometheus/node-exporter',
  'quay.io/prometheus/prometheus',
  'quay.io/cilium/cilium',
  'quay.io/cilium/operator-generic',
  'docker.io/grafana/promtail',
  'docker.io/fluent/fluent-bit',
  'ghcr.io/livepatch-operator/livepatch-operator',
  'gcr.io/distroless/static-debian12',
  'docker.io/library/nginx',
  'docker.io/library/redis',
  'docker.io/library/postgres',
  'docker.io/bitnami/kafka',
  'docker.io/bitnami/zookeeper',
  'public.ecr.aws/aws-ec2/aws-node-termination-handler',
  'public.ecr.aws/ebs-csi-driver/aws-ebs-csi-driver',
  'mcr.microsoft.com/oss/kubernetes/azure-cloud-node-manager',
  'docker.io/envoyproxy/envoy',
  'docker.io/istio/proxyv2',
  'docker.io/istio/pilot',
  'quay.io/jetstack/cert-manager-controller',
  'quay.io/jetstack/cert-manager-webhook',
  'docker.io/datadog/agent',
  'docker.io/library/busybox',
  'docker.io/library/alpine',
  'docker.io/library/python',
  'docker.io/library/node',
  'docker.io/library/golang',
  'docker.io/library/openjdk',
  'docker.io/apache/spark',
  'docker.io/elastic/filebeat',
  'docker.io/velero/velero',
  'docker.io/kyverno/kyverno',
  'docker.io/openpolicyagent/gatekeeper',
] as const;

const ZONES = ['a', 'b', 'c'] as const;

const hex = (next: () => number, length: number): string =>
  Array.from({ length }, () => Math.floor(next() * 16).toString(16)).join('');

export interface NodeShape {
  readonly labels: Readonly<Record<string, string>>;
  readonly annotations: Readonly<Record<string, string>>;
  readonly spec: object;
  /** Status fields a kubelet reports beside Ready and nodeInfo (which the caller owns). */
  readonly status: {
    readonly addresses: readonly object[];
    readonly capacity: Readonly<Record<string, string>>;
    readonly allocatable: Readonly<Record<string, string>>;
    readonly conditions: readonly object[];
    readonly daemonEndpoints: object;
    readonly images: readonly object[];
  };
}

/** The zone a realistic node `index` lives in (three per region, round robin). */
export const zoneOf = (index: number): string => `us-east-1${ZONES[index % ZONES.length] ?? 'a'}`;

/** What a kubelet on a cloud instance reports about node `index`, at `now` (ISO time). */
export function realisticNode(index: number, now: string): NodeShape {
  const next = seededRandom(index + 1);
  const ip = `10.${(index >> 16) & 255}.${(index >> 8) & 255}.${index & 255}`;
  const instance = `i-0${hex(next, 16)}`;
  const pressure = (type: string, reason: string, message: string): object => ({
    type,
    status: 'False',
    reason,
    message,
    lastHeartbeatTime: now,
    lastTransitionTime: now,
  });
  return {
    labels: {
      'beta.kubernetes.io/arch': 'amd64',
      'beta.kubernetes.io/instance-type': 'm6i.2xlarge',
      'beta.kubernetes.io/os': 'linux',
      'failure-domain.beta.kubernetes.io/region': 'us-east-1',
      'failure-domain.beta.kubernetes.io/zone': zoneOf(index),
      'node.kubernetes.io/instance-type': 'm6i.2xlarge',
      'topology.kubernetes.io/region': 'us-east-1',
      'topology.kubernetes.io/zone': zoneOf(index),
      'topology.ebs.csi.aws.com/zone': zoneOf(index),
      'k8s.io/cloud-provider-aws': hex(next, 32),
      'eks.amazonaws.com/nodegroup': `workers-${index % 4}`,
      'eks.amazonaws.com/capacityType': index % 5 === 0 ? 'SPOT' : 'ON_DEMAND',
    },
    annotations: {
      'alpha.kubernetes.io/provided-node-ip': ip,
      'csi.volume.kubernetes.io/nodeid': JSON.stringify({ 'ebs.csi.aws.com': instance }),
      'node.alpha.kubernetes.io/ttl': '0',
      'volumes.kubernetes.io/controller-managed-attach-detach': 'true',
    },
    spec: {
      podCIDR: `100.${64 + ((index >> 8) & 63)}.${index & 255}.0/24`,
      podCIDRs: [`100.${64 + ((index >> 8) & 63)}.${index & 255}.0/24`],
    },
    status: {
      addresses: [
        { type: 'InternalIP', address: ip },
        { type: 'InternalDNS', address: `ip-${ip.replaceAll('.', '-')}.ec2.internal` },
        { type: 'Hostname', address: `ip-${ip.replaceAll('.', '-')}.ec2.internal` },
      ],
      capacity: {
        cpu: '8',
        'ephemeral-storage': '104845292Ki',
        'hugepages-1Gi': '0',
        'hugepages-2Mi': '0',
        memory: '32386544Ki',
        pods: '58',
      },
      allocatable: {
        cpu: '7910m',
        'ephemeral-storage': '95551679124',
        'hugepages-1Gi': '0',
        'hugepages-2Mi': '0',
        memory: '31369712Ki',
        pods: '58',
      },
      conditions: [
        pressure(
          'MemoryPressure',
          'KubeletHasSufficientMemory',
          'kubelet has sufficient memory available',
        ),
        pressure('DiskPressure', 'KubeletHasNoDiskPressure', 'kubelet has no disk pressure'),
        pressure('PIDPressure', 'KubeletHasSufficientPID', 'kubelet has sufficient PID available'),
      ],
      daemonEndpoints: { kubeletEndpoint: { Port: 10250 } },
      images: IMAGE_REPOS.map((repo) => {
        const tag = `v${1 + Math.floor(next() * 3)}.${Math.floor(next() * 30)}.${Math.floor(next() * 10)}`;
        return {
          names: [`${repo}@sha256:${hex(next, 64)}`, `${repo}:${tag}`],
          sizeBytes: Math.floor(5_000_000 + next() * 900_000_000),
        };
      }),
    },
  };
}
