// One way to reach the API server for every component: an explicit kubeconfig,
// else the files $KUBECONFIG lists, merged as kubectl merges them, else
// ~/.kube/config, else the in-cluster service account (the same order as
// client-go and client-node). Our own small loader rather than client-node's
// KubeConfig: importing client-node costs a process about 85 MiB of RSS, and
// every node's agent would pay it for these few fields. A kubeconfig whose user
// runs an exec or auth-provider plugin is handed to client-node, loaded only
// then: that is where its code serves.
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { homedir } from 'node:os';
import { delimiter, join } from 'node:path';
import type { Agent, OutgoingHttpHeaders } from 'node:http';
import type { RequestOptions } from 'node:https';
import { mergeKubeconfigs, type Entry, type KubeconfigFile } from './kubeconfig-merge.js';
import { proxyFor, tunnelAgent } from './proxy.js';

/** Where requests go, and what each one carries (TLS settings, credentials). */
export interface KubeConfig {
  /** e.g. https://10.96.0.1:443 */
  readonly server: string;
  /** Sets TLS and credentials on one request's options. */
  authorize(opts: RequestOptions): Promise<void>;
}

const SERVICE_ACCOUNT = '/var/run/secrets/kubernetes.io/serviceaccount';
/** Bound service-account tokens rotate: read the file again this often, as client-go does. */
const TOKEN_REREAD_MS = 60_000;

const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);

/** Inline `*-data` (base64) or a file named by the plain key (absolute once merged). */
function material(entry: Entry, key: string): Buffer | undefined {
  const inline = str(entry[`${key}-data`]);
  if (inline) return Buffer.from(inline, 'base64');
  const path = str(entry[key]);
  return path ? readFileSync(path) : undefined;
}

/** Parses YAML; the in-cluster agent never needs it, so it is loaded only then unless the caller brings it. */
export type YamlParser = (text: string) => unknown;

function parseFile(path: string, parseYaml: YamlParser | undefined): KubeconfigFile {
  const text = readFileSync(path, 'utf8');
  try {
    return JSON.parse(text) as KubeconfigFile;
  } catch {
    const yaml =
      parseYaml ?? (createRequire(import.meta.url)('yaml') as { parse: YamlParser }).parse;
    return yaml(text) ?? {};
  }
}

interface Credentials {
  readonly token?: string;
  readonly tokenFile?: string;
  /** A whole `Basic …` Authorization value. */
  readonly basic?: string;
}

class StaticConfig implements KubeConfig {
  private token: { value: string; readAt: number } | undefined;

  constructor(
    readonly server: string,
    private readonly tls: RequestOptions,
    private readonly credentials: Credentials,
    /** A tunnel through the cluster's proxy, when one applies. */
    private readonly agent?: Agent,
  ) {}

  authorize(opts: RequestOptions): Promise<void> {
    Object.assign(opts, this.tls);
    if (this.agent) opts.agent = this.agent;
    const token = this.bearer();
    const auth = token ? `Bearer ${token}` : this.credentials.basic;
    // Our callers always give headers as an object, never as a raw array.
    if (auth) opts.headers = { ...(opts.headers as OutgoingHttpHeaders), Authorization: auth };
    return Promise.resolve();
  }

  private bearer(): string | undefined {
    if (this.credentials.token) return this.credentials.token;
    const file = this.credentials.tokenFile;
    if (!file) return undefined;
    const now = Date.now();
    if (!this.token || now - this.token.readAt > TOKEN_REREAD_MS)
      this.token = { value: readFileSync(file, 'utf8').trim(), readAt: now };
    return this.token.value;
  }
}

/** A kubeconfig user with an exec or auth-provider plugin: client-node runs it. */
class PluginConfig implements KubeConfig {
  private loaded: Promise<{ applyToHTTPSOptions(o: RequestOptions): Promise<void> }> | undefined;

  constructor(
    readonly server: string,
    /** The merged kubeconfig with the chosen context current. */
    private readonly merged: KubeconfigFile,
    private readonly agent?: Agent,
  ) {}

  async authorize(opts: RequestOptions): Promise<void> {
    this.loaded ??= import('@kubernetes/client-node').then((m) => {
      const kc = new m.KubeConfig();
      kc.loadFromString(JSON.stringify(this.merged));
      return kc;
    });
    await (await this.loaded).applyToHTTPSOptions(opts);
    // Our tunnel rather than client-node's, which knows proxy-url but not HTTPS_PROXY.
    if (this.agent) opts.agent = this.agent;
  }
}

/** Which kubeconfig files to read, which context to use, and a YAML parser to use instead of the lazily loaded one. */
export interface KubeConfigChoice {
  readonly context?: string;
  readonly parseYaml?: YamlParser;
}

/** The context `--context` names, else the current one; an error that says which is missing. */
function chosenContext(
  merged: KubeconfigFile,
  where: string,
  name: string | undefined,
): { readonly cluster?: string; readonly user?: string } {
  const current = merged['current-context'];
  const context = merged.contexts?.find((c) => c.name === (name ?? current))?.context;
  if (context) return context;
  throw new Error(
    name
      ? `${where}: no context named "${name}"`
      : `${where}: no current-context (or it names no context)`,
  );
}

function fromFiles(paths: readonly string[], choice: KubeConfigChoice): KubeConfig {
  const merged = mergeKubeconfigs(
    paths.map((path) => ({ path, file: parseFile(path, choice.parseYaml) })),
  );
  const where = paths.join(delimiter);
  const context = chosenContext(merged, where, choice.context);
  const contextName = choice.context ?? merged['current-context'];
  const cluster = merged.clusters?.find((c) => c.name === context.cluster)?.cluster ?? {};
  const user = merged.users?.find((u) => u.name === context.user)?.user ?? {};
  const server = str(cluster['server']);
  if (!server) throw new Error(`${where}: cluster ${context.cluster ?? '?'} has no server`);
  const serverUrl = new URL(server);
  const proxy = proxyFor(serverUrl, str(cluster['proxy-url']), process.env);
  const agent = proxy ? tunnelAgent(proxy, serverUrl) : undefined;
  if (user['exec'] || user['auth-provider'])
    return new PluginConfig(server, { ...merged, 'current-context': contextName }, agent);
  return new StaticConfig(server, tlsOf(cluster, user), credentialsOf(user), agent);
}

function tlsOf(cluster: Entry, user: Entry): RequestOptions {
  const ca = material(cluster, 'certificate-authority');
  const cert = material(user, 'client-certificate');
  const key = material(user, 'client-key');
  // The name the server's certificate is checked against when the address is not in it (a forwarded port, a VIP).
  const servername = str(cluster['tls-server-name']);
  return {
    ...(servername ? { servername } : {}),
    ...(ca ? { ca } : {}),
    ...(cert ? { cert } : {}),
    ...(key ? { key } : {}),
    ...(cluster['insecure-skip-tls-verify'] === true ? { rejectUnauthorized: false } : {}),
  };
}

function credentialsOf(user: Entry): Credentials {
  const username = str(user['username']);
  const token = str(user['token']);
  const tokenFile = str(user['tokenFile']);
  return {
    ...(token ? { token } : {}),
    ...(tokenFile ? { tokenFile } : {}),
    ...(username
      ? {
          basic: `Basic ${Buffer.from(`${username}:${str(user['password']) ?? ''}`).toString('base64')}`,
        }
      : {}),
  };
}

function inCluster(): KubeConfig | undefined {
  const host = process.env['KUBERNETES_SERVICE_HOST'];
  const port = process.env['KUBERNETES_SERVICE_PORT'];
  if (!host || !port || !existsSync(join(SERVICE_ACCOUNT, 'token'))) return undefined;
  const server = `https://${host.includes(':') ? `[${host}]` : host}:${port}`;
  return new StaticConfig(
    server,
    { ca: readFileSync(join(SERVICE_ACCOUNT, 'ca.crt')) },
    { tokenFile: join(SERVICE_ACCOUNT, 'token') },
  );
}

/** The files $KUBECONFIG lists that exist (separated as the OS separates PATH), else ~/.kube/config if it exists. */
function kubeconfigFiles(): string[] {
  const listed = (process.env['KUBECONFIG'] ?? '')
    .split(delimiter)
    .filter((p) => p !== '' && existsSync(p));
  if (listed.length) return listed;
  const home = join(homedir(), '.kube', 'config');
  return existsSync(home) ? [home] : [];
}

export function loadKubeConfig(kubeconfigPath?: string, choice: KubeConfigChoice = {}): KubeConfig {
  const files = kubeconfigPath ? [kubeconfigPath] : kubeconfigFiles();
  if (files.length) return fromFiles(files, choice);
  const cluster = choice.context ? undefined : inCluster();
  if (cluster) return cluster;
  throw new Error(
    'no API server to talk to: pass --kubeconfig, set KUBECONFIG, or run in a pod with a service account',
  );
}
