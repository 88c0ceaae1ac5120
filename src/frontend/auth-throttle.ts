import net from 'node:net';
import { LRUCache } from 'lru-cache';
import type { Logger } from 'pino';

/**
 * A brake on password (token) guessing, per client address: the first `freeFailures` failed
 * authentications in a window are answered at once; each further one has its error reply held
 * for `delayMs`, doubling with every failure up to `maxDelayMs`. The window is measured from the
 * address's last failure, so a steady guesser stays throttled, and `windowMs` without a failure
 * forgives the address.
 *
 * What it never does: slow another address (the state is per address), or slow a valid login
 * (only failures are held, after verification; a valid token from a throttled address connects
 * at once and does not reset the count, so a guesser cannot clear it with one good token). It does
 * not refuse connections either: a held client waits with its socket paused, within the startup
 * timeout, and a client that hangs up meanwhile costs nothing more. Postgres's auth_delay module
 * holds every failure for a fixed time; PgBouncer has no such brake.
 *
 * With `workers: N`, each worker tells the others of its failures (`share`, through the primary)
 * and counts theirs (`failedElsewhere`), so the free failures are per instance, not per worker.
 *
 * Memory is bounded: at most `maxAddresses` addresses are remembered (least recently failed
 * dropped first), each for at most `windowMs` after its last failure. IPv4-mapped IPv6 addresses
 * count as their IPv4 address.
 *
 * Logging: one warning when an address starts being throttled (a burst), none per held failure;
 * the failures before that are logged one by one by the handshake, at most `freeFailures` per
 * window.
 */

export interface AuthThrottleOptions {
  enabled: boolean;
  freeFailures: number;
  windowMs: number;
  delayMs: number;
  maxDelayMs: number;
  maxAddresses: number;
}

interface AddressRecord {
  failures: number;
  lastFailure: number;
}

export interface FailureVerdict {
  /** How long to hold the error reply; 0 = answer at once. */
  holdMs: number;
  /** The address is throttled: the failure itself is not logged (the burst was, once). */
  throttled: boolean;
}

const AT_ONCE: FailureVerdict = { holdMs: 0, throttled: false };

export class AuthThrottle {
  /** Made at the first failure, and again when a reload changes maxAddresses. */
  private records: LRUCache<string, AddressRecord> | null = null;

  constructor(
    private readonly options: () => AuthThrottleOptions,
    private readonly log: Logger,
    /** Called once per held failure (a metric). */
    private readonly onHeld: () => void = () => undefined,
    private readonly now: () => number = Date.now,
    /** Told of every failure counted here, with its address key (workers pass it to the others). */
    private readonly share: (key: string) => void = () => undefined,
  ) {}

  /** Addresses remembered now. */
  get size(): number {
    return this.records?.size ?? 0;
  }

  /** A failed authentication from `address`: how long its error reply waits. */
  failed(address: string | undefined): FailureVerdict {
    const opts = this.options();
    if (!opts.enabled || address === undefined) return AT_ONCE;
    const key = addressKey(address);
    const record = this.count(key, opts);
    this.share(key);
    const over = record.failures - opts.freeFailures;
    if (over <= 0) return AT_ONCE;
    if (over === 1) {
      this.log.warn(
        { peerAddress: key, failures: record.failures, windowMs: opts.windowMs },
        'repeated failed logins from this address: further failures are answered late, until it stops failing for windowMs',
      );
    }
    this.onHeld();
    // over = 1 → delayMs, 2 → 2 × delayMs, ... capped (the exponent is bounded so it stays finite).
    const holdMs = Math.min(opts.maxDelayMs, opts.delayMs * 2 ** Math.min(over - 1, 30));
    return { holdMs, throttled: true };
  }

  /** A failure another worker of this instance answered: counted here, neither held nor logged. */
  failedElsewhere(key: string): void {
    const opts = this.options();
    if (opts.enabled) this.count(key, opts);
  }

  private count(key: string, opts: AuthThrottleOptions): AddressRecord {
    if (this.records?.max !== opts.maxAddresses) this.records = new LRUCache<string, AddressRecord>({ max: opts.maxAddresses });
    const now = this.now();
    let record = this.records.get(key);
    if (record === undefined || now - record.lastFailure > opts.windowMs) {
      record = { failures: 0, lastFailure: now };
      this.records.set(key, record);
    }
    record.failures++;
    record.lastFailure = now;
    return record;
  }
}

/** The key an address is counted under: IPv4-mapped IPv6 addresses as plain IPv4. */
export function addressKey(address: string): string {
  if (address.startsWith('::ffff:') && net.isIPv4(address.slice(7))) return address.slice(7);
  return address;
}

/** Resolves after `ms` (at once for 0) without keeping the process alive for it. */
export function hold(ms: number): Promise<void> {
  if (ms <= 0) return Promise.resolve();
  return new Promise((resolve) => setTimeout(resolve, ms).unref());
}
