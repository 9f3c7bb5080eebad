import { createServer, type Server } from 'node:http';

export interface AlertReceiver {
  url: string;
  /** Every alert posted to /api/v2/alerts, in arrival order. */
  alerts: Record<string, unknown>[];
  /** Every body posted to /webhook. */
  webhooks: Record<string, unknown>[];
  /** Answer the next `n` requests with this status (to exercise retries). */
  failNext(n: number, status?: number): void;
  close(): Promise<void>;
}

/** A loopback receiver speaking Alertmanager's v2 alerts API and a generic webhook. */
export async function startAlertReceiver(): Promise<AlertReceiver> {
  const alerts: Record<string, unknown>[] = [];
  const webhooks: Record<string, unknown>[] = [];
  let failing = 0;
  let failStatus = 503;
  const server: Server = createServer((req, res) => {
    let body = '';
    req.on('data', (d: Buffer) => (body += d.toString()));
    req.on('end', () => {
      if (failing > 0) {
        failing -= 1;
        res.writeHead(failStatus).end();
        return;
      }
      if (req.method === 'POST' && req.url === '/api/v2/alerts') {
        alerts.push(...(JSON.parse(body) as Record<string, unknown>[]));
        res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
      } else if (req.method === 'POST' && req.url === '/webhook') {
        webhooks.push(JSON.parse(body) as Record<string, unknown>);
        res.writeHead(204).end();
      } else {
        res.writeHead(404).end();
      }
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const addr = server.address();
  const port = typeof addr === 'object' && addr ? addr.port : 0;
  return {
    url: `http://127.0.0.1:${port}`,
    alerts,
    webhooks,
    failNext(n, status = 503) {
      failing = n;
      failStatus = status;
    },
    close: () => new Promise((r) => server.close(() => r())),
  };
}
