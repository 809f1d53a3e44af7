// Health checks of this host's service backends. The agent checks only its own
// sandboxes (every host checks its own, so the work spreads with the backends)
// and publishes the verdict in the endpoint entry, from where DNS and the load
// balancers of every host read it. Checks reach the sandbox through its egress
// address on the host's gateway bridge, so a backend must listen on that
// address too (0.0.0.0 does).
import { connect } from 'node:net';
import { request } from 'node:http';
import type { HealthCheck } from '../wire/objects-codec.ts';

export interface HealthTarget {
  /** The endpoint the verdict is about. */
  key: string;
  /** Where the check connects: the sandbox's egress address. */
  address: string;
  check: Exclude<HealthCheck, { kind: '' }>;
}

export interface HealthOptions {
  /**
   * 2 s between checks and 2 failures to fail: a dead backend leaves every
   * load balancer within ~5 s, close to the time SWIM needs to declare a whole
   * host dead, for one TCP connect per backend every 2 s.
   */
  intervalMs?: number;
  timeoutMs?: number;
  failuresToFail?: number;
  onChange: (key: string, healthy: boolean) => void;
}

interface TargetState {
  target: HealthTarget;
  healthy: boolean;
  failures: number;
  running: boolean;
}

export const HEALTH_DEFAULTS = { intervalMs: 2_000, timeoutMs: 1_000, failuresToFail: 2 };

export class HealthChecker {
  readonly #o: Required<HealthOptions>;
  readonly #targets = new Map<string, TargetState>();
  #timer: NodeJS.Timeout | undefined;
  /** Checks run since start, by outcome (agent/metrics). */
  readonly results = { passed: 0, failed: 0 };

  constructor(options: HealthOptions) {
    this.#o = { ...HEALTH_DEFAULTS, ...options };
  }

  /**
   * Replaces the set of targets. A new target starts with `initial` (the
   * verdict it had before a restart) or unhealthy: a backend gets traffic only
   * after a check passed. It is checked at once.
   */
  update(targets: readonly HealthTarget[], initial: (key: string) => boolean | undefined = () => undefined): void {
    const wanted = new Map(targets.map((t) => [t.key, t]));
    for (const key of this.#targets.keys()) if (!wanted.has(key)) this.#targets.delete(key);
    for (const [key, target] of wanted) {
      const known = this.#targets.get(key);
      if (known && sameTarget(known.target, target)) continue;
      const state: TargetState = { target, healthy: initial(key) ?? false, failures: 0, running: false };
      this.#targets.set(key, state);
      void this.#checkOne(state);
    }
    if (!this.#timer && this.#targets.size > 0) this.#timer = setInterval(() => this.#checkAll(), this.#o.intervalMs);
    if (this.#timer && this.#targets.size === 0) {
      clearInterval(this.#timer);
      this.#timer = undefined;
    }
  }

  healthy(key: string): boolean | undefined {
    return this.#targets.get(key)?.healthy;
  }

  /** Checked backends by current verdict. */
  verdicts(): { healthy: number; unhealthy: number } {
    let healthy = 0;
    for (const state of this.#targets.values()) if (state.healthy) healthy += 1;
    return { healthy, unhealthy: this.#targets.size - healthy };
  }

  stop(): void {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = undefined;
    this.#targets.clear();
  }

  #checkAll(): void {
    for (const state of this.#targets.values()) void this.#checkOne(state);
  }

  async #checkOne(state: TargetState): Promise<void> {
    if (state.running) return;
    state.running = true;
    const passed = await probe(state.target, this.#o.timeoutMs);
    state.running = false;
    if (this.#targets.get(state.target.key) !== state) return; // replaced or removed meanwhile
    this.results[passed ? 'passed' : 'failed'] += 1;
    state.failures = passed ? 0 : state.failures + 1;
    const healthy = passed || (state.healthy && state.failures < this.#o.failuresToFail);
    if (healthy !== state.healthy) {
      state.healthy = healthy;
      this.#o.onChange(state.target.key, healthy);
    }
  }
}

function sameTarget(a: HealthTarget, b: HealthTarget): boolean {
  return a.address === b.address && a.check.kind === b.check.kind && a.check.port === b.check.port && a.check.path === b.check.path;
}

/** One check: a TCP connect, or an HTTP GET answered with 2xx/3xx. Never throws. */
export function probe(target: HealthTarget, timeoutMs: number): Promise<boolean> {
  return target.check.kind === 'tcp' ? probeTcp(target.address, target.check.port, timeoutMs) : probeHttp(target.address, target.check.port, target.check.path, timeoutMs);
}

function probeTcp(host: string, port: number, timeoutMs: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host, port, timeout: timeoutMs });
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.once('connect', () => done(true));
    socket.once('timeout', () => done(false));
    socket.once('error', () => done(false));
  });
}

function probeHttp(host: string, port: number, path: string, timeoutMs: number): Promise<boolean> {
  return new Promise((resolve) => {
    const req = request({ host, port, path, method: 'GET', timeout: timeoutMs, headers: { 'user-agent': 'weft-health/1' } }, (res) => {
      const code = res.statusCode ?? 0;
      res.resume();
      req.destroy();
      resolve(code >= 200 && code < 400);
    });
    req.once('timeout', () => {
      req.destroy();
      resolve(false);
    });
    req.once('error', () => resolve(false));
    req.end();
  });
}
