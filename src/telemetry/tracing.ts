import {
  INVALID_SPAN_CONTEXT,
  SpanStatusCode,
  trace,
  type Attributes,
  type Span,
  type Tracer,
} from '@opentelemetry/api';

/**
 * Span attributes tokenwatch may set: its own vocabulary only (token kind, Redis node, provider,
 * counts). Never a token, key, subject, session id or fingerprint: spans leave the audit
 * boundary (SOC 2 CC6.1), so the allowed keys are a closed set checked by the compiler.
 * Exported as `tokenwatch.<key>`.
 */
export interface SpanAttrs {
  kind?: string;
  node?: string;
  provider?: string;
  /** Provider event type or token event type. */
  type?: string;
  outcome?: string;
  rule?: string;
  severity?: string;
  reason?: string;
  /** Records in an audit batch, events in a correlation batch. */
  batch_size?: number;
  scanned?: number;
  changes?: number;
  findings?: number;
  gap_seconds?: number;
}

/** Span names are namespaced: `tokenwatch.<area>.<operation>`, e.g. `tokenwatch.audit.commit`. */
export type SpanName = `tokenwatch.${string}`;

/** A finished piece of work reported after the fact (start and end are unix ms). */
export interface RecordedSpan {
  name: SpanName;
  attrs: SpanAttrs;
  startMs: number;
  endMs: number;
  /** Stable error code when the work failed (never an error message: it may quote input). */
  errorCode?: string;
}

/** Values longer than this are cut: labels are short identifiers, anything longer is a bug. */
const MAX_ATTR_CHARS = 128;

/** Spans kept while the SDK loads (see {@link Tracing.hold}); more are counted and dropped. */
export const MAX_HELD_SPANS = 1024;

/** Shared, immutable: what `withSpan` hands to `fn` while tracing is off. */
const NOOP_SPAN: Span = trace.wrapSpanContext(INVALID_SPAN_CONTEXT);

/**
 * The tracing helper the service's parts call around webhook handling, correlation,
 * reconciliation and audit batch commits. Off (the default) it costs one branch and a direct
 * call of `fn`; the OpenTelemetry SDK switches it on in {@link Telemetry.start}.
 *
 * @example
 * ```ts
 * const n = await tracing.withSpan('tokenwatch.audit.commit', { batch_size: batch.length }, () =>
 *   commit(batch),
 * );
 * ```
 */
export class Tracing {
  #tracer: Tracer | undefined;
  /** Finished spans waiting for the tracer (between hold() and attach()). */
  #held: RecordedSpan[] | undefined;
  #heldDropped = 0;

  /** True while spans are recorded and exported (or held for export). */
  get enabled(): boolean {
    return this.#tracer !== undefined || this.#held !== undefined;
  }

  /** Spans dropped because more than MAX_HELD_SPANS ended before the tracer came. */
  get heldDropped(): number {
    return this.#heldDropped;
  }

  /**
   * Tracing is on, but the tracer is not there yet (the SDK's modules load): keep each span that
   * ends until {@link attach}, which exports them with their own timings. Held spans have no
   * parent (the context they ran in is gone by then).
   */
  hold(): void {
    if (this.#tracer === undefined) this.#held ??= [];
  }

  /**
   * Connects (or with `undefined` disconnects) the tracer spans are made with. A tracer gets
   * what was held; `undefined` discards it.
   */
  attach(tracer: Tracer | undefined): void {
    this.#tracer = tracer;
    const held = this.#held;
    this.#held = undefined;
    if (tracer !== undefined && held !== undefined) for (const s of held) this.record(s);
  }

  /** A span that ended while the tracer was not there: record it now, or hold it. */
  #ended(s: RecordedSpan): void {
    if (this.#tracer !== undefined) this.record(s);
    else if (this.#held === undefined) return;
    else if (this.#held.length < MAX_HELD_SPANS) this.#held.push(s);
    else this.#heldDropped += 1;
  }

  /** withSpan while the tracer is not there: run `fn`, keep the span's timings. */
  #heldSpan<T>(name: SpanName, attrs: SpanAttrs, fn: (span: Span) => T): T {
    const startMs = Date.now();
    return settle(
      () => fn(NOOP_SPAN),
      (code) =>
        this.#ended({
          name,
          attrs,
          startMs,
          endMs: Date.now(),
          ...(code === undefined ? {} : { errorCode: code }),
        }),
    );
  }

  /**
   * Runs `fn` inside an active span (nested calls become child spans); ends the span when `fn`
   * returns or, for a promise, settles. A throw or rejection marks the span as an error with the
   * error's `code` (or class name) and is re-thrown unchanged.
   */
  withSpan<T>(name: SpanName, attrs: SpanAttrs, fn: (span: Span) => T): T {
    const tracer = this.#tracer;
    if (tracer === undefined) {
      return this.#held === undefined ? fn(NOOP_SPAN) : this.#heldSpan(name, attrs, fn);
    }
    return tracer.startActiveSpan(name, { attributes: toAttributes(attrs) }, (span): T =>
      settle(
        () => fn(span),
        (code) => {
          if (code !== undefined) markFailed(span, code);
          span.end();
        },
      ),
    );
  }

  /**
   * Records a span for work that already finished and was reported with its timings (e.g. a
   * reconciliation report from a node watcher). No-op while tracing is off; held while the
   * tracer is on its way.
   */
  record(s: RecordedSpan): void {
    const tracer = this.#tracer;
    if (tracer === undefined) {
      this.#ended(s);
      return;
    }
    const span = tracer.startSpan(s.name, {
      attributes: toAttributes(s.attrs),
      startTime: s.startMs,
    });
    if (s.errorCode !== undefined) markFailed(span, s.errorCode);
    span.end(Math.max(s.startMs, s.endMs));
  }
}

function toAttributes(attrs: SpanAttrs): Attributes {
  const out: Attributes = {};
  for (const [k, v] of Object.entries(attrs) as [string, string | number | undefined][]) {
    if (v === undefined) continue;
    out[`tokenwatch.${k}`] = typeof v === 'string' ? v.slice(0, MAX_ATTR_CHARS) : v;
  }
  return out;
}

/**
 * Runs `run` and calls `end` once it returned or, for a promise, settled: with the error's code
 * when it threw or rejected (the error is re-thrown unchanged).
 */
function settle<T>(run: () => T, end: (errorCode?: string) => void): T {
  let result: T;
  try {
    result = run();
  } catch (err) {
    end(errorCode(err));
    throw err;
  }
  if (!isPromiseLike(result)) {
    end();
    return result;
  }
  return result.then(
    (value) => {
      end();
      return value;
    },
    (err: unknown) => {
      end(errorCode(err));
      throw err;
    },
  ) as T;
}

function errorCode(err: unknown): string {
  const code = (err as { code?: unknown } | null)?.code;
  if (typeof code === 'string' && /^[A-Z0-9_]{1,64}$/.test(code)) return code;
  return err instanceof Error ? err.name.slice(0, 64) : 'unknown';
}

function markFailed(span: Span, code: string): void {
  // Only the stable code, never err.message: messages can quote the input that caused them.
  span.setAttribute('error.type', code);
  span.setStatus({ code: SpanStatusCode.ERROR, message: code });
}

function isPromiseLike(v: unknown): v is PromiseLike<unknown> {
  return (
    typeof v === 'object' && v !== null && typeof (v as { then?: unknown }).then === 'function'
  );
}
