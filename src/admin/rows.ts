import { message } from '../protocol/build.js';

/**
 * Encoders for the result messages the admin console writes: a text-only result set
 * (RowDescription, DataRow), CommandComplete and EmptyQueryResponse. Errors and notices come from
 * `protocol/build.ts`.
 */

/** OID of `text`: every console column is text in text format, as in PgBouncer's SHOW output. */
const TEXT_OID = 25;
/** Bytes per field in RowDescription after the name: table OID, column number, type OID, type length, type modifier, format. */
const FIELD_TAIL_BYTES = 4 + 2 + 4 + 2 + 4 + 2;

/** A C string; a NUL inside would end it early, so it is dropped. */
function cstring(text: string): Buffer {
  return Buffer.from(text.replaceAll('\0', '') + '\0', 'utf8');
}

/** RowDescription ('T') for columns that are all text (OID 25, length -1, no modifier, text format). */
export function rowDescription(columns: readonly string[]): Buffer {
  const names = columns.map(cstring);
  const body = Buffer.allocUnsafe(2 + names.reduce((n, name) => n + name.length + FIELD_TAIL_BYTES, 0));
  let at = body.writeInt16BE(columns.length, 0);
  for (const name of names) {
    at += name.copy(body, at);
    at = body.writeInt32BE(0, at); // not a table column
    at = body.writeInt16BE(0, at);
    at = body.writeInt32BE(TEXT_OID, at);
    at = body.writeInt16BE(-1, at); // variable length
    at = body.writeInt32BE(-1, at); // no type modifier
    at = body.writeInt16BE(0, at); // text format
  }
  return message('T', body);
}

/** DataRow ('D'): each value as length + UTF-8 bytes, NULL as length -1. */
export function dataRow(values: readonly (string | null)[]): Buffer {
  const encoded = values.map((v) => (v === null ? null : Buffer.from(v, 'utf8')));
  const body = Buffer.allocUnsafe(2 + encoded.reduce((n, v) => n + 4 + (v?.length ?? 0), 0));
  let at = body.writeInt16BE(values.length, 0);
  for (const value of encoded) {
    at = body.writeInt32BE(value === null ? -1 : value.length, at);
    if (value !== null) at += value.copy(body, at);
  }
  return message('D', body);
}

/** CommandComplete ('C') with its tag: `SHOW`, `RELOAD`, ... */
export function commandComplete(tag: string): Buffer {
  return message('C', cstring(tag));
}

/** EmptyQueryResponse ('I'): the answer to a query string with no command in it. */
export const EMPTY_QUERY_RESPONSE: Buffer = message('I', Buffer.alloc(0));

/** A whole text result set: RowDescription, one DataRow per row, CommandComplete. */
export function textResult(columns: readonly string[], rows: readonly (readonly (string | null)[])[], tag: string): Buffer[] {
  return [rowDescription(columns), ...rows.map(dataRow), commandComplete(tag)];
}
