import { message } from '../protocol/build.js';

/**
 * Encoders for the result messages the admin console writes: a result set (RowDescription,
 * DataRow), CommandComplete and EmptyQueryResponse. Errors and notices come from
 * `protocol/build.ts`. Every value is sent in text format; RowDescription names each column's type
 * as PgBouncer does (text, int4, int8 or numeric), so drivers hand out numbers.
 */

/** A column's type: its OID and type length in RowDescription. */
export type ColumnType = 'text' | 'int4' | 'int8' | 'numeric';

const TYPES: Record<ColumnType, { oid: number; length: number }> = {
  text: { oid: 25, length: -1 },
  int4: { oid: 23, length: 4 },
  int8: { oid: 20, length: 8 },
  numeric: { oid: 1700, length: -1 },
};

export interface ColumnSpec {
  name: string;
  type: ColumnType;
}
/** Bytes per field in RowDescription after the name: table OID, column number, type OID, type length, type modifier, format. */
const FIELD_TAIL_BYTES = 4 + 2 + 4 + 2 + 4 + 2;

/** A C string; a NUL inside would end it early, so it is dropped. */
function cstring(text: string): Buffer {
  return Buffer.from(text.replaceAll('\0', '') + '\0', 'utf8');
}

/** RowDescription ('T'): for each column its name, type OID and length, no modifier, text format. */
export function rowDescription(columns: readonly (string | ColumnSpec)[]): Buffer {
  const specs = columns.map((c): ColumnSpec => (typeof c === 'string' ? { name: c, type: 'text' } : c));
  const names = specs.map((c) => cstring(c.name));
  const body = Buffer.allocUnsafe(2 + names.reduce((n, name) => n + name.length + FIELD_TAIL_BYTES, 0));
  let at = body.writeInt16BE(specs.length, 0);
  specs.forEach((spec, i) => {
    const type = TYPES[spec.type];
    at += (names[i] as Buffer).copy(body, at);
    at = body.writeInt32BE(0, at); // not a table column
    at = body.writeInt16BE(0, at);
    at = body.writeInt32BE(type.oid, at);
    at = body.writeInt16BE(type.length, at);
    at = body.writeInt32BE(-1, at); // no type modifier
    at = body.writeInt16BE(0, at); // text format
  });
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

/** A whole result set: RowDescription, one DataRow per row, CommandComplete. */
export function typedResult(columns: readonly (string | ColumnSpec)[], rows: readonly (readonly (string | null)[])[], tag: string): Buffer[] {
  return [rowDescription(columns), ...rows.map(dataRow), commandComplete(tag)];
}
