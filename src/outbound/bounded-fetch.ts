import { TokenwatchError } from '../errors.js';

/**
 * Outbound HTTP to identity providers (discovery documents, log APIs). Responses are read with a
 * byte limit: a provider, or whatever answers in its place, cannot make tokenwatch buffer
 * unbounded data.
 */

/** Reads a response body as UTF-8 text, refusing more than `maxBytes`. */
export async function readBounded(response: Response, maxBytes: number): Promise<string> {
  const declared = Number(response.headers.get('content-length') ?? NaN);
  if (Number.isFinite(declared) && declared > maxBytes) {
    await response.body?.cancel();
    throw tooLarge(maxBytes);
  }
  const body = response.body;
  if (!body) return '';
  const chunks: Uint8Array[] = [];
  let size = 0;
  const reader = (body as ReadableStream<Uint8Array>).getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > maxBytes) {
      await reader.cancel();
      throw tooLarge(maxBytes);
    }
    chunks.push(value);
  }
  return Buffer.concat(chunks).toString('utf8');
}

/** An abort signal that fires on `signal` or after `timeoutMs`. */
export function withTimeout(signal: AbortSignal | undefined, timeoutMs: number): AbortSignal {
  const timeout = AbortSignal.timeout(timeoutMs);
  return signal ? AbortSignal.any([signal, timeout]) : timeout;
}

function tooLarge(maxBytes: number): TokenwatchError {
  return new TokenwatchError('ERR_PROVIDER_POLL', `response larger than ${maxBytes} bytes`, {
    details: { reason: 'malformed' },
  });
}
