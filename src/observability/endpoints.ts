// The HTTP endpoints every long-running component serves: health checks that
// answer 200 or 503 with the reason, and Prometheus /metrics.
import type { Server } from 'node:http';
import type { MetricsSource } from './text-metrics.js';

/** A check returns undefined when healthy, or what is wrong. */
export type HealthCheck = () => string | undefined;

export function serveEndpoints(
  port: number,
  registry: MetricsSource,
  checks: Readonly<Record<string, HealthCheck>>,
): Server {
  // getBuiltinModule, not an import: see kube/transport.ts.
  const server = process.getBuiltinModule('node:http').createServer((req, res) => {
    const check = checks[req.url ?? ''];
    if (check) {
      const problem = check();
      res.writeHead(problem ? 503 : 200, { 'Content-Type': 'text/plain' });
      res.end(problem ? `${problem}\n` : 'ok\n');
      return;
    }
    if (req.url === '/metrics') {
      registry.metrics().then(
        (text) => {
          res.writeHead(200, { 'Content-Type': registry.contentType });
          res.end(text);
        },
        (err: unknown) => {
          res.writeHead(500);
          res.end(String(err));
        },
      );
      return;
    }
    res.writeHead(404);
    res.end();
  });
  if (port > 0) server.listen(port);
  return server;
}
