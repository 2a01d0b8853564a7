// The controller's view of a Node: the little of it that targeting and the
// health gate read, made once per Node object. Its own module so that
// targets.ts and bake.ts both read it without importing each other.
import type { KernelRelease, NodeName } from '../api/names.js';
import type { NodeObject } from '../kube/resources.js';

/** What the controller needs to know of a Node. */
export interface NodeFacts {
  readonly name: NodeName;
  readonly labels: Readonly<Record<string, string>>;
  readonly kernel?: KernelRelease;
  readonly ready: boolean;
  /** The kubelet's boot ID: it changes when the node reboots. */
  readonly bootID?: string;
}

export function nodeFacts(node: NodeObject): NodeFacts {
  const kernel = node.status?.nodeInfo?.kernelVersion;
  const bootID = node.status?.nodeInfo?.bootID;
  return {
    name: node.metadata.name as NodeName,
    labels: node.metadata.labels ?? {},
    ...(kernel ? { kernel: kernel as KernelRelease } : {}),
    ...(bootID ? { bootID } : {}),
    ready: node.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ?? false,
  };
}
