// Finds or builds the binaries the local clusters run. kube-apiserver and etcd:
// KUBEBUILDER_ASSETS (a folder with both, as envtest users have) wins;
// otherwise lab/go/controlplane builds them. kube-controller-manager and
// kube-scheduler and the kubelet (the chart's integration test) come from the
// same module, so the same pinned Kubernetes release; helm from lab/go/helm,
// pinned too.
import { join } from 'node:path';
import type { Logger } from '../../src/log.js';
import { repositoryRoot } from '../../src/paths.js';
import { ensureGoBuild, isExecutable, type GoBuild } from './go-build.js';

export interface ControlPlaneAssets {
  readonly apiserver: string;
  readonly etcd: string;
  readonly origin: 'KUBEBUILDER_ASSETS' | 'cache' | 'built';
  readonly kubernetesVersion: string;
  readonly etcdVersion: string;
}

export interface ClusterComponents {
  readonly controllerManager: string;
  readonly scheduler: string;
}

export interface PinnedVersions {
  readonly kubernetes: string;
  readonly etcd: string;
}

export function controlPlaneModuleDir(): string {
  return join(repositoryRoot(), 'lab', 'go', 'controlplane');
}

export function pinnedVersions(goMod: string): PinnedVersions {
  const kubernetes = /^\s*k8s\.io\/kubernetes (v\S+)/m.exec(goMod)?.[1];
  const etcd = /^\s*go\.etcd\.io\/etcd\/server\/v3 (v\S+)/m.exec(goMod)?.[1];
  if (!kubernetes || !etcd)
    throw new Error('lab/go/controlplane/go.mod must require k8s.io/kubernetes and etcd server');
  return { kubernetes, etcd };
}

function helmVersion(goMod: string): string {
  const version = /^\s*helm\.sh\/helm\/v3 (v\S+)/m.exec(goMod)?.[1];
  if (!version) throw new Error('lab/go/helm/go.mod must require helm.sh/helm/v3');
  return version;
}

/** What `kube-apiserver --version` and the others report: the pinned release, as a release build would. */
function kubernetesLdflags(goMod: string): string {
  const version = pinnedVersions(goMod).kubernetes;
  const [, major = '', minor = ''] = /^v(\d+)\.(\d+)/.exec(version) ?? [];
  const values = { gitVersion: version, gitMajor: major, gitMinor: minor, gitTreeState: 'clean' };
  const pkgs = ['k8s.io/component-base/version', 'k8s.io/client-go/pkg/version'];
  return [
    '-s -w',
    ...pkgs.flatMap((pkg) => Object.entries(values).map(([k, v]) => `-X ${pkg}.${k}=${v}`)),
  ].join(' ');
}

/** helm's own Makefile flags: its version, and the Kubernetes release `helm template` assumes. */
function helmLdflags(goMod: string): string {
  const clientGo = /^\s*k8s\.io\/client-go v0\.(\d+)\./m.exec(goMod)?.[1] ?? '';
  const v3 = 'helm.sh/helm/v3';
  return [
    '-s -w',
    `-X ${v3}/internal/version.version=${helmVersion(goMod)}`,
    `-X ${v3}/internal/version.gitTreeState=clean`,
    ...['pkg/lint/rules', 'pkg/chartutil'].flatMap((pkg) => [
      `-X ${v3}/${pkg}.k8sVersionMajor=1`,
      `-X ${v3}/${pkg}.k8sVersionMinor=${clientGo}`,
    ]),
  ].join(' ');
}

const CONTROL_PLANE_FILES = ['go.mod', 'go.sum', 'etcd/main.go'];

function controlPlaneBuild(packages: readonly string[]): GoBuild {
  return {
    moduleDir: controlPlaneModuleDir(),
    files: CONTROL_PLANE_FILES,
    cacheName: (goMod) => {
      const v = pinnedVersions(goMod);
      return join('controlplane', `kubernetes-${v.kubernetes}-etcd-${v.etcd}`);
    },
    ldflags: kubernetesLdflags,
    packages,
  };
}

const HELM_BUILD: GoBuild = {
  moduleDir: join(repositoryRoot(), 'lab', 'go', 'helm'),
  files: ['go.mod', 'go.sum'],
  cacheName: (goMod) => join('helm', `helm-${helmVersion(goMod)}`),
  ldflags: helmLdflags,
  packages: ['helm.sh/helm/v3/cmd/helm'],
};

async function fromKubebuilderAssets(dir: string): Promise<ControlPlaneAssets> {
  const apiserver = join(dir, 'kube-apiserver');
  const etcd = join(dir, 'etcd');
  for (const binary of [apiserver, etcd]) {
    if (!(await isExecutable(binary))) {
      throw new Error(
        `KUBEBUILDER_ASSETS=${dir} has no executable ${binary}; point it at a folder with kube-apiserver and etcd, or unset it to build them`,
      );
    }
  }
  return {
    apiserver,
    etcd,
    origin: 'KUBEBUILDER_ASSETS',
    kubernetesVersion: 'external',
    etcdVersion: 'external',
  };
}

export async function ensureControlPlaneAssets(log: Logger): Promise<ControlPlaneAssets> {
  const external = process.env['KUBEBUILDER_ASSETS'];
  if (external) return fromKubebuilderAssets(external);
  const b = controlPlaneBuild(['./etcd', 'k8s.io/kubernetes/cmd/kube-apiserver']);
  const { dir, built, goMod } = await ensureGoBuild(b, log);
  const versions = pinnedVersions(goMod);
  return {
    apiserver: join(dir, 'kube-apiserver'),
    etcd: join(dir, 'etcd'),
    origin: built ? 'built' : 'cache',
    kubernetesVersion: versions.kubernetes,
    etcdVersion: versions.etcd,
  };
}

/** kube-controller-manager and kube-scheduler of the pinned release (built on first use). */
export async function ensureClusterComponents(log: Logger): Promise<ClusterComponents> {
  const { dir } = await ensureGoBuild(
    controlPlaneBuild([
      'k8s.io/kubernetes/cmd/kube-controller-manager',
      'k8s.io/kubernetes/cmd/kube-scheduler',
    ]),
    log,
  );
  return {
    controllerManager: join(dir, 'kube-controller-manager'),
    scheduler: join(dir, 'kube-scheduler'),
  };
}

/** The kubelet of the pinned release (built on first use). */
export async function ensureKubelet(log: Logger): Promise<string> {
  const { dir } = await ensureGoBuild(controlPlaneBuild(['k8s.io/kubernetes/cmd/kubelet']), log);
  return join(dir, 'kubelet');
}

/** helm 3, pinned in lab/go/helm/go.mod (built on first use). */
export async function ensureHelm(log: Logger): Promise<string> {
  const { dir } = await ensureGoBuild(HELM_BUILD, log);
  return join(dir, 'helm');
}
