// kube-apiserver's command line for the local control plane, and kubeconfigs
// for the identities that talk to it.
import { join } from 'node:path';
import type { ControlPlanePki, Pem } from './pki.js';

/**
 * 'apiserver': an API server alone (tests, demo, bench): RBAC, no
 * ServiceAccount admission (no controller-manager makes default
 * ServiceAccounts). 'cluster': what a cluster with a controller-manager and
 * kubelets runs: the ServiceAccount admission plugin mounts tokens into Pods,
 * the Node authorizer and NodeRestriction hold each kubelet to its own node.
 */
export type ApiserverMode = 'apiserver' | 'cluster';

export interface ApiserverNetwork {
  /** Where it listens (default 127.0.0.1). */
  readonly bindAddress: string;
  /** The address it advertises, and the service account issuer's host (default 127.0.0.1). */
  readonly advertiseAddress: string;
  /** More IP addresses in its serving certificate. */
  readonly extraSans: readonly string[];
}

export const LOOPBACK: ApiserverNetwork = {
  bindAddress: '127.0.0.1',
  advertiseAddress: '127.0.0.1',
  extraSans: [],
};

export interface PkiFiles {
  readonly ca: string;
  readonly servingCert: string;
  readonly servingKey: string;
  readonly saPublic: string;
  readonly saPrivate: string;
}

export interface ApiserverFlags {
  readonly dir: string;
  readonly port: number;
  readonly etcdUrl: string;
  readonly files: PkiFiles;
  readonly mode: ApiserverMode;
  readonly network: ApiserverNetwork;
}

function modeFlags(mode: ApiserverMode): string[] {
  if (mode === 'cluster')
    return ['--authorization-mode=Node,RBAC', '--enable-admission-plugins=NodeRestriction'];
  // No controller-manager creates default ServiceAccounts here.
  return ['--authorization-mode=RBAC', '--disable-admission-plugins=ServiceAccount'];
}

/**
 * Raised as large clusters raise them (3,000 + 1,000 at several thousand nodes), so that the 10,000
 * nodes do not queue behind the defaults (400 + 200, summed into API Priority
 * and Fairness' seats). The watch cache needs no flag: its size adapts to the
 * event rate, and --watch-cache-sizes only turns it off.
 */
const SCALE_FLAGS = ['--max-requests-inflight=3000', '--max-mutating-requests-inflight=1000'];

export function apiserverArgs(f: ApiserverFlags): string[] {
  const { files, network } = f;
  return [
    `--advertise-address=${network.advertiseAddress}`,
    `--bind-address=${network.bindAddress}`,
    `--secure-port=${f.port}`,
    `--cert-dir=${join(f.dir, 'certs')}`,
    `--tls-cert-file=${files.servingCert}`,
    `--tls-private-key-file=${files.servingKey}`,
    `--client-ca-file=${files.ca}`,
    `--etcd-servers=${f.etcdUrl}`,
    `--service-account-issuer=https://${network.advertiseAddress}:${f.port}`,
    `--service-account-key-file=${files.saPublic}`,
    `--service-account-signing-key-file=${files.saPrivate}`,
    '--service-cluster-ip-range=10.0.0.0/24',
    '--allow-privileged=true',
    // The endpoint reconciler refuses loopback addresses; nothing here needs the kubernetes Service's endpoints.
    '--endpoint-reconciler-type=none',
    ...SCALE_FLAGS,
    ...modeFlags(f.mode),
  ];
}

/**
 * A kubeconfig with a client certificate, written as JSON (which kubectl,
 * client-go and our own loader read like YAML): a process given it parses it
 * without loading a YAML parser, as an agent in a pod does with its service account.
 */
export function kubeconfigFile(server: string, ca: string, user: string, client: Pem): string {
  const b64 = (s: string): string => Buffer.from(s).toString('base64');
  const config = {
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [
      { name: 'livepatch-local', cluster: { server, 'certificate-authority-data': b64(ca) } },
    ],
    users: [
      {
        name: user,
        user: {
          'client-certificate-data': b64(client.cert),
          'client-key-data': b64(client.key),
        },
      },
    ],
    contexts: [{ name: 'livepatch-local', context: { cluster: 'livepatch-local', user } }],
    'current-context': 'livepatch-local',
  };
  return `${JSON.stringify(config, null, 2)}\n`;
}

export function adminKubeconfig(server: string, pki: ControlPlanePki): string {
  return kubeconfigFile(server, pki.ca.cert, 'livepatch-admin', pki.admin);
}
