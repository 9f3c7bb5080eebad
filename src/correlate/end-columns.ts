import { TOKEN_EVENT_TYPES } from '../domain/token-event.js';
import type { TokenEventType } from '../domain/token-event.js';

const NO_END_TYPE = 255;

/** A token's end, as TokenRecord holds it. */
export interface TokenEnd {
  endedAt: number | undefined;
  endType: TokenEventType | undefined;
  endSeq: number | undefined;
}

/** A slot store's end time, seq (NaN: undefined) and type (an index of TOKEN_EVENT_TYPES). */
export class EndColumns {
  #times = new Float64Array(0);
  #type = new Uint8Array(0);

  get bytes(): number {
    return this.#times.byteLength + this.#type.byteLength;
  }

  /** Room for `cap` slots, keeping what is there. */
  grow(cap: number): void {
    const times = new Float64Array(cap * 2);
    times.set(this.#times);
    this.#times = times;
    const type = new Uint8Array(cap);
    type.set(this.#type);
    this.#type = type;
  }

  set(slot: number, end: TokenEnd): void {
    this.#times[slot * 2] = end.endedAt ?? NaN;
    this.#times[slot * 2 + 1] = end.endSeq ?? NaN;
    const type = end.endType === undefined ? -1 : TOKEN_EVENT_TYPES.indexOf(end.endType);
    this.#type[slot] = type < 0 ? NO_END_TYPE : type;
  }

  get(slot: number): TokenEnd {
    const endedAt = this.#times[slot * 2] as number;
    const endSeq = this.#times[slot * 2 + 1] as number;
    const type = this.#type[slot] as number;
    return {
      endedAt: Number.isNaN(endedAt) ? undefined : endedAt,
      endType: type === NO_END_TYPE ? undefined : TOKEN_EVENT_TYPES[type],
      endSeq: Number.isNaN(endSeq) ? undefined : endSeq,
    };
  }

  /** The slot's end time, 0 when unknown (as the view judged a token without one). */
  endedAt(slot: number): number {
    const t = this.#times[slot * 2] as number;
    return Number.isNaN(t) ? 0 : t;
  }
}
