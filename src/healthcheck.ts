import net from 'node:net';
import { CANCEL_REQUEST_CODE } from './protocol/codes.js';

/**
 * `pgfence healthcheck`: is a pgfence answering on its client port? It sends a CancelRequest
 * whose key matches no session; pgfence reads it and closes the connection without a word or a
 * log line (as Postgres does), so an answer proves that the listener accepts and the event loop
 * runs, with any configuration (the admin endpoint may be off). A refused connection, a reset, or
 * no close within the timeout all mean unhealthy.
 */
export async function probeListener(target: { host: string; port: number; timeoutMs: number }): Promise<{ ok: boolean; reason: string }> {
  const packet = Buffer.alloc(16);
  packet.writeInt32BE(16, 0);
  packet.writeInt32BE(CANCEL_REQUEST_CODE, 4);
  // processId 0 is never issued (CancelRegistry issues 1 ..), so nothing is cancelled.
  return new Promise((resolve) => {
    const socket = net.connect({ host: target.host, port: target.port });
    let settled = false;
    const done = (ok: boolean, reason: string): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      resolve({ ok, reason });
    };
    const timer = setTimeout(() => done(false, `no answer from ${target.host}:${target.port} within ${target.timeoutMs} ms`), target.timeoutMs);
    socket.once('connect', () => socket.write(packet));
    socket.on('data', () => done(false, `${target.host}:${target.port} answered a CancelRequest with data: not a pgfence`));
    socket.once('end', () => done(true, `pgfence answers on ${target.host}:${target.port}`));
    socket.once('error', (error) => done(false, `${target.host}:${target.port}: ${error.message}`));
  });
}

/** The address to probe for a listen address: a wildcard is reached over loopback. */
export function probeHost(listenHost: string): string {
  if (listenHost === '0.0.0.0' || listenHost === '') return '127.0.0.1';
  if (listenHost === '::' || listenHost === '[::]') return '::1';
  return listenHost;
}
