import { Writable } from 'node:stream';
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { configSchema } from '../../src/config/schema.js';
import { AuthThrottle, type AuthThrottleOptions } from '../../src/frontend/auth-throttle.js';

const DEFAULTS = configSchema.shape.listen.parse({}).authThrottle;

/** A throttle on a clock the test moves, logging into `lines`. */
function throttle(overrides: Partial<AuthThrottleOptions> = {}): { t: AuthThrottle; clock: { now: number }; lines: string[]; held: { n: number }; shared: string[] } {
  const clock = { now: 1_000_000 };
  const lines: string[] = [];
  const held = { n: 0 };
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      lines.push(...chunk.toString().split('\n').filter((l) => l !== ''));
      done();
    },
  });
  const options = { ...DEFAULTS, ...overrides };
  const shared: string[] = [];
  const t = new AuthThrottle(() => options, pino({ level: 'info' }, sink), () => held.n++, () => clock.now, (key) => shared.push(key));
  return { t, clock, lines, held, shared };
}

describe('AuthThrottle', () => {
  it('has the documented defaults', () => {
    expect(DEFAULTS).toEqual({ enabled: true, freeFailures: 5, windowMs: 60_000, delayMs: 250, maxDelayMs: 5_000, maxAddresses: 10_000 });
  });

  it('answers the first failures at once, then holds each further one twice as long, up to the cap', () => {
    const { t, held } = throttle();
    const holds = Array.from({ length: 12 }, () => t.failed('203.0.113.7').holdMs);
    expect(holds).toEqual([0, 0, 0, 0, 0, 250, 500, 1_000, 2_000, 4_000, 5_000, 5_000]);
    expect(held.n).toBe(7);
  });

  it('never slows another address, and counts an IPv4-mapped IPv6 address as its IPv4 address', () => {
    const { t } = throttle({ freeFailures: 1 });
    t.failed('203.0.113.7');
    expect(t.failed('::ffff:203.0.113.7').holdMs).toBe(250);
    expect(t.failed('198.51.100.1')).toEqual({ holdMs: 0, throttled: false });
    expect(t.failed('2001:db8::1')).toEqual({ holdMs: 0, throttled: false });
  });

  it('forgives an address after windowMs without a failure, not while it keeps failing', () => {
    const { t, clock } = throttle({ freeFailures: 2, windowMs: 10_000 });
    for (let i = 0; i < 2; i++) t.failed('203.0.113.7');
    // Failing every 9.999 s keeps it throttled and the delay growing.
    const steady = Array.from({ length: 4 }, () => {
      clock.now += 9_999;
      return t.failed('203.0.113.7').holdMs;
    });
    expect(steady).toEqual([250, 500, 1_000, 2_000]);
    clock.now += 10_001;
    expect(t.failed('203.0.113.7').holdMs).toBe(0);
    expect(t.failed('203.0.113.7').holdMs).toBe(0);
    expect(t.failed('203.0.113.7').holdMs).toBe(250);
  });

  it('logs one line per burst, not one per held failure', () => {
    const { t, clock, lines } = throttle({ freeFailures: 1, windowMs: 1_000 });
    for (let i = 0; i < 50; i++) t.failed('203.0.113.7');
    expect(lines).toHaveLength(1);
    expect(JSON.parse(lines[0]!)).toMatchObject({ level: 40, peerAddress: '203.0.113.7', failures: 2 });
    clock.now += 1_001;
    for (let i = 0; i < 50; i++) t.failed('203.0.113.7');
    expect(lines).toHaveLength(2);
  });

  it('remembers at most maxAddresses addresses', () => {
    const { t } = throttle({ maxAddresses: 100 });
    for (let i = 0; i < 5_000; i++) t.failed(`10.0.${i >> 8}.${i & 255}`);
    expect(t.size).toBe(100);
  });

  it('does nothing when disabled, or without an address', () => {
    const { t, held } = throttle({ enabled: false, freeFailures: 0 });
    for (let i = 0; i < 20; i++) expect(t.failed('203.0.113.7').holdMs).toBe(0);
    const on = throttle({ freeFailures: 0 });
    expect(on.t.failed(undefined).holdMs).toBe(0);
    expect(held.n).toBe(0);
  });

  it('shares each failure it counts, and counts the failures other workers share, without holding or logging them', () => {
    const { t, held, lines, shared } = throttle({ freeFailures: 3 });
    t.failed('::ffff:203.0.113.7');
    expect(shared).toEqual(['203.0.113.7']);
    t.failedElsewhere('203.0.113.7');
    t.failedElsewhere('203.0.113.7');
    expect([held.n, lines.length, shared.length]).toEqual([0, 0, 1]);
    // Three failures counted in all: the next one here is the first held.
    expect(t.failed('203.0.113.7').holdMs).toBe(250);
    expect(t.failed('198.51.100.1').holdMs).toBe(0);
  });

  it('counts nothing from other workers while disabled', () => {
    const { t } = throttle({ enabled: false });
    t.failedElsewhere('203.0.113.7');
    expect(t.size).toBe(0);
  });
});
