// The node's own LivePatchNode: created by its agent (owned by the Node, so
// it goes with the Node), and the agent's condition on it.
import type { KubeConfig } from '../../src/kube/config.js';
import { API_VERSION, FIELD_MANAGER, LIVEPATCH_NODE } from '../../src/api/constants.js';
import type { Condition, LivePatchNode } from '../../src/api/generated/types.js';
import type { NodeName } from '../../src/api/names.js';
import { rawJson } from '../../src/kube/raw.js';
import {
  getOrUndefined,
  isConflict,
  patchStatus,
  PATHS,
  type NodeObject,
} from '../../src/kube/resources.js';
import type { Logger } from '../../src/log.js';

export const livePatchNodePath = (node: NodeName): string => `${PATHS.livePatchNodes}/${node}`;

export async function ensureLivePatchNode(
  kc: KubeConfig,
  node: NodeName,
  log: Logger,
): Promise<void> {
  if (await getOrUndefined<LivePatchNode>(kc, livePatchNodePath(node))) return;
  const owner = await rawJson<NodeObject>(kc, 'GET', `${PATHS.nodes}/${node}`);
  const body = {
    apiVersion: API_VERSION,
    kind: LIVEPATCH_NODE.kind,
    metadata: {
      name: node,
      ownerReferences: [
        {
          apiVersion: 'v1',
          kind: 'Node',
          name: owner.metadata.name,
          uid: owner.metadata.uid ?? '',
        },
      ],
    },
    spec: {},
  };
  try {
    await rawJson(kc, 'POST', PATHS.livePatchNodes, body);
    log.info('created LivePatchNode', { node });
  } catch (err) {
    if (!isConflict(err)) throw err;
  }
}

/** Puts the reason the agent will not run where `kubectl get/describe livepatchnode` shows it. */
export async function reportAgentRefusal(
  kc: KubeConfig,
  node: NodeName,
  reason: string,
  message: string,
  log: Logger,
): Promise<void> {
  await ensureLivePatchNode(kc, node, log);
  const ready: Condition = {
    type: 'Ready',
    status: 'False',
    reason,
    message,
    lastTransitionTime: new Date().toISOString(),
  };
  await patchStatus(kc, livePatchNodePath(node), { conditions: [ready] }, FIELD_MANAGER.agent);
}
