import { randomBytes } from 'node:crypto';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { readKeys, unescapeMonitorArg } from './read-commands.js';
import type { TokenRules } from './token-rules.js';

/** What one sampling window saw: reads and misses of token keys per kind, exactly aligned. */
export interface SampleWindow {
  node: string;
  start: number;
  end: number;
  reads: Record<string, number>;
  misses: Record<string, number>;
}

export type SamplerState =
  | { state: 'idle' | 'sampling'; reason?: undefined }
  | { state: 'refused' | 'failed'; reason: string };

export interface ReadSamplerOptions {
  node: string;
  /**
   * A connection that is never connected itself: `monitor()` duplicates its options into the
   * dedicated MONITOR connection (a connection in MONITOR mode can run no other command).
   */
  base: Redis;
  /** The node's command connection: sends the window markers. */
  commands: Redis;
  rules: TokenRules;
  maxKeyBytes: number;
  windowMs: number;
  everyMs: number;
  now: () => number;
  logger: Logger;
  onWindow: (w: SampleWindow) => void;
  onState: (s: SamplerState) => void;
  /**
   * Redis Cluster: a hash tag whose slot this node serves, so the markers land on it (another
   * node would answer MOVED). Undefined result: the node's slots are not known yet.
   */
  markerTag?: () => string | undefined;
}

/** Longest wait for both end markers after a window closes. */
const DRAIN_TIMEOUT_MS = 5000;

/**
 * Samples the read stream of one Redis node: MONITOR for `windowMs` every `everyMs`.
 *
 * Redis has no read notifications (only `keymiss`), so hits can only be seen in the command
 * stream. MONITOR costs the node throughput while it runs (every command is copied to the
 * monitor's output buffer), hence short windows at a low duty cycle (docs/benchmarks.md).
 *
 * Alignment: the window opens and closes with a PEXPIRETIME of a random marker key that does not
 * exist. That one command shows up in BOTH streams: in MONITOR (before it runs) and as a
 * `keymiss` notification (while it runs). Redis executes commands one at a time, so counting
 * reads between the markers in the MONITOR stream and misses between the markers in the keymiss
 * stream covers exactly the same commands, whatever the delivery delay of either connection.
 *
 * The MONITOR stream carries arguments, i.e. values of writes and token ids in keys: each line is
 * parsed in memory, its keys classified and dropped at once; nothing of it is logged or stored.
 */
export class ReadSampler {
  readonly #o: ReadSamplerOptions;
  #timer: NodeJS.Timeout | undefined;
  #closed = false;
  #running: Promise<SampleWindow | undefined> | undefined;
  #win: Open | undefined;
  #state: SamplerState = { state: 'idle' };

  constructor(options: ReadSamplerOptions) {
    this.#o = options;
  }

  get state(): SamplerState {
    return this.#state;
  }

  /** Starts the schedule: the first window after `firstDelayMs`, then every `everyMs`. */
  start(firstDelayMs = Math.min(this.#o.everyMs, 5000)): void {
    this.#schedule(firstDelayMs);
  }

  /** A `keymiss` on this node (latin1 key). Counted only while a window is between its markers. */
  onKeyMiss(key: string, kind: string | undefined): void {
    const w = this.#win;
    if (!w) return;
    if (key === w.startMarker) {
      w.missPhase = 1;
      return;
    }
    if (key === w.endMarker) {
      w.missPhase = 2;
      w.check();
      return;
    }
    if (w.missPhase === 1 && kind !== undefined) w.misses[kind] = (w.misses[kind] ?? 0) + 1;
  }

  /** Runs one window now (also what the schedule calls). Undefined when refused or failed. */
  sample(): Promise<SampleWindow | undefined> {
    this.#running ??= this.#run().finally(() => {
      this.#running = undefined;
    });
    return this.#running;
  }

  async close(): Promise<void> {
    this.#closed = true;
    clearTimeout(this.#timer);
    this.#win?.abort();
    await this.#running;
  }

  #schedule(ms: number): void {
    if (this.#closed) return;
    this.#timer = setTimeout(() => {
      void this.sample().finally(() => this.#schedule(this.#o.everyMs));
    }, ms);
    this.#timer.unref();
  }

  #setState(s: SamplerState): void {
    const prev = this.#state;
    this.#state = s;
    if (prev.state !== s.state || prev.reason !== s.reason) {
      if (s.state === 'refused' || s.state === 'failed') {
        this.#o.logger.warn(
          { node: this.#o.node, reason: s.reason },
          `read sampling ${s.state}: tokenwatch_token_hit_ratio is absent for this node`,
        );
      } else if (prev.state === 'refused' || prev.state === 'failed') {
        this.#o.logger.info({ node: this.#o.node }, 'read sampling works again');
      }
    }
    this.#o.onState(s);
  }

  async #run(): Promise<SampleWindow | undefined> {
    const o = this.#o;
    if (this.#closed || o.commands.status !== 'ready') return undefined;
    // Not Redis#monitor(): on a refusal it leaves its connection open with no handle to close it.
    const monitor = o.base.duplicate({ monitor: true, lazyConnect: false });
    let monitoring = false;
    try {
      await new Promise<void>((resolve, reject) => {
        // Lines that arrive in the same read as MONITOR's OK (before ioredis switches to monitor
        // mode), or after disconnect(), surface as "Command queue state error": they fall outside
        // the window's markers anyway, so they are dropped; any other error before the mode
        // switch (NOPERM, unknown command, connection refused) is a refusal.
        monitor.on('error', (err: Error) => {
          if (!monitoring && !err.message.startsWith('Command queue state error')) reject(err);
        });
        monitor.once('monitoring', () => {
          monitoring = true;
          resolve();
        });
      });
    } catch (err) {
      monitor.disconnect();
      // NOPERM (ACL without +monitor), "unknown command" (renamed / managed Redis): refused.
      this.#setState({ state: 'refused', reason: `MONITOR refused: ${message(err)}` });
      return undefined;
    }
    let base = `tokenwatch:sample:${randomBytes(12).toString('hex')}`;
    if (o.markerTag) {
      const tag = o.markerTag();
      if (tag === undefined) {
        monitor.disconnect();
        this.#setState({
          state: 'failed',
          reason: 'the slots this cluster node serves are unknown',
        });
        return undefined;
      }
      base += `:{${tag}}`;
    }
    const win = new Open(`${base}:start`, `${base}:end`);
    this.#win = win;
    this.#setState({ state: 'sampling' });
    monitor.on('monitor', (_time: string, args: string[]) => {
      const name = args[0];
      if (name === undefined) return;
      if (name.toLowerCase() === 'pexpiretime') {
        const k = args[1];
        if (k === win.startMarker) win.readPhase = 1;
        else if (k === win.endMarker) {
          win.readPhase = 2;
          win.check();
        }
        return;
      }
      if (win.readPhase !== 1) return;
      for (const raw of readKeys(args)) {
        if (raw.length > o.maxKeyBytes) continue;
        const hit = o.rules.identify(unescapeMonitorArg(raw));
        if (hit) win.reads[hit.kind] = (win.reads[hit.kind] ?? 0) + 1;
      }
    });
    const start = o.now();
    try {
      await o.commands.call('PEXPIRETIME', win.startMarker);
      await win.sleep(o.windowMs);
      await o.commands.call('PEXPIRETIME', win.endMarker);
      const done = await win.done(DRAIN_TIMEOUT_MS);
      if (!done) {
        if (win.aborted) return undefined;
        const which = win.readPhase < 2 ? 'MONITOR' : 'keymiss';
        this.#setState({
          state: 'failed',
          reason: `window markers not seen in the ${which} stream within ${DRAIN_TIMEOUT_MS} ms (is "m" in notify-keyspace-events?)`,
        });
        return undefined;
      }
      const w: SampleWindow = {
        node: o.node,
        start,
        end: o.now(),
        reads: win.reads,
        misses: win.misses,
      };
      this.#setState({ state: 'idle' });
      o.onWindow(w);
      return w;
    } catch (err) {
      this.#setState({ state: 'failed', reason: `sampling window failed: ${message(err)}` });
      return undefined;
    } finally {
      this.#win = undefined;
      monitor.disconnect();
    }
  }
}

/** The bookkeeping of one open window. */
class Open {
  readonly startMarker: string;
  readonly endMarker: string;
  readPhase: 0 | 1 | 2 = 0;
  missPhase: 0 | 1 | 2 = 0;
  readonly reads: Record<string, number> = Object.create(null) as Record<string, number>;
  readonly misses: Record<string, number> = Object.create(null) as Record<string, number>;
  aborted = false;
  #wake: (() => void) | undefined;

  constructor(startMarker: string, endMarker: string) {
    this.startMarker = startMarker;
    this.endMarker = endMarker;
  }

  check(): void {
    if (this.readPhase === 2 && this.missPhase === 2) this.#wake?.();
  }

  abort(): void {
    this.aborted = true;
    this.#wake?.();
  }

  sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const t = setTimeout(() => {
        this.#wake = undefined;
        resolve();
      }, ms);
      this.#wake = () => {
        clearTimeout(t);
        resolve();
      };
    });
  }

  async done(timeoutMs: number): Promise<boolean> {
    if (this.readPhase === 2 && this.missPhase === 2) return true;
    if (this.aborted) return false;
    await this.sleep(timeoutMs);
    return this.readPhase === 2 && this.missPhase === 2 && !this.aborted;
  }
}

function message(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
