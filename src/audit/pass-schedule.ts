/**
 * The scheduling the retention and archive jobs share: a pass at start and then every
 * `intervalMs`, and while a pass did something (returned a value), the next one on a later turn
 * of the event loop, so a long backlog goes in bounded slices without holding the loop.
 */
export class PassSchedule {
  readonly #pass: () => unknown;
  readonly #intervalMs: number;
  #timer: NodeJS.Timeout | undefined;
  #next: NodeJS.Immediate | undefined;
  #closed = false;

  /** `pass` returns undefined when there was nothing (more) to do. */
  constructor(pass: () => unknown, intervalMs: number) {
    this.#pass = pass;
    this.#intervalMs = intervalMs;
  }

  start(): void {
    if (this.#timer || this.#closed) return;
    this.#drain();
    this.#timer = setInterval(() => this.#drain(), this.#intervalMs);
    this.#timer.unref();
  }

  #drain(): void {
    if (this.#closed || this.#next) return;
    if (this.#pass() === undefined) return;
    this.#next = setImmediate(() => {
      this.#next = undefined;
      this.#drain();
    });
  }

  /** Idempotent. */
  close(): void {
    this.#closed = true;
    if (this.#timer) clearInterval(this.#timer);
    if (this.#next) clearImmediate(this.#next);
    this.#timer = undefined;
    this.#next = undefined;
  }
}
