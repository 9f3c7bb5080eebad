import {
  DEFAULT_MAX_DEPTH,
  DEFAULT_MAX_EVENTS,
  assertEventCount,
  malformed,
  tooDeep,
} from './payload-reader.js';

/**
 * Raw webhook bodies to JSON values, with limits applied BEFORE `JSON.parse` builds anything:
 * nesting depth is measured on the text, and JSON-lines bodies are counted before any line is
 * parsed.
 */

/** Limits for {@link parseJsonBody} and {@link parseJsonLines}. */
export interface JsonBodyLimits {
  /** Most elements (array items or lines) accepted; default 10 000. */
  maxEvents?: number;
  /** Deepest nesting of objects/arrays accepted; default 64. */
  maxDepth?: number;
}

/**
 * Measures the nesting depth of JSON text without parsing it, ignoring brackets inside strings,
 * and throws (ERR_WEBHOOK_MALFORMED) as soon as `max` is exceeded.
 */
export function assertJsonTextDepth(text: string, max: number = DEFAULT_MAX_DEPTH): void {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c /* \ */) i++;
      else if (c === 0x22 /* " */) inString = false;
    } else if (c === 0x22) {
      inString = true;
    } else if (c === 0x7b /* { */ || c === 0x5b /* [ */) {
      if (++depth > max) throw tooDeep(max);
    } else if (c === 0x7d /* } */ || c === 0x5d /* ] */) {
      depth--;
    }
  }
}

/** `JSON.parse` with a typed error naming where it failed. */
export function parseJsonText(text: string, where = 'body'): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch (err) {
    throw malformed(`${where}: not valid JSON (${(err as Error).message.slice(0, 120)})`, {
      where,
    });
  }
}

/**
 * One JSON document (object or array). Arrays longer than `maxEvents` are refused.
 */
export function parseJsonBody(text: string, limits: JsonBodyLimits = {}): unknown {
  assertJsonTextDepth(text, limits.maxDepth ?? DEFAULT_MAX_DEPTH);
  const value = parseJsonText(text);
  if (Array.isArray(value)) assertEventCount(value.length, limits.maxEvents ?? DEFAULT_MAX_EVENTS);
  return value;
}

/**
 * Newline-delimited JSON (JSON lines / NDJSON): one value per non-blank line. The line count is
 * checked before any line is parsed.
 */
export function parseJsonLines(text: string, limits: JsonBodyLimits = {}): unknown[] {
  const maxDepth = limits.maxDepth ?? DEFAULT_MAX_DEPTH;
  const lines = text.split(/\r?\n/);
  const nonBlank = lines.filter((l) => l.trim() !== '');
  assertEventCount(nonBlank.length, limits.maxEvents ?? DEFAULT_MAX_EVENTS);
  const out: unknown[] = [];
  lines.forEach((line, i) => {
    if (line.trim() === '') return;
    assertJsonTextDepth(line, maxDepth);
    out.push(parseJsonText(line, `line ${i + 1}`));
  });
  return out;
}
