// http and https request functions, taken with process.getBuiltinModule: an
// ESM `import` of node:http builds the module's whole namespace, whose lazy
// getters (WebSocket, EventSource...) load undici, about 8 MiB of RSS that no
// call here uses.
import type * as Http from 'node:http';

const http = process.getBuiltinModule('node:http');
const https = process.getBuiltinModule('node:https');

/** http.request or https.request, by the URL's scheme. */
export function send(
  url: URL,
  opts: Http.RequestOptions,
  onResponse: (res: Http.IncomingMessage) => void,
): Http.ClientRequest {
  return url.protocol === 'https:'
    ? https.request(url, opts, onResponse)
    : http.request(url, opts, onResponse);
}
