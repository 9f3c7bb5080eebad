import { TokenwatchError } from '../errors.js';

/** Placeholder names that are secret by default: only their HMAC fingerprint is ever stored. */
export const DEFAULT_SECRET_PLACEHOLDERS: readonly string[] = ['token', 'jti', 'sid'];

export interface TemplatePart {
  literal: string;
  /** Placeholder that follows `literal`, if any. */
  placeholder?: string;
}

/**
 * A compiled key template such as `tenant:{tenant}:rt:{token}`.
 *
 * Matching is deterministic and linear in the key length, so hostile 1 MB key names cannot
 * trigger regex backtracking: a placeholder matches one or more bytes up to (not including) the
 * next occurrence of the literal that follows it; the last placeholder takes the rest of the key.
 * Keys are handled as latin1 strings so that every byte maps to one char (binary-safe).
 */
export class KeyTemplate {
  readonly source: string;
  readonly placeholders: readonly string[];
  readonly #parts: readonly TemplatePart[];
  readonly #tail: string;

  constructor(source: string) {
    this.source = source;
    const parts: TemplatePart[] = [];
    const names: string[] = [];
    const re = /\{([A-Za-z_][A-Za-z0-9_]*)\}/g;
    let last = 0;
    let m: RegExpExecArray | null;
    while ((m = re.exec(source)) !== null) {
      const literal = source.slice(last, m.index);
      const name = m[1] as string;
      if (names.includes(name)) {
        throw new TokenwatchError('ERR_TEMPLATE_INVALID', `placeholder {${name}} appears twice`);
      }
      if (parts.length > 0 && literal === '') {
        throw new TokenwatchError(
          'ERR_TEMPLATE_INVALID',
          `placeholders {${names.at(-1) ?? ''}} and {${name}} must be separated by literal text`,
        );
      }
      parts.push({ literal: toLatin1(literal), placeholder: name });
      names.push(name);
      last = m.index + m[0].length;
    }
    const tail = source.slice(last);
    if (/[{}]/.test(source.replace(re, ''))) {
      throw new TokenwatchError(
        'ERR_TEMPLATE_INVALID',
        'unbalanced or invalid placeholder: use {name} with letters, digits and _',
      );
    }
    if (names.length === 0) {
      throw new TokenwatchError('ERR_TEMPLATE_INVALID', 'template has no {placeholder}');
    }
    this.#parts = parts;
    this.#tail = toLatin1(tail);
    this.placeholders = names;
  }

  /** Literal prefix before the first placeholder (useful as a SCAN MATCH hint). */
  get prefix(): string {
    return this.#parts[0]?.literal ?? '';
  }

  /** Match a latin1 key string; returns placeholder values (latin1) or undefined. */
  match(key: string): Record<string, string> | undefined {
    const values: string[] = [];
    if (!this.matchInto(key, values)) return undefined;
    // No prototype: a placeholder named __proto__ (or toString) must read back its own value.
    const out = Object.create(null) as Record<string, string>;
    const names = this.placeholders;
    for (let i = 0; i < names.length; i++) out[names[i] as string] = values[i] as string;
    return out;
  }

  /**
   * match() without the object: on a match, `values[i]` holds the value of `placeholders[i]`
   * (the classifier's hot path reuses one array). Returns whether the key matched.
   */
  matchInto(key: string, values: string[]): boolean {
    const parts = this.#parts;
    const tail = this.#tail;
    if (key.length < tail.length || !key.endsWith(tail)) return false;
    const end = key.length - tail.length;
    let pos = 0;
    for (let i = 0; i < parts.length; i++) {
      const part = parts[i] as TemplatePart;
      if (!key.startsWith(part.literal, pos)) return false;
      pos += part.literal.length;
      const next = parts[i + 1];
      let stop: number;
      if (next) {
        stop = key.indexOf(next.literal, pos + 1);
        if (stop < 0 || stop > end) return false;
      } else {
        stop = end;
      }
      if (stop <= pos) return false;
      values[i] = key.slice(pos, stop);
      pos = stop;
    }
    return pos === end;
  }
}

/** The latin1 string whose chars are the UTF-8 bytes of `s` (how keys arrive from Redis). */
export function toLatin1(s: string): string {
  return Buffer.from(s, 'utf8').toString('latin1');
}
