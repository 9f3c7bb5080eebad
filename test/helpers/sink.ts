import { Writable } from 'node:stream';

/** A writable that keeps what a CLI command printed, for its assertions. */
export function sink(): { out: Writable; text: () => string } {
  let text = '';
  const out = new Writable({
    write(chunk: Buffer, _enc, cb) {
      text += chunk.toString();
      cb();
    },
  });
  return { out, text: () => text };
}
