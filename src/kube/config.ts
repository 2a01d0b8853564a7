// One way to reach the API server for every component: an explicit kubeconfig,
// else $KUBECONFIG / ~/.kube/config, else the in-cluster service account (the
// same order as client-go and client-node). Our own small loader rather than
// client-node's KubeConfig: importing client-node costs a process about 85 MiB
// of RSS, and every node's agent would pay it for these few fields. A
// kubeconfig whose user runs an exec or auth-provider plugin is handed to
// client-node, loaded only then: that is where its code serves.
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { homedir } from 'node:os';
import { dirname, isAbsolute, join } from 'node:path';
import type { OutgoingHttpHeaders } from 'node:http';
import type { RequestOptions } from 'node:https';

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

interface NamedEntry<T> {
  readonly name: string;
  readonly [key: string]: unknown;
  readonly cluster?: T;
  readonly user?: T;
  readonly context?: T;
}

interface KubeconfigFile {
  readonly 'current-context'?: string;
  readonly clusters?: NamedEntry<Record<string, unknown>>[];
  readonly users?: NamedEntry<Record<string, unknown>>[];
  readonly contexts?: NamedEntry<{ cluster?: string; user?: string }>[];
}

const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);

/** A file path from a kubeconfig: relative paths are relative to the kubeconfig's folder. */
function readRelative(base: string, path: string): Buffer {
  return readFileSync(isAbsolute(path) ? path : join(dirname(base), path));
}

/** Inline `*-data` (base64) or a file named by the plain key. */
function material(entry: Record<string, unknown>, key: string, file: string): Buffer | undefined {
  const inline = str(entry[`${key}-data`]);
  if (inline) return Buffer.from(inline, 'base64');
  const path = str(entry[key]);
  return path ? readRelative(file, path) : undefined;
}

function parseFile(path: string): KubeconfigFile {
  const text = readFileSync(path, 'utf8');
  try {
    return JSON.parse(text) as KubeconfigFile;
  } catch {
    // YAML only when the file is not JSON; required lazily, the in-cluster agent never loads it.
    const yaml = createRequire(import.meta.url)('yaml') as { parse(text: string): unknown };
    return yaml.parse(text) as KubeconfigFile;
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
  ) {}

  authorize(opts: RequestOptions): Promise<void> {
    Object.assign(opts, this.tls);
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
    private readonly path: string,
  ) {}

  async authorize(opts: RequestOptions): Promise<void> {
    this.loaded ??= import('@kubernetes/client-node').then((m) => {
      const kc = new m.KubeConfig();
      kc.loadFromFile(this.path);
      return kc;
    });
    await (await this.loaded).applyToHTTPSOptions(opts);
  }
}

function fromFile(path: string): KubeConfig {
  const file = parseFile(path);
  const contextName = file['current-context'];
  const context = file.contexts?.find((c) => c.name === contextName)?.context;
  if (!context) throw new Error(`${path}: no current-context (or it names no context)`);
  const cluster = file.clusters?.find((c) => c.name === context.cluster)?.cluster ?? {};
  const user = file.users?.find((u) => u.name === context.user)?.user ?? {};
  const server = str(cluster['server']);
  if (!server) throw new Error(`${path}: cluster ${context.cluster ?? '?'} has no server`);
  if (user['exec'] || user['auth-provider']) return new PluginConfig(server, path);
  return new StaticConfig(server, tlsOf(cluster, user, path), credentialsOf(user, path));
}

function tlsOf(
  cluster: Record<string, unknown>,
  user: Record<string, unknown>,
  path: string,
): RequestOptions {
  const ca = material(cluster, 'certificate-authority', path);
  const cert = material(user, 'client-certificate', path);
  const key = material(user, 'client-key', path);
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

function credentialsOf(user: Record<string, unknown>, path: string): Credentials {
  const username = str(user['username']);
  const token = str(user['token']);
  const tokenFile = str(user['tokenFile']);
  return {
    ...(token ? { token } : {}),
    ...(tokenFile
      ? { tokenFile: isAbsolute(tokenFile) ? tokenFile : join(dirname(path), tokenFile) }
      : {}),
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

export function loadKubeConfig(kubeconfigPath?: string): KubeConfig {
  if (kubeconfigPath) return fromFile(kubeconfigPath);
  // Several paths in $KUBECONFIG: the first that exists (no merging).
  const fromEnv = (process.env['KUBECONFIG'] ?? '').split(':').find((p) => p && existsSync(p));
  if (fromEnv) return fromFile(fromEnv);
  const home = join(homedir(), '.kube', 'config');
  if (existsSync(home)) return fromFile(home);
  const cluster = inCluster();
  if (cluster) return cluster;
  throw new Error(
    'no API server to talk to: pass --kubeconfig, set KUBECONFIG, or run in a pod with a service account',
  );
}
