import type { Logger } from 'pino';
import { NAME_PATTERN } from '../tenancy/names.js';

/**
 * The per-tenant pause of `pgfence tenant move` (src/lifecycle/move.ts), as one proxy process
 * keeps it. The mover announces it on the control channel, every second while the move runs:
 *
 *   {"tenant": "acme", "action": "pause", "move": "<id>", "seq": 3, "leaseMs": 10000}
 *   {"tenant": "acme", "action": "resume", "move": "<id>"}
 *
 * While a tenant is paused, its new transactions (and new connections) wait here, not refused;
 * transactions in flight finish. Once no session of the tenant holds a backend, the process
 * acknowledges the pause (on the control schema's ack channel, from its listening connection,
 * which is how the mover tells the proxies apart) with `since`, the seq that began its current
 * unbroken pause: the mover copies only while every proxy has been paused since before the copy.
 * A pause nobody renews within its lease ends by itself (the mover died), as a resume does: the
 * registry is read again, sessions are pointed to where the tenant lives now, then the waiting
 * transactions go on.
 */

export type PauseEvent =
  | { action: 'pause'; tenant: string; move: string; seq: number; leaseMs: number }
  | { action: 'resume'; tenant: string; move: string };

export interface PauseAck {
  tenant: string;
  move: string;
  seq: number;
  since: number;
}

/** A move id: what the mover makes (hex), nothing that could be anything else. */
const MOVE_ID = /^[0-9a-f]{8,64}$/;
/** However long a notification asks for: anyone connected to the database can send one. */
export const MAX_PAUSE_LEASE_MS = 60_000;
const DRAIN_POLL_MS = 10;

/** A control-channel payload that is a pause or resume of a move; null for anything else. */
export function readPauseEvent(payload: string | undefined): PauseEvent | null {
  if (payload === undefined) return null;
  let parsed: unknown;
  try {
    parsed = JSON.parse(payload);
  } catch {
    return null;
  }
  if (parsed === null || typeof parsed !== 'object') return null;
  const { tenant, action, move, seq, leaseMs } = parsed as Record<string, unknown>;
  if (typeof tenant !== 'string' || !NAME_PATTERN.test(tenant) || typeof move !== 'string' || !MOVE_ID.test(move)) return null;
  if (action === 'resume') return { action, tenant, move };
  if (action !== 'pause' || !Number.isSafeInteger(seq) || (seq as number) < 1 || !Number.isSafeInteger(leaseMs) || (leaseMs as number) < 1) return null;
  return { action, tenant, move, seq: seq as number, leaseMs: Math.min(leaseMs as number, MAX_PAUSE_LEASE_MS) };
}

export interface TenantPausesHost {
  /** Some session of the tenant holds a backend, or is taking one, in this process. */
  busy(tenantId: string): boolean;
  /** Sessions bound to a server for their lifetime (session pooling): each ends once between transactions. */
  endBoundSessions(tenantId: string): void;
  /** Before the waiting go on: the registry read again, sessions pointed to the tenant's placement now. */
  rehome(tenantId: string): Promise<void>;
  /** Tells the mover that this process holds nothing of the tenant. */
  acknowledge(ack: PauseAck): void;
  log: Logger;
}

interface Pause {
  move: string;
  since: number;
  ending: boolean;
  lease: NodeJS.Timeout | undefined;
  drainCheck: NodeJS.Timeout | undefined;
  gate: Promise<void>;
  open: () => void;
}

export class TenantPauses {
  private readonly pauses = new Map<string, Pause>();

  constructor(private readonly host: TenantPausesHost) {}

  /** Null when the tenant is served; else a promise that resolves when it is again (re-homed). */
  whenServed(tenantId: string): Promise<void> | null {
    return this.pauses.get(tenantId)?.gate ?? null;
  }

  get pausedTenants(): string[] {
    return [...this.pauses.keys()];
  }

  onEvent(event: PauseEvent): void {
    if (event.action === 'resume') {
      void this.end(event.tenant, `resumed by move ${event.move}`);
      return;
    }
    let pause = this.pauses.get(event.tenant);
    // Being re-homed: the mover's next announcement (a second later) pauses it afresh.
    if (pause?.ending === true) return;
    if (pause === undefined || pause.move !== event.move) {
      if (pause === undefined) {
        let open: () => void = () => undefined;
        const gate = new Promise<void>((resolve) => (open = resolve));
        pause = { move: event.move, since: event.seq, ending: false, lease: undefined, drainCheck: undefined, gate, open };
        this.pauses.set(event.tenant, pause);
        this.host.log.info({ tenant: event.tenant, move: event.move }, 'tenant paused for a move: new transactions wait');
        this.host.endBoundSessions(event.tenant);
      } else {
        pause.move = event.move;
        pause.since = event.seq;
      }
    }
    const current = pause;
    clearTimeout(current.lease);
    current.lease = setTimeout(() => void this.end(event.tenant, 'pause lease expired (the mover stopped renewing it)'), event.leaseMs);
    current.lease.unref();
    clearTimeout(current.drainCheck);
    const check = (): void => {
      if (this.pauses.get(event.tenant) !== current || current.ending) return;
      if (this.host.busy(event.tenant)) {
        current.drainCheck = setTimeout(check, DRAIN_POLL_MS);
        return;
      }
      current.drainCheck = undefined;
      this.host.acknowledge({ tenant: event.tenant, move: current.move, seq: event.seq, since: current.since });
    };
    check();
  }

  /** Every waiting transaction goes on (shutdown: its session is being ended anyway). */
  close(): void {
    for (const [tenant, pause] of this.pauses) {
      clearTimeout(pause.lease);
      clearTimeout(pause.drainCheck);
      this.pauses.delete(tenant);
      pause.open();
    }
  }

  private async end(tenantId: string, why: string): Promise<void> {
    const pause = this.pauses.get(tenantId);
    if (pause === undefined || pause.ending) return;
    pause.ending = true;
    clearTimeout(pause.lease);
    clearTimeout(pause.drainCheck);
    try {
      await this.host.rehome(tenantId);
    } catch (error) {
      this.host.log.error({ tenant: tenantId, err: error instanceof Error ? error.message : String(error) }, 'tenant resumed but its sessions could not be re-homed');
    }
    if (this.pauses.get(tenantId) === pause) this.pauses.delete(tenantId);
    this.host.log.info({ tenant: tenantId, move: pause.move, why }, 'tenant resumed: waiting transactions go on');
    pause.open();
  }
}
