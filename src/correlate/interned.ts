/**
 * Interned texts that repeat across many tokens (id scopes, fingerprint prefixes, kinds) by a
 * 16-bit code. Never shrinks: what it holds is bounded by the configuration (kinds, nodes, key
 * ids), not by the traffic; a full table makes callers keep the text whole instead.
 */
export class Codes {
  readonly #byText = new Map<string, number>();
  readonly #texts: string[] = [];

  /** The code of `text`; `add` false: undefined when unknown (a look-up never grows the table). */
  code(text: string, add: boolean): number | undefined {
    let c = this.#byText.get(text);
    if (c === undefined && add && this.#texts.length < 0x10000) {
      c = this.#texts.length;
      this.#texts.push(text);
      this.#byText.set(text, c);
    }
    return c;
  }

  text(code: number): string {
    return this.#texts[code] ?? '';
  }
}

/**
 * Interned join-key values (subjects, clients, sessions, families) by a code, counted by
 * reference: a value goes when the last token carrying it does, so the table is bounded by the
 * live tokens (at most four values each) however many distinct values the traffic brings.
 */
export class RefCodes {
  readonly #byText = new Map<string, number>();
  readonly #texts: (string | undefined)[] = [];
  #refs = new Int32Array(256);
  readonly #free: number[] = [];

  /** Distinct values held. */
  get size(): number {
    return this.#byText.size;
  }

  /** The code of `text`, taking one reference (release it with `release`). */
  acquire(text: string): number {
    let c = this.#byText.get(text);
    if (c === undefined) {
      c = this.#free.pop() ?? this.#texts.length;
      if (c === this.#texts.length) this.#texts.push(text);
      else this.#texts[c] = text;
      if (c >= this.#refs.length) {
        const refs = new Int32Array(this.#refs.length * 2);
        refs.set(this.#refs);
        this.#refs = refs;
      }
      this.#byText.set(text, c);
    }
    this.#refs[c] = (this.#refs[c] as number) + 1;
    return c;
  }

  release(code: number): void {
    const left = (this.#refs[code] as number) - 1;
    this.#refs[code] = left;
    if (left > 0) return;
    const text = this.#texts[code];
    if (text !== undefined) this.#byText.delete(text);
    this.#texts[code] = undefined;
    this.#free.push(code);
  }

  /** The code of `text` when held (a look-up takes no reference). */
  lookup(text: string): number | undefined {
    return this.#byText.get(text);
  }

  text(code: number): string {
    return this.#texts[code] ?? '';
  }
}
