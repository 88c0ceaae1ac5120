import pino from 'pino';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { MAX_PAUSE_LEASE_MS, type PauseAck, readPauseEvent, TenantPauses } from '../../src/placement/tenant-pauses.js';

const MOVE = 'a1b2c3d4e5f60718';

describe('pause events on the control channel', () => {
  it('reads a pause and a resume, capping the lease', () => {
    expect(readPauseEvent(JSON.stringify({ tenant: 'acme', action: 'pause', move: MOVE, seq: 2, leaseMs: 10_000 }))).toEqual({ tenant: 'acme', action: 'pause', move: MOVE, seq: 2, leaseMs: 10_000 });
    // Anyone connected to the database can NOTIFY: no pause outlives the cap unrenewed.
    expect(readPauseEvent(JSON.stringify({ tenant: 'acme', action: 'pause', move: MOVE, seq: 1, leaseMs: 86_400_000 }))).toMatchObject({ leaseMs: MAX_PAUSE_LEASE_MS });
    expect(readPauseEvent(JSON.stringify({ tenant: 'acme', action: 'resume', move: MOVE }))).toEqual({ tenant: 'acme', action: 'resume', move: MOVE });
  });

  it('takes anything else for an ordinary tenant change (not a pause)', () => {
    for (const payload of [
      undefined,
      'not json',
      'null',
      JSON.stringify({ tenant: 'acme', action: 'suspend' }),
      JSON.stringify({ tenant: 'a;b', action: 'pause', move: MOVE, seq: 1, leaseMs: 1 }),
      JSON.stringify({ tenant: 'acme', action: 'pause', move: 'NOT-HEX', seq: 1, leaseMs: 1 }),
      JSON.stringify({ tenant: 'acme', action: 'pause', move: MOVE, seq: 0, leaseMs: 1 }),
      JSON.stringify({ tenant: 'acme', action: 'pause', move: MOVE, seq: 1, leaseMs: '5' }),
    ]) {
      expect(readPauseEvent(payload), String(payload)).toBeNull();
    }
  });
});

describe('a tenant paused in one process', () => {
  let busy: Set<string>;
  let acks: PauseAck[];
  let rehomed: string[];
  let ended: string[];
  let pauses: TenantPauses;

  beforeEach(() => {
    vi.useFakeTimers();
    busy = new Set();
    acks = [];
    rehomed = [];
    ended = [];
    pauses = new TenantPauses({
      busy: (id) => busy.has(id),
      endBoundSessions: (id) => ended.push(id),
      rehome: async (id) => void rehomed.push(id),
      acknowledge: (ack) => acks.push(ack),
      log: pino({ level: 'silent' }),
    });
  });
  afterEach(() => {
    pauses.close();
    vi.useRealTimers();
  });

  it('acknowledges only once no session holds a backend, with the seq its unbroken pause began at', async () => {
    busy.add('acme');
    pauses.onEvent({ tenant: 'acme', action: 'pause', move: MOVE, seq: 1, leaseMs: 10_000 });
    expect(ended).toEqual(['acme']);
    expect(pauses.whenServed('acme')).not.toBeNull();
    expect(pauses.whenServed('globex')).toBeNull();
    await vi.advanceTimersByTimeAsync(500);
    expect(acks).toEqual([]);
    busy.delete('acme');
    await vi.advanceTimersByTimeAsync(20);
    expect(acks).toEqual([{ tenant: 'acme', move: MOVE, seq: 1, since: 1 }]);
    pauses.onEvent({ tenant: 'acme', action: 'pause', move: MOVE, seq: 2, leaseMs: 10_000 });
    expect(acks.at(-1)).toEqual({ tenant: 'acme', move: MOVE, seq: 2, since: 1 });
    expect(ended).toEqual(['acme']);
  });

  it('resumes on the resume event: re-homes first, then lets the waiting go on', async () => {
    pauses.onEvent({ tenant: 'acme', action: 'pause', move: MOVE, seq: 1, leaseMs: 10_000 });
    const gate = pauses.whenServed('acme') as Promise<void>;
    let through = false;
    void gate.then(() => (through = rehomed.length === 1));
    pauses.onEvent({ tenant: 'acme', action: 'resume', move: MOVE });
    await gate;
    expect(through).toBe(true);
    expect(pauses.whenServed('acme')).toBeNull();
  });

  it('a pause nobody renews ends with its lease; the next announcement starts a new unbroken pause', async () => {
    pauses.onEvent({ tenant: 'acme', action: 'pause', move: MOVE, seq: 1, leaseMs: 1_000 });
    await vi.advanceTimersByTimeAsync(900);
    pauses.onEvent({ tenant: 'acme', action: 'pause', move: MOVE, seq: 2, leaseMs: 1_000 });
    await vi.advanceTimersByTimeAsync(900);
    expect(pauses.pausedTenants).toEqual(['acme']);
    await vi.advanceTimersByTimeAsync(200);
    expect(pauses.pausedTenants).toEqual([]);
    expect(rehomed).toEqual(['acme']);
    pauses.onEvent({ tenant: 'acme', action: 'pause', move: MOVE, seq: 5, leaseMs: 1_000 });
    expect(acks.at(-1)).toEqual({ tenant: 'acme', move: MOVE, seq: 5, since: 5 });
  });
});
