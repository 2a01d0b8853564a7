// One way to reach the API server for every component: an explicit kubeconfig,
// else $KUBECONFIG / ~/.kube/config, else the in-cluster service account.
import { KubeConfig } from '@kubernetes/client-node';

export function loadKubeConfig(kubeconfigPath?: string): KubeConfig {
  const kc = new KubeConfig();
  if (kubeconfigPath) kc.loadFromFile(kubeconfigPath);
  else kc.loadFromDefault();
  return kc;
}
