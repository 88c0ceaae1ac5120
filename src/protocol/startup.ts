import { CANCEL_REQUEST_CODE, GSSENC_REQUEST_CODE, PROTOCOL_3_0, SSL_REQUEST_CODE } from './codes.js';
import { FramingError } from './framer.js';

/**
 * A startup packet whose length Postgres would not read (or a cancel request of the wrong size):
 * Postgres closes such a connection without a word, since the peer may not speak the protocol.
 */
export class UnreadableStartupPacket extends FramingError {}

/** Postgres refuses startup packets above this size, and so do we. */
export const MAX_STARTUP_PACKET = 10_000;

/** The largest length field of a password or SASL message: Postgres reads at most 65,535 bytes of token. */
export const MAX_PASSWORD_MESSAGE = 65_535 + 4;

export type StartupPacket =
  | { kind: 'ssl' }
  | { kind: 'gssenc' }
  | { kind: 'cancel'; processId: number; secretKey: number }
  /**
   * A StartupMessage of protocol 3.x. `minor` is what the client asked for; pgfence speaks 3.0
   * and answers a higher minor, or any `_pq_.` protocol option (`protocolOptions`, kept out of
   * `params`), with NegotiateProtocolVersion, as Postgres and PgBouncer do.
   */
  | { kind: 'startup'; params: Map<string, string>; minor: number; protocolOptions: string[] }
  | { kind: 'unsupported-version'; major: number; minor: number };

/** Collects the untyped, length-prefixed packets of the startup phase. */
export class StartupReader {
  private buffered: Buffer = Buffer.alloc(0);

  /** Returns the next whole packet, or null if more bytes are needed. */
  next(chunk: Buffer | null): StartupPacket | null {
    if (chunk !== null && chunk.length > 0) {
      this.buffered = this.buffered.length === 0 ? chunk : Buffer.concat([this.buffered, chunk]);
    }
    if (this.buffered.length < 4) return null;
    const length = this.buffered.readInt32BE(0);
    if (length < 8 || length > MAX_STARTUP_PACKET) {
      throw new UnreadableStartupPacket(`invalid startup packet length ${length}`);
    }
    if (this.buffered.length < length) return null;
    const packet = this.buffered.subarray(0, length);
    this.buffered = this.buffered.subarray(length);
    return decodeStartupPacket(packet);
  }

  /** Bytes received after the last whole packet (the client may pipeline its first messages). */
  takeRest(): Buffer {
    const rest = this.buffered;
    this.buffered = Buffer.alloc(0);
    return rest;
  }
}

function decodeStartupPacket(packet: Buffer): StartupPacket {
  const code = packet.readInt32BE(4);
  switch (code) {
    case SSL_REQUEST_CODE:
      return { kind: 'ssl' };
    case GSSENC_REQUEST_CODE:
      return { kind: 'gssenc' };
    case CANCEL_REQUEST_CODE:
      if (packet.length !== 16) throw new UnreadableStartupPacket('invalid cancel request length');
      return { kind: 'cancel', processId: packet.readInt32BE(8), secretKey: packet.readInt32BE(12) };
    default: {
      const major = code >>> 16;
      const minor = code & 0xffff;
      if (major !== PROTOCOL_3_0 >>> 16) return { kind: 'unsupported-version', major, minor };
      const params = decodeParams(packet);
      const protocolOptions: string[] = [];
      for (const name of params.keys()) {
        if (!name.startsWith(PROTOCOL_OPTION_PREFIX)) continue;
        protocolOptions.push(name);
        params.delete(name);
      }
      return { kind: 'startup', params, minor, protocolOptions };
    }
  }
}

/** Startup parameters that are protocol extensions rather than settings (none is supported). */
const PROTOCOL_OPTION_PREFIX = '_pq_.';

function decodeParams(packet: Buffer): Map<string, string> {
  const params = new Map<string, string>();
  let offset = 8;
  while (offset < packet.length) {
    const keyEnd = packet.indexOf(0, offset);
    if (keyEnd < 0) throw new FramingError('startup packet is not terminated');
    if (keyEnd === offset) return params; // the terminating empty name
    const valueEnd = packet.indexOf(0, keyEnd + 1);
    if (valueEnd < 0) throw new FramingError('startup parameter has no value');
    params.set(packet.toString('utf8', offset, keyEnd), packet.toString('utf8', keyEnd + 1, valueEnd));
    offset = valueEnd + 1;
  }
  throw new FramingError('startup packet is not terminated');
}
