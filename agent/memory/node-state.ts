// The agent's memory on the node itself: the patches it was last asked for
// (with their stall timeouts), what it last worked out about them (with the
// time each transition began), and the facts about its Node it checked. The
// kernel says neither when a transition began nor which timeout applies, so an
// agent that starts while the API server is unreachable guards the
// transitions already in the kernel from this file, and reports once the
// server answers. A small JSON file, replaced atomically when it changes.
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { DesiredPatch, ObservedPatch } from '../../src/api/generated/types.js';
import type { NodeName } from '../../src/api/names.js';
import type { Logger } from '../../src/log.js';

/** Which machine and kernel this Node is, as read from it when the API answered: enough to start again without it. */
export interface NodeIdentity {
  readonly kernelVersion?: string;
  readonly providerID?: string;
  /** This boot's ID, read from the Node only: a saved one would be an earlier boot's, so it is never restored. */
  readonly bootID?: string;
}

export interface NodeState {
  readonly node: NodeName;
  readonly facts: NodeIdentity;
  readonly desired: readonly DesiredPatch[];
  readonly patches: readonly ObservedPatch[];
}

const VERSION = 1;

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** The file's contents when they are a state of this node; anything else is ignored. */
function parseState(text: string, node: NodeName): NodeState | undefined {
  const data: unknown = JSON.parse(text);
  if (!isRecord(data) || data['version'] !== VERSION || data['node'] !== node) return undefined;
  const { facts, desired, patches } = data;
  if (!isRecord(facts) || !Array.isArray(desired) || !Array.isArray(patches)) return undefined;
  const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);
  const kernelVersion = str(facts['kernelVersion']);
  const providerID = str(facts['providerID']);
  return {
    node,
    facts: { ...(kernelVersion ? { kernelVersion } : {}), ...(providerID ? { providerID } : {}) },
    desired: desired as DesiredPatch[],
    patches: patches as ObservedPatch[],
  };
}

export class NodeStateFile {
  private saved: string | undefined;
  private failing = false;
  /** Set by whoever read the Node (or took them from the last save); kept in every save. */
  facts: NodeIdentity = {};

  constructor(
    readonly path: string,
    private readonly node: NodeName,
    private readonly log: Logger,
  ) {}

  /** The last saved state of this node, or undefined when there is none (or it cannot be read). */
  async load(): Promise<NodeState | undefined> {
    let text: string;
    try {
      text = await readFile(this.path, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT')
        this.log.warn('cannot read the node-local state', {
          node: this.node,
          path: this.path,
          error: (err as Error).message,
        });
      return undefined;
    }
    try {
      const state = parseState(text, this.node);
      if (!state) return undefined;
      this.saved = text;
      // Facts read from the Node since win; until then, the saved ones are the best known.
      if (Object.keys(this.facts).length === 0) this.facts = state.facts;
      return state;
    } catch (err) {
      this.log.warn('ignoring a node-local state that is not JSON', {
        node: this.node,
        path: this.path,
        error: (err as Error).message,
      });
      return undefined;
    }
  }

  /** Never throws: the guard goes on without its memory, and says so once. */
  async save(desired: readonly DesiredPatch[], patches: readonly ObservedPatch[]): Promise<void> {
    const text = JSON.stringify({
      version: VERSION,
      node: this.node,
      facts: this.facts,
      desired,
      patches,
    });
    if (text === this.saved) return;
    try {
      await mkdir(dirname(this.path), { recursive: true });
      const tmp = `${this.path}.tmp-${process.pid}`;
      await writeFile(tmp, text, { mode: 0o600 });
      await rename(tmp, this.path);
      this.saved = text;
      this.failing = false;
    } catch (err) {
      if (!this.failing)
        this.log.warn(
          'cannot save the node-local state; an agent restarted without the API will not know it',
          {
            node: this.node,
            path: this.path,
            error: (err as Error).message,
          },
        );
      this.failing = true;
    }
  }
}
