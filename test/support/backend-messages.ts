import { message } from './wire.js';

/**
 * Builders for server → client messages (type byte, int32 length, body), for byte-fixture tests
 * of the relay core. Bodies are laid out as Postgres sends them; only what a test checks matters.
 */

const cstring = (s: string): Buffer => Buffer.from(`${s}\0`, 'utf8');

function int16(n: number): Buffer {
  const b = Buffer.alloc(2);
  b.writeInt16BE(n);
  return b;
}

function int32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeInt32BE(n);
  return b;
}

export const parseComplete = (): Buffer => message('1', '');
export const bindComplete = (): Buffer => message('2', '');
export const closeComplete = (): Buffer => message('3', '');
export const noData = (): Buffer => message('n', '');
export const portalSuspended = (): Buffer => message('s', '');
export const emptyQueryResponse = (): Buffer => message('I', '');

/** RowDescription of text columns. */
export function rowDescription(columns: readonly string[]): Buffer {
  const fields = columns.map((name) =>
    Buffer.concat([cstring(name), int32(0), int16(0), int32(25), int16(-1), int32(-1), int16(0)]),
  );
  return message('T', Buffer.concat([int16(columns.length), ...fields]));
}

/** DataRow; null is SQL NULL. */
export function dataRow(values: ReadonlyArray<Buffer | string | null>): Buffer {
  const parts = values.map((v) => {
    if (v === null) return int32(-1);
    const bytes = typeof v === 'string' ? Buffer.from(v, 'utf8') : v;
    return Buffer.concat([int32(bytes.length), bytes]);
  });
  return message('D', Buffer.concat([int16(values.length), ...parts]));
}

export const commandComplete = (tag: string): Buffer => message('C', cstring(tag));

/** ErrorResponse (or NoticeResponse with type 'N') from field letters to values. */
export function errorMessage(fields: Record<string, string>, type: 'E' | 'N' = 'E'): Buffer {
  const body = Object.entries(fields).map(([code, value]) => cstring(`${code}${value}`));
  return message(type, Buffer.concat([...body, Buffer.from([0])]));
}

export const parameterStatusMessage = (name: string, value: string): Buffer =>
  message('S', Buffer.concat([cstring(name), cstring(value)]));

export const readyForQueryMessage = (status: 'I' | 'T' | 'E'): Buffer => message('Z', status);

export const parameterDescription = (oids: readonly number[]): Buffer =>
  message('t', Buffer.concat([int16(oids.length), ...oids.map(int32)]));

export const notificationMessage = (pid: number, channel: string, payload: string): Buffer =>
  message('A', Buffer.concat([int32(pid), cstring(channel), cstring(payload)]));
