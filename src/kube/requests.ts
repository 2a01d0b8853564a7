// Every request to the API server, told to whoever counts them (the
// controller's rest_client_requests_total), the way client-go counts its own:
// by method, status code ("<error>" when no answer came) and host.

export interface ApiRequest {
  readonly method: string;
  readonly code: string;
  readonly host: string;
}

type Listener = (request: ApiRequest) => void;

const listeners = new Set<Listener>();

/** Listens until the returned function is called. */
export function onApiRequest(listener: Listener): () => void {
  listeners.add(listener);
  return () => listeners.delete(listener);
}

/** `code` undefined: the request failed without an answer. */
export function apiRequestDone(method: string, url: URL, code: number | undefined): void {
  if (listeners.size === 0) return;
  const request = { method, code: code === undefined ? '<error>' : String(code), host: url.host };
  for (const listener of listeners) listener(request);
}
