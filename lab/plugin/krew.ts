// krew and its manifest validator, pinned in lab/go/krew and built from the Go
// module proxy on first use: the release's manifest is checked and installed by
// the tool that reads it.
import { join } from 'node:path';
import type { Logger } from '../../src/log.js';
import { repositoryRoot } from '../../src/paths.js';
import { ensureGoBuild, type GoBuild } from '../controlplane/go-build.js';

function krewVersion(goMod: string): string {
  const version = /^\s*sigs\.k8s\.io\/krew (v\S+)/m.exec(goMod)?.[1];
  if (!version) throw new Error('lab/go/krew/go.mod must require sigs.k8s.io/krew');
  return version;
}

const KREW_BUILD: GoBuild = {
  moduleDir: join(repositoryRoot(), 'lab', 'go', 'krew'),
  files: ['go.mod', 'go.sum'],
  cacheName: (goMod) => join('krew', `krew-${krewVersion(goMod)}`),
  ldflags: (goMod) => `-s -w -X sigs.k8s.io/krew/internal/version.gitTag=${krewVersion(goMod)}`,
  packages: ['sigs.k8s.io/krew/cmd/krew', 'sigs.k8s.io/krew/cmd/validate-krew-manifest'],
};

export interface Krew {
  /** Run as `kubectl krew` when on PATH under the name kubectl-krew. */
  readonly krew: string;
  readonly validator: string;
}

export async function ensureKrew(log: Logger): Promise<Krew> {
  const { dir } = await ensureGoBuild(KREW_BUILD, log);
  return { krew: join(dir, 'krew'), validator: join(dir, 'validate-krew-manifest') };
}
