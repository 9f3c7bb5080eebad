import type { Logger } from 'pino';
import type { Finding } from '../domain/finding.js';
import type { FindingMetrics } from '../metrics/finding-metrics.js';
import { toAlertmanager, toWebhook } from './alert-payloads.js';

export interface AlertTargets {
  alertmanagerUrl?: string | undefined;
  webhookUrl?: string | undefined;
  webhookHeaders: Record<string, string>;
  maxQueue: number;
  timeoutMs: number;
  maxAttempts: number;
}

interface Delivery {
  target: 'alertmanager' | 'webhook';
  url: string;
  body: unknown;
  attempts: number;
  notBefore: number;
}

/**
 * Delivers finding state changes to Alertmanager and/or a JSON webhook, off the event path:
 * a bounded queue, one request in flight per target, exponential backoff with jitter, every
 * outcome counted. A full queue drops the oldest delivery (counted), never blocks.
 */
export class AlertDispatcher {
  readonly #t: AlertTargets;
  readonly #metrics: FindingMetrics;
  readonly #logger: Logger;
  readonly #now: () => number;
  readonly #generatorURL: string | undefined;
  #queue: Delivery[] = [];
  #timer: NodeJS.Timeout | undefined;
  #busy = false;
  #closed = false;

  constructor(
    t: AlertTargets,
    deps: { metrics: FindingMetrics; logger: Logger; now: () => number; generatorURL?: string },
  ) {
    this.#t = t;
    this.#metrics = deps.metrics;
    this.#logger = deps.logger;
    this.#now = deps.now;
    this.#generatorURL = deps.generatorURL;
  }

  get enabled(): boolean {
    return this.#t.alertmanagerUrl !== undefined || this.#t.webhookUrl !== undefined;
  }

  get size(): number {
    return this.#queue.length;
  }

  /**
   * Queue the findings' state changes (opened/resolved). `resend`: open findings repeated so
   * Alertmanager keeps them firing (it resolves alerts not re-sent within resolve_timeout);
   * they go to Alertmanager only, since for the webhook each body is one state change.
   */
  send(findings: readonly Finding[], options: { resend?: boolean } = {}): void {
    if (this.#closed || findings.length === 0) return;
    const now = this.#now();
    if (this.#t.alertmanagerUrl) {
      // Alertmanager takes a batch of alerts in one request.
      this.#push({
        target: 'alertmanager',
        url: `${this.#t.alertmanagerUrl.replace(/\/$/, '')}/api/v2/alerts`,
        body: findings.map((f) => toAlertmanager(f, this.#generatorURL)),
        attempts: 0,
        notBefore: now,
      });
    }
    if (this.#t.webhookUrl && options.resend !== true) {
      for (const f of findings) {
        this.#push({
          target: 'webhook',
          url: this.#t.webhookUrl,
          body: toWebhook(f),
          attempts: 0,
          notBefore: now,
        });
      }
    }
    this.#kick(0);
  }

  /** Try to deliver what is queued, then stop. Idempotent. */
  async close(graceMs = 2000): Promise<void> {
    if (this.#closed) return;
    const deadline = this.#now() + graceMs;
    while (this.#queue.some((d) => d.notBefore <= this.#now()) && this.#now() < deadline) {
      await this.#drain();
      if (this.#busy) await new Promise((r) => setTimeout(r, 20));
    }
    this.#closed = true;
    clearTimeout(this.#timer);
  }

  #push(d: Delivery): void {
    if (this.#queue.length >= this.#t.maxQueue) {
      const dropped = this.#queue.shift();
      if (dropped)
        this.#metrics.alertDeliveries.inc({ target: dropped.target, outcome: 'dropped' });
    }
    this.#queue.push(d);
  }

  #kick(delayMs: number): void {
    if (this.#closed || this.#timer) return;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      void this.#drain();
    }, delayMs);
    this.#timer.unref();
  }

  async #drain(): Promise<void> {
    if (this.#busy) return;
    this.#busy = true;
    try {
      for (;;) {
        const now = this.#now();
        const i = this.#queue.findIndex((d) => d.notBefore <= now);
        if (i < 0) break;
        const d = this.#queue[i] as Delivery;
        this.#queue.splice(i, 1);
        await this.#deliver(d);
      }
    } finally {
      this.#busy = false;
    }
    const next = Math.min(...this.#queue.map((d) => d.notBefore));
    if (Number.isFinite(next)) this.#kick(Math.max(0, next - this.#now()));
  }

  async #deliver(d: Delivery): Promise<void> {
    d.attempts += 1;
    let problem: string | undefined;
    try {
      const res = await fetch(d.url, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          ...(d.target === 'webhook' ? this.#t.webhookHeaders : {}),
        },
        body: JSON.stringify(d.body),
        signal: AbortSignal.timeout(this.#t.timeoutMs),
      });
      await res.arrayBuffer().catch(() => undefined);
      if (res.ok) {
        this.#metrics.alertDeliveries.inc({ target: d.target, outcome: 'sent' });
        return;
      }
      problem = `HTTP ${res.status}`;
      // 4xx other than 408/429 will not get better by retrying.
      if (res.status >= 400 && res.status < 500 && res.status !== 408 && res.status !== 429)
        d.attempts = this.#t.maxAttempts;
    } catch (err) {
      problem = (err as Error).message;
    }
    if (d.attempts >= this.#t.maxAttempts) {
      this.#metrics.alertDeliveries.inc({ target: d.target, outcome: 'failed' });
      this.#logger.error(
        { target: d.target, attempts: d.attempts, problem },
        'alert delivery failed; giving up',
      );
      return;
    }
    this.#metrics.alertDeliveries.inc({ target: d.target, outcome: 'retried' });
    const backoff = Math.min(30_000, 250 * 2 ** (d.attempts - 1));
    d.notBefore = this.#now() + backoff / 2 + Math.random() * (backoff / 2);
    this.#logger.warn(
      { target: d.target, attempts: d.attempts, problem },
      'alert delivery failed; will retry',
    );
    this.#queue.push(d);
  }
}
