// Installs (or updates) the project's CRDs and the admission policies that go
// with them, and waits until the API server serves the CRDs, so the first
// `kubectl apply` after start never races discovery.
import type { KubeConfig } from '../../src/kube/config.js';
import { allCrds } from '../../src/api/crds.js';
import { admissionPolicies } from '../../src/api/policies.js';
import { loadKubeConfig } from '../../src/kube/config.js';
import { RawApiError, rawJson, serverSideApply } from '../../src/kube/raw.js';
import { poll } from '../wait.js';

const TIMEOUT_MS = 60_000;
const CRD_PATH = '/apis/apiextensions.k8s.io/v1/customresourcedefinitions';

interface CrdStatus {
  status?: { conditions?: { type: string; status: string }[] };
}

async function served(kc: KubeConfig, name: string, listPath: string): Promise<boolean> {
  const crd = await rawJson<CrdStatus>(kc, 'GET', `${CRD_PATH}/${name}`);
  if (!crd.status?.conditions?.some((c) => c.type === 'Established' && c.status === 'True'))
    return false;
  try {
    await rawJson(kc, 'GET', `${listPath}?limit=1`);
    return true;
  } catch (err) {
    if (err instanceof RawApiError && err.code === 404) return false;
    throw err;
  }
}

export async function installCrds(kubeconfig: string): Promise<void> {
  const kc = loadKubeConfig(kubeconfig);
  const crds = allCrds();
  for (const crd of crds) {
    await serverSideApply(
      kc,
      `${CRD_PATH}/${crd.metadata?.name ?? ''}`,
      crd.toJSON(),
      'livepatch-operator-install',
    );
  }
  for (const policy of admissionPolicies()) {
    const plural =
      policy.kind === 'ValidatingAdmissionPolicy'
        ? 'validatingadmissionpolicies'
        : 'validatingadmissionpolicybindings';
    await serverSideApply(
      kc,
      `/apis/admissionregistration.k8s.io/v1/${plural}/${policy.metadata.name}`,
      policy,
      'livepatch-operator-install',
    );
  }
  const deadline = Date.now() + TIMEOUT_MS;
  for (const crd of crds) {
    const name = crd.metadata?.name ?? '';
    const listPath = `/apis/${crd.spec.group}/${crd.spec.versions[0]?.name ?? ''}/${crd.spec.names.plural}`;
    const left = Math.max(0, deadline - Date.now());
    const r = await poll(
      () => served(kc, name, listPath),
      (ok) => ok,
      left,
      { intervalMs: 200 },
    );
    if (!r.ok) throw new Error(`CRD ${name} was not served within ${TIMEOUT_MS / 1000}s`);
  }
}
