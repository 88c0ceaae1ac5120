import { isUtf8 } from 'node:buffer';
import { FramingError } from './framer.js';

/** Reads a NUL-terminated string starting at `offset`; returns it and the offset after the NUL. */
export function readCString(buf: Buffer, offset: number): [string, number] {
  const end = buf.indexOf(0, offset);
  if (end < 0) throw new FramingError('string is not NUL-terminated');
  return [buf.toString('utf8', offset, end), end + 1];
}

/** SQL text from a message, and whether its bytes were valid UTF-8 (decoding replaces bad bytes). */
export interface SqlText {
  text: string;
  validUtf8: boolean;
  /** The message the text came from, and the text's byte range in it. */
  message: Buffer;
  start: number;
  end: number;
}

function sqlAt(message: Buffer, offset: number): [SqlText, number] {
  const end = message.indexOf(0, offset);
  if (end < 0) throw new FramingError('string is not NUL-terminated');
  const raw = message.subarray(offset, end);
  return [{ text: raw.toString('utf8'), validUtf8: isUtf8(raw), message, start: offset, end }, end + 1];
}

/** The SQL text of a Query message. */
export function queryText(message: Buffer): SqlText {
  return sqlAt(message, 5)[0];
}

/** Statement name and SQL text of a Parse message. */
export function parseMessage(message: Buffer): { name: string; sql: SqlText } {
  const [name, next] = readCString(message, 5);
  const [sql] = sqlAt(message, next);
  return { name, sql };
}

/** Name and value of a ParameterStatus message. */
export function parameterStatus(message: Buffer): [string, string] {
  const [name, next] = readCString(message, 5);
  const [value] = readCString(message, next);
  return [name, value];
}

/** The fields of an ErrorResponse or NoticeResponse, keyed by field type letter (S, C, M, ...). */
export function errorFields(message: Buffer): Map<string, string> {
  const fields = new Map<string, string>();
  let offset = 5;
  while (offset < message.length && message[offset] !== 0) {
    const code = String.fromCharCode(message[offset] as number);
    const [value, next] = readCString(message, offset + 1);
    fields.set(code, value);
    offset = next;
  }
  return fields;
}
