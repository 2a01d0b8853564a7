// kube-controller-manager and kube-scheduler of the pinned release, each with
// its own identity, as kubeadm runs them: the controller-manager gives every
// controller its own service account (--use-service-account-credentials), so
// the bootstrap RBAC roles of a real cluster apply.
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { ClusterComponents } from './assets.js';
import { kubeconfigFile } from './apiserver.js';
import type { LocalControlPlane } from './controlplane.js';
import { issueClientCertificate } from './pki.js';
import { startManaged, startWatchdog, stopManaged, type Managed } from './processes.js';

/**
 * What this chart and these tests need: workloads, garbage collection,
 * namespaces, service accounts, the node lifecycle (it lifts the not-ready
 * taint new Nodes get once their kubelet reports Ready and renews its Lease),
 * PodDisruptionBudget status, and ClusterRole aggregation into view and edit.
 */
const CONTROLLERS = [
  'node-lifecycle-controller',
  'deployment-controller',
  'replicaset-controller',
  'daemonset-controller',
  'garbage-collector-controller',
  'namespace-controller',
  'serviceaccount-controller',
  'root-ca-certificate-publisher-controller',
  'disruption-controller',
  'clusterrole-aggregation-controller',
];

/** A kubeconfig file for `user` (a client certificate of the cluster's CA). */
export async function identityKubeconfig(
  plane: LocalControlPlane,
  file: string,
  user: string,
  groups: readonly string[] = [],
): Promise<string> {
  const cert = await issueClientCertificate(plane.pki, user, groups);
  const path = join(plane.dir, file);
  await writeFile(path, kubeconfigFile(plane.server, plane.pki.ca.cert, user, cert), {
    mode: 0o600,
  });
  return path;
}

export interface RunningComponents {
  stop(): Promise<void>;
}

export async function startComponents(
  plane: LocalControlPlane,
  bins: ClusterComponents,
): Promise<RunningComponents> {
  const cm = await identityKubeconfig(
    plane,
    'controller-manager.kubeconfig',
    'system:kube-controller-manager',
  );
  const scheduler = await identityKubeconfig(
    plane,
    'scheduler.kubeconfig',
    'system:kube-scheduler',
  );
  const started: Managed[] = [
    startManaged(
      'kube-controller-manager',
      bins.controllerManager,
      [
        `--kubeconfig=${cm}`,
        '--secure-port=0',
        '--leader-elect=false',
        '--use-service-account-credentials=true',
        `--root-ca-file=${join(plane.dir, 'ca.crt')}`,
        `--controllers=${CONTROLLERS.join(',')}`,
      ],
      join(plane.dir, 'kube-controller-manager.log'),
    ),
    startManaged(
      'kube-scheduler',
      bins.scheduler,
      [`--kubeconfig=${scheduler}`, '--secure-port=0', '--leader-elect=false'],
      join(plane.dir, 'kube-scheduler.log'),
    ),
  ];
  const watchdog = startWatchdog(plane.dir, started);
  return {
    stop: async () => {
      for (const p of started) await stopManaged(p);
      watchdog.kill();
    },
  };
}
