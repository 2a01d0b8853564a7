// The kubelet's HTTP probes: a GET to the Pod's IP, success on 200-399.
import { request } from 'node:http';
import type { Container, HttpProbe } from './pod-types.js';

export function probePort(container: Container, port: number | string): number {
  if (typeof port === 'number') return port;
  const named = container.ports?.find((p) => p.name === port)?.containerPort;
  if (named === undefined) throw new Error(`container ${container.name} has no port named ${port}`);
  return named;
}

export function probeOnce(ip: string, container: Container, probe: HttpProbe): Promise<boolean> {
  const get = probe.httpGet;
  if (!get) return Promise.resolve(true);
  const port = probePort(container, get.port);
  const timeoutMs = (probe.timeoutSeconds ?? 1) * 1000;
  return new Promise((resolve) => {
    const req = request({ host: ip, port, path: get.path ?? '/', timeout: timeoutMs }, (res) => {
      res.resume();
      const code = res.statusCode ?? 0;
      resolve(code >= 200 && code < 400);
    });
    req.on('timeout', () => {
      req.destroy();
      resolve(false);
    });
    req.on('error', () => {
      resolve(false);
    });
    req.end();
  });
}
