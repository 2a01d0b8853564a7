// Which proxy requests to the API server go through, chosen as kubectl (Go's
// net/http) chooses it, and the agent that tunnels through it. A kubeconfig
// cluster's proxy-url serves every request to that cluster; otherwise
// HTTPS_PROXY (HTTP_PROXY for an http:// server) unless NO_PROXY names the
// host, and never for localhost or a loopback address.
import type * as Http from 'node:http';
import { BlockList, isIP } from 'node:net';
import type { Duplex } from 'node:stream';
import type { ConnectionOptions as TlsOptions } from 'node:tls';

// Taken as transport.ts takes them, without the ESM namespace of node:http.
const http = process.getBuiltinModule('node:http');
const https = process.getBuiltinModule('node:https');
const tls = process.getBuiltinModule('node:tls');

const env = (e: NodeJS.ProcessEnv, name: string): string | undefined =>
  e[name] || e[name.toLowerCase()] || undefined;

/** A proxy's address as written: a bare host:port means http://. */
function proxyUrl(text: string): URL {
  const url = new URL(/^[a-z][a-z0-9+.-]*:\/\//i.test(text) ? text : `http://${text}`);
  if (url.protocol !== 'http:')
    throw new Error(
      `proxy ${url.protocol}//${url.host}: only http:// proxies are supported (CONNECT tunnels)`,
    );
  return url;
}

/** The host without IPv6 brackets, lower case. */
const bareHost = (url: URL): string => url.hostname.replace(/^\[(.*)\]$/, '$1').toLowerCase();

const defaultPort = (url: URL): string => url.port || (url.protocol === 'https:' ? '443' : '80');

function isLoopback(host: string): boolean {
  if (host === 'localhost') return true;
  const loopback = new BlockList();
  loopback.addSubnet('127.0.0.0', 8, 'ipv4');
  loopback.addAddress('::1', 'ipv6');
  const family = isIP(host);
  return family !== 0 && loopback.check(host, family === 6 ? 'ipv6' : 'ipv4');
}

/** One NO_PROXY entry: `*`, an IP, a CIDR, or a domain (`.example.com` only below it), each with an optional :port. */
function excludedBy(entry: string, host: string, port: string): boolean {
  if (entry === '*') return true;
  const cidr = /^(.+)\/(\d+)$/.exec(entry);
  if (cidr) {
    const [, net = '', bits = '0'] = cidr;
    const family = isIP(host);
    if (family === 0 || isIP(net) !== family) return false;
    const list = new BlockList();
    const type = family === 6 ? 'ipv6' : 'ipv4';
    list.addSubnet(net, Number(bits), type);
    return list.check(host, type);
  }
  const withPort = /^(\[[^\]]+\]|[^:]+):(\d+)$/.exec(entry);
  const name = (withPort?.[1] ?? entry).replace(/^\[(.*)\]$/, '$1');
  if (withPort && withPort[2] !== port) return false;
  if (isIP(name)) return name === host;
  const domain = name.replace(/^\*\./, '.');
  if (domain.startsWith('.')) return host.endsWith(domain);
  return host === domain || host.endsWith(`.${domain}`);
}

/** The proxy for requests to `server`, or undefined to connect directly. */
export function proxyFor(
  server: URL,
  clusterProxyUrl: string | undefined,
  environment: NodeJS.ProcessEnv,
): URL | undefined {
  if (clusterProxyUrl) return proxyUrl(clusterProxyUrl);
  const chosen = env(environment, server.protocol === 'https:' ? 'HTTPS_PROXY' : 'HTTP_PROXY');
  if (!chosen) return undefined;
  const host = bareHost(server);
  if (isLoopback(host)) return undefined;
  const port = defaultPort(server);
  const noProxy = (env(environment, 'NO_PROXY') ?? '')
    .split(',')
    .map((e) => e.trim().toLowerCase())
    .filter((e) => e !== '');
  return noProxy.some((e) => excludedBy(e, host, port)) ? undefined : proxyUrl(chosen);
}

type Connected = (err: Error | null, stream?: Duplex) => void;

/** Opens a CONNECT tunnel to options' host:port through `proxy`, then hands the socket on. */
function tunnel(proxy: URL, options: Http.ClientRequestArgs, done: Connected): void {
  const host = options.host ?? options.hostname ?? 'localhost';
  const target = `${isIP(host) === 6 ? `[${host}]` : host}:${String(options.port)}`;
  const user = decodeURIComponent(proxy.username);
  const credentials = `${user}:${decodeURIComponent(proxy.password)}`;
  const auth = user
    ? { 'Proxy-Authorization': `Basic ${Buffer.from(credentials).toString('base64')}` }
    : {};
  const req = http.request({
    host: bareHost(proxy),
    port: defaultPort(proxy),
    method: 'CONNECT',
    path: target,
    headers: { Host: target, ...auth },
    agent: false,
  });
  req.once('connect', (res, socket) => {
    if (res.statusCode === 200) {
      done(null, socket);
      return;
    }
    socket.destroy();
    done(new Error(`proxy ${proxy.host} refused a tunnel to ${target}: HTTP ${res.statusCode}`));
  });
  req.once('error', (err) => {
    done(new Error(`proxy ${proxy.host}: ${err.message}`));
  });
  req.end();
}

/** An agent whose every connection is a tunnel through `proxy`; TLS to the API server runs inside it. */
export function tunnelAgent(proxy: URL, server: URL): Http.Agent {
  if (server.protocol !== 'https:')
    return new (class extends http.Agent {
      override createConnection(options: Http.ClientRequestArgs, callback: Connected): undefined {
        tunnel(proxy, options, callback);
      }
    })({ keepAlive: true });
  return new (class extends https.Agent {
    override createConnection(options: Http.ClientRequestArgs, callback: Connected): undefined {
      tunnel(proxy, options, (err, socket) => {
        if (err || !socket) callback(err);
        else callback(null, tls.connect({ ...(options as TlsOptions), socket }));
      });
    }
  })({ keepAlive: true });
}
