import type { TransactionStatus } from './codes.js';

/** Builders for the few messages pgfence writes itself. */

/** One protocol message: type byte, int32 length, body. */
export function message(type: string, body: Buffer): Buffer {
  const out = Buffer.allocUnsafe(5 + body.length);
  out[0] = type.charCodeAt(0);
  out.writeInt32BE(4 + body.length, 1);
  body.copy(out, 5);
  return out;
}

function cstrings(...parts: string[]): Buffer {
  return Buffer.concat(parts.map((p) => Buffer.from(p.replaceAll('\0', '') + '\0', 'utf8')));
}

function int32s(...values: number[]): Buffer {
  const out = Buffer.allocUnsafe(4 * values.length);
  values.forEach((v, i) => out.writeInt32BE(v | 0, i * 4));
  return out;
}

export type Severity = 'ERROR' | 'FATAL' | 'PANIC' | 'WARNING' | 'NOTICE';

export interface ErrorFields {
  severity: Severity;
  sqlstate: string;
  message: string;
  detail?: string | undefined;
  hint?: string | undefined;
}

function fieldsBody(f: ErrorFields): Buffer {
  const parts = ['S' + f.severity, 'V' + f.severity, 'C' + f.sqlstate, 'M' + f.message];
  if (f.detail !== undefined) parts.push('D' + f.detail);
  if (f.hint !== undefined) parts.push('H' + f.hint);
  return Buffer.concat([cstrings(...parts), Buffer.from([0])]);
}

export function errorResponse(f: ErrorFields): Buffer {
  return message('E', fieldsBody(f));
}

export function noticeResponse(f: ErrorFields): Buffer {
  return message('N', fieldsBody(f));
}

const READY = {
  I: message('Z', Buffer.from('I')),
  T: message('Z', Buffer.from('T')),
  E: message('Z', Buffer.from('E')),
} as const;

export function readyForQuery(status: TransactionStatus): Buffer {
  return READY[status];
}

/**
 * NegotiateProtocolVersion ('v'): the newest protocol version the server speaks within the
 * client's major version, and the protocol options (`_pq_.*`) of the startup packet it did not
 * recognise. The version goes as Postgres sends it and libpq reads it: the whole version code
 * (major << 16 | minor), although the protocol documentation speaks of the minor version only.
 */
export function negotiateProtocolVersion(version: number, unrecognisedOptions: readonly string[]): Buffer {
  return message('v', Buffer.concat([int32s(version, unrecognisedOptions.length), cstrings(...unrecognisedOptions)]));
}

export const AUTHENTICATION_OK = message('R', int32s(0));
export const AUTHENTICATION_CLEARTEXT = message('R', int32s(3));
/** The single-byte answer to SSLRequest / GSSENCRequest when encryption is not offered. */
export const ENCRYPTION_NOT_SUPPORTED = Buffer.from('N');

export function parameterStatus(name: string, value: string): Buffer {
  return message('S', cstrings(name, value));
}

export function backendKeyData(processId: number, secretKey: number): Buffer {
  return message('K', int32s(processId, secretKey));
}
