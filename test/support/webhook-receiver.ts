// A webhook receiver the tests run on 127.0.0.1: it records every POST (path,
// headers, JSON body) and answers as the test scripts it, e.g. failing the
// first tries of a notification or never answering at all.
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';

export interface Received {
  readonly path: string;
  readonly headers: IncomingHttpHeaders;
  readonly body: Record<string, unknown>;
  /** The answer it was given. */
  readonly status: number | 'none';
  readonly at: number;
}

export type Answer =
  | { readonly status: number; readonly headers?: Record<string, string>; readonly body?: string }
  | 'none';

export interface Receiver {
  /** The URL to give the controller: a secret token in the path, as Slack's incoming webhooks have. */
  readonly url: string;
  readonly token: string;
  readonly received: Received[];
  /** How the next POSTs are answered (default: 200 "ok"). */
  answer: (body: Record<string, unknown>, received: readonly Received[]) => Answer;
  close(): Promise<void>;
}

export async function startReceiver(token: string): Promise<Receiver> {
  const received: Received[] = [];
  const hanging = new Set<() => void>();
  const receiver: Receiver = {
    url: '',
    token,
    received,
    answer: () => ({ status: 200, body: 'ok' }),
    close: () =>
      new Promise((resolve) => {
        for (const end of hanging) end();
        server.closeAllConnections();
        server.close(() => {
          resolve();
        });
      }),
  };
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      let body: Record<string, unknown>;
      try {
        body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as Record<string, unknown>;
      } catch {
        body = {};
      }
      const answer = receiver.answer(body, received);
      received.push({
        path: req.url ?? '',
        headers: req.headers,
        body,
        status: answer === 'none' ? 'none' : answer.status,
        at: Date.now(),
      });
      if (answer === 'none') {
        const end = (): void => {
          res.destroy();
        };
        hanging.add(end);
        return;
      }
      res.writeHead(answer.status, answer.headers).end(answer.body ?? '');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  return Object.assign(receiver, { url: `http://127.0.0.1:${port}/hooks/${token}` });
}
