import net from 'node:net';
import type { Logger } from 'pino';
import { serialize } from 'pg-protocol';
import type { PeerConfig } from '../config/schema.js';
import type { CancelKey } from './cancel-key.js';

/**
 * PgBouncer's peering: pgfence instances behind one TCP load balancer each write their peer id
 * into the cancel keys they issue (cluster/cancel-key.ts). A CancelRequest that the balancer sends
 * to another instance than the one holding the session is sent on, as the same 16-byte
 * CancelRequest, to the instance with that peer id. The receiving instance owns the key, so it
 * never passes it on again (unless the peer lists disagree about who has which id: keep them equal).
 */
export class PeerForwarder {
  private readonly peers = new Map<number, PeerConfig>();

  constructor(
    self: number,
    peers: readonly PeerConfig[],
    private readonly timeoutMs: number,
    private readonly log: Logger,
  ) {
    for (const peer of peers) if (peer.id !== self) this.peers.set(peer.id, peer);
  }

  /** Sends the key to the peer with id `peer`; false when there is none. Fire and forget: failures are logged. */
  forward(peer: number, key: CancelKey): boolean {
    const target = this.peers.get(peer);
    if (target === undefined) return false;
    const socket = net.connect({ host: target.host, port: target.port });
    socket.once('connect', () => socket.end(serialize.cancel(key.processId, key.secretKey)));
    socket.setTimeout(this.timeoutMs, () => socket.destroy(new Error('timed out')));
    socket.on('error', (error) => this.log.warn({ peer, host: target.host, port: target.port, err: error.message }, 'could not pass a CancelRequest on to its peer'));
    socket.resume();
    return true;
  }
}
