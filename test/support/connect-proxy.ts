// A tiny HTTP CONNECT proxy for tests: it tunnels to whatever host:port it is
// asked for (names in `hosts` resolve to the address given, names nowhere
// else do), and counts the tunnels it served, by target, so a test can tell
// that a client went through it.
import { createServer, type Server } from 'node:http';
import { connect, type Socket } from 'node:net';

export interface ConnectProxy {
  /** http://127.0.0.1:PORT */
  readonly url: string;
  /** Tunnels opened so far, by the host:port asked for. */
  tunnels(): ReadonlyMap<string, number>;
  close(): Promise<void>;
}

export async function startConnectProxy(
  hosts: Readonly<Record<string, string>> = {},
): Promise<ConnectProxy> {
  const tunnels = new Map<string, number>();
  const sockets = new Set<Socket>();
  const server: Server = createServer((_req, res) => {
    res.writeHead(405).end('CONNECT only\n');
  });
  server.on('connect', (req, client: Socket, head: Buffer) => {
    sockets.add(client);
    const target = req.url ?? '';
    const m = /^\[?([^\]]+?)\]?:(\d+)$/.exec(target);
    if (!m?.[1] || !m[2]) {
      client.end('HTTP/1.1 400 Bad Request\r\n\r\n');
      return;
    }
    const upstream = connect(Number(m[2]), hosts[m[1]] ?? m[1], () => {
      tunnels.set(target, (tunnels.get(target) ?? 0) + 1);
      client.write('HTTP/1.1 200 Connection Established\r\n\r\n');
      upstream.write(head);
      upstream.pipe(client);
      client.pipe(upstream);
    });
    sockets.add(upstream);
    upstream.on('error', () => client.end('HTTP/1.1 502 Bad Gateway\r\n\r\n'));
    client.on('error', () => upstream.destroy());
  });
  await new Promise<void>((resolve) => {
    server.listen(0, '127.0.0.1', resolve);
  });
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  return {
    url: `http://127.0.0.1:${port}`,
    tunnels: () => tunnels,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => {
        server.close(() => {
          resolve();
        });
      });
    },
  };
}
