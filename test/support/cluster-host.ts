// What the image test and the chart's cluster (lab/kubelet) need from this
// machine: root (kubelets, namespaces, chroot), iproute2 and util-linux for
// the namespaces, containerd, runc and the CNI plugins for the Pods, and apt
// with Debian's archive keyring to build the image. Run as root on Debian, missing packages are installed with apt-get;
// elsewhere these tests are skipped with one line saying what is missing,
// unless LIVEPATCH_CLUSTER_TESTS=require (.ci/run sets it): then a skip fails.
import { DEBIAN_KEYRING } from '../../lab/debian.js';
import { ensureHostPackages, type HostNeeds } from '../../lab/host-packages.js';
import { CNI_BIN_DIR } from '../../lab/kubelet/containerd.js';
import { createLogger } from '../../src/log.js';

/** Command (or file) → the Debian package that brings it. */
const NEEDS: HostNeeds = {
  ip: 'iproute2',
  unshare: 'util-linux',
  nsenter: 'util-linux',
  setpriv: 'util-linux',
  mount: 'mount',
  containerd: 'containerd',
  ctr: 'containerd',
  runc: 'runc',
  [`${CNI_BIN_DIR}/bridge`]: 'containernetworking-plugins',
  [`${CNI_BIN_DIR}/host-local`]: 'containernetworking-plugins',
  [`${CNI_BIN_DIR}/loopback`]: 'containernetworking-plugins',
  chroot: 'coreutils',
  tar: 'tar',
  'dpkg-deb': 'dpkg',
  'apt-get': 'apt',
  [DEBIAN_KEYRING]: 'debian-archive-keyring',
};

let problem: Promise<string | undefined> | undefined;

/** Why this machine cannot run the image and cluster tests, or undefined when it can. */
export function clusterHostProblem(): Promise<string | undefined> {
  problem ??= (async () => {
    if (process.getuid?.() !== 0) return 'they need root (kubelets, namespaces, chroot)';
    const log = createLogger({ component: 'cluster-host', format: 'text', level: 'warn' });
    return ensureHostPackages(NEEDS, log, 'the image and cluster tests');
  })();
  return problem;
}

/** Set by .ci/run: there, a skipped image or cluster test is a failure. */
export function clusterTestsRequired(): boolean {
  return process.env['LIVEPATCH_CLUSTER_TESTS'] === 'require';
}
