import { connect } from 'node:net';

/** What came back on a raw socket, and when (ms after connecting). */
export interface RawExchange {
  response: string;
  /** When the first response byte arrived (undefined: none did). */
  firstByteAfterMs: number | undefined;
  /** When the server closed (or reset) the socket. */
  closedAfterMs: number;
}

/**
 * Sends raw bytes on a new socket to the listening app and waits until the server closes it:
 * slow clients, stalled bodies and idle connections are written byte for byte, which `fetch`
 * cannot do. Rejects if the socket is still open after 60 s.
 */
export function rawExchange(base: string, head: string, body = ''): Promise<RawExchange> {
  const url = new URL(base);
  return new Promise((resolve, reject) => {
    const started = Date.now();
    let response = '';
    let firstByteAfterMs: number | undefined;
    const socket = connect(Number(url.port), url.hostname, () => {
      socket.write(head);
      if (body) socket.write(body);
    });
    socket.setEncoding('latin1');
    socket.on('data', (d: string) => {
      firstByteAfterMs ??= Date.now() - started;
      response += d;
    });
    socket.on('error', () => undefined); // a reset is one way of being cut off
    socket.on('close', () =>
      resolve({ response, firstByteAfterMs, closedAfterMs: Date.now() - started }),
    );
    setTimeout(() => {
      socket.destroy();
      reject(new Error(`socket still open after 60 s; got ${response.slice(0, 80)}`));
    }, 60_000).unref();
  });
}
