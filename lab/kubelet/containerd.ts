// One containerd per node, each with its own root, state, socket and runc
// root, configured for this machine: cgroupfs (the kubelet's driver),
// restrict_oom_score_adj (containers may not lower their OOM score without
// CAP_SYS_RESOURCE, which the machine may withhold), no AppArmor profile, the
// harness's pause image, and the node's CNI bridge.
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { runCommand } from '../command.js';
import { startManaged, type Managed } from '../controlplane/processes.js';
import { poll } from '../wait.js';
import { access } from 'node:fs/promises';

/** Where Debian's containernetworking-plugins puts the plugins. */
export const CNI_BIN_DIR = '/usr/lib/cni';

/** Where containerd 1.6 keeps network namespace handles and shim sockets, whatever its config says. */
export const PRIVATE_RUNTIME_DIRS = ['/run/netns', '/run/containerd'];

export interface ContainerdPaths {
  readonly dir: string;
  readonly socket: string;
  readonly cniConfDir: string;
}

export function containerdPaths(dir: string): ContainerdPaths {
  return { dir, socket: join(dir, 'containerd.sock'), cniConfDir: join(dir, 'cni') };
}

function config(p: ContainerdPaths, sandboxImage: string): string {
  const cri = 'plugins."io.containerd.grpc.v1.cri"';
  const q = JSON.stringify;
  return `version = 2
root = ${q(join(p.dir, 'root'))}
state = ${q(join(p.dir, 'state'))}

[grpc]
  address = ${q(p.socket)}

[${cri}]
  sandbox_image = ${q(sandboxImage)}
  restrict_oom_score_adj = true
  disable_apparmor = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"

[${cri}.containerd]
  snapshotter = "overlayfs"
  default_runtime_name = "runc"

[${cri}.containerd.runtimes.runc]
  runtime_type = "io.containerd.runc.v2"

[${cri}.containerd.runtimes.runc.options]
  SystemdCgroup = false
  Root = ${q(join(p.dir, 'runc'))}

[${cri}.cni]
  bin_dir = ${q(CNI_BIN_DIR)}
  conf_dir = ${q(p.cniConfDir)}
  max_conf_num = 1

[plugins."io.containerd.internal.v1.opt"]
  path = ${q(join(p.dir, 'opt'))}
`;
}

export async function startContainerd(p: ContainerdPaths, sandboxImage: string): Promise<Managed> {
  await mkdir(p.dir, { recursive: true });
  const file = join(p.dir, 'config.toml');
  await writeFile(file, config(p, sandboxImage));
  const managed = startManaged(
    'containerd',
    'containerd',
    ['--config', file],
    join(p.dir, 'containerd.log'),
  );
  const up = await poll(
    () =>
      access(p.socket).then(
        () => true,
        () => false,
      ),
    (ok) => ok,
    30_000,
  );
  if (!up.ok) throw new Error(`containerd did not open ${p.socket} within 30s`);
  return managed;
}

/** Imports an OCI (or Docker) archive into the namespace the kubelet's Pods use. */
export async function importImage(p: ContainerdPaths, archive: string): Promise<void> {
  await runCommand('ctr', [
    '--address',
    p.socket,
    '--namespace',
    'k8s.io',
    'images',
    'import',
    archive,
  ]);
}
