// What `kubectl livepatch pause`, `resume`, `abort` and `retry` write: the
// LivePatch's spec and annotations, never its status. abort and retry decide
// in steer.ts (pure) and write here with the resourceVersion they read.
import { FIELD_MANAGER, STEERING_ANNOTATIONS } from '../api/constants.js';
import type { LivePatch } from '../api/generated/types.js';
import type { KubeConfig } from '../kube/config.js';
import { rawJson } from '../kube/raw.js';
import { isConflict, mergePatch, PATHS } from '../kube/resources.js';
import { whoAmI } from '../kube/whoami.js';
import { pauseNote, type Steer } from './steer.js';

export async function setPaused(kc: KubeConfig, name: string, paused: boolean): Promise<string> {
  const written = await mergePatch<LivePatch>(
    kc,
    `${PATHS.livePatches}/${name}`,
    { spec: { rollout: { paused } } },
    FIELD_MANAGER.plugin,
  );
  return `livepatch.livepatch.io/${name} ${paused ? 'paused' : 'resumed'}\n${pauseNote(written)}`;
}

/** A steering decision that refused: the plugin says why and exits 3. */
export class Refused extends Error {
  override readonly name = 'Refused';
}

const STEER_ATTEMPTS = 3;

/**
 * Reads, decides, writes with the resourceVersion read; a conflict means the
 * LivePatch changed in between (the controller wrote its status), so it is
 * read and decided again.
 */
export async function steer(
  kc: KubeConfig,
  name: string,
  decide: (lp: LivePatch) => Steer,
): Promise<string> {
  const path = `${PATHS.livePatches}/${name}`;
  for (let attempt = 1; ; attempt++) {
    const decision = decide(await rawJson<LivePatch>(kc, 'GET', path));
    if (decision.kind === 'refuse') throw new Refused(`refused: ${decision.message}`);
    try {
      const written = await mergePatch<LivePatch>(kc, path, decision.patch, FIELD_MANAGER.plugin);
      return decision.done(written);
    } catch (err) {
      if (!isConflict(err) || attempt >= STEER_ATTEMPTS) throw err;
    }
  }
}

/** Who is asking, for livepatch.io/requested-by; a note on stderr when the API server cannot say. */
export async function requester(kc: KubeConfig): Promise<{ by?: string }> {
  const me = await whoAmI(kc);
  if (me.kind === 'known') return { by: me.username };
  process.stderr.write(
    `note: the API server did not say who you are (${me.why}); ${STEERING_ANNOTATIONS.requestedBy} stays unset\n`,
  );
  return {};
}
