// Who the API server takes the caller to be (SelfSubjectReview, GA since
// Kubernetes 1.28), so a steering request can say who asked.
import type { KubeConfig } from './config.js';
import { rawJson } from './raw.js';

interface SelfSubjectReview {
  status?: { userInfo?: { username?: string } };
}

export type Identity =
  | { readonly kind: 'known'; readonly username: string }
  | { readonly kind: 'unknown'; readonly why: string };

/** The caller's user name; unknown (with the API server's answer) where it cannot tell, older or forbidden. */
export async function whoAmI(kc: KubeConfig): Promise<Identity> {
  try {
    const review = await rawJson<SelfSubjectReview>(
      kc,
      'POST',
      '/apis/authentication.k8s.io/v1/selfsubjectreviews',
      { apiVersion: 'authentication.k8s.io/v1', kind: 'SelfSubjectReview' },
    );
    const username = review.status?.userInfo?.username;
    return username
      ? { kind: 'known', username }
      : { kind: 'unknown', why: 'the API server named no user' };
  } catch (err) {
    return { kind: 'unknown', why: err instanceof Error ? err.message : String(err) };
  }
}
