/**
 * Well-formedness of frontend (client → server) messages, checked where each message is framed so
 * that nothing downstream ever decodes a malformed one. Pure and synchronous; it never throws and
 * allocates nothing for a well-formed message (no string decoding: `indexOf(0)` and bounds-checked
 * integer reads only).
 *
 * The layout rules are the ones the Postgres backend enforces while it reads a message (its
 * pq_getmsgstring / pq_getmsgint / pq_getmsgbytes / pq_getmsgend): a string ends at its first NUL,
 * which must lie inside the message; integers and counted bytes must fit; nothing may follow the
 * last field. Like the backend, counts are read as unsigned 16-bit integers: libpq and other
 * drivers send up to 65535 parameters, so a count above 32767 is legitimate and only has to fit.
 * Rules the server reports as a clean ERROR once it has the whole message (a Bind whose format-code
 * count is neither 0, 1 nor the parameter count, unsupported format codes, a FunctionCall's
 * argument count) are left to the server. Stricter than the backend, on purpose: a Describe or Close
 * kind other than 'S' or 'P' is refused here (the server would answer with an ERROR; the relay reads
 * the kind), and so are a body on CopyDone or Terminate and data after CopyFail's string (the server
 * ignores both). No driver sends any of these.
 */
import { Frontend } from './codes.js';

export { Frontend };

/** Type byte and int32 length. */
const HEADER = 5;
const S = 0x53;
const P = 0x50;

const LENGTH_MISMATCH = 'message length does not match its length field';

const QUERY = {
  text: 'Query message: query string is not NUL-terminated',
  trailing: 'Query message: unexpected data after the query string',
} as const;

const PARSE = {
  name: 'Parse message: statement name is not NUL-terminated',
  text: 'Parse message: query string is not NUL-terminated',
  count: 'Parse message: parameter type count is missing',
  types: 'Parse message: declares more parameter types than it holds',
  trailing: 'Parse message: unexpected data after the parameter types',
} as const;

const BIND = {
  portal: 'Bind message: portal name is not NUL-terminated',
  statement: 'Bind message: statement name is not NUL-terminated',
  formatCount: 'Bind message: parameter format count is missing',
  formats: 'Bind message: declares more parameter formats than it holds',
  paramCount: 'Bind message: parameter count is missing',
  paramLength: 'Bind message: a parameter length is missing',
  badLength: 'Bind message: invalid parameter length',
  value: 'Bind message: a parameter value runs past the end of the message',
  resultCount: 'Bind message: result format count is missing',
  results: 'Bind message: declares more result formats than it holds',
  trailing: 'Bind message: unexpected data after the result formats',
} as const;

const EXECUTE = {
  portal: 'Execute message: portal name is not NUL-terminated',
  rows: 'Execute message: row limit is missing',
  trailing: 'Execute message: unexpected data after the row limit',
} as const;

const FUNCTION_CALL = {
  oid: 'FunctionCall message: function OID is missing',
  formatCount: 'FunctionCall message: argument format count is missing',
  formats: 'FunctionCall message: declares more argument formats than it holds',
  argCount: 'FunctionCall message: argument count is missing',
  argLength: 'FunctionCall message: an argument length is missing',
  badLength: 'FunctionCall message: invalid argument length',
  value: 'FunctionCall message: an argument value runs past the end of the message',
  result: 'FunctionCall message: result format is missing',
  trailing: 'FunctionCall message: unexpected data after the result format',
} as const;

const COPY_FAIL = {
  text: 'CopyFail message: error message is not NUL-terminated',
  trailing: 'CopyFail message: unexpected data after the error message',
} as const;

interface TargetProblems {
  noKind: string;
  kind: string;
  name: string;
  trailing: string;
}

function targetProblems(message: string): TargetProblems {
  return {
    noKind: `${message} message: target kind is missing`,
    kind: `${message} message: target kind must be 'S' or 'P'`,
    name: `${message} message: name is not NUL-terminated`,
    trailing: `${message} message: unexpected data after the name`,
  };
}

const DESCRIBE = targetProblems('Describe');
const CLOSE = targetProblems('Close');

const SYNC_BODY = 'Sync message: unexpected body';
const FLUSH_BODY = 'Flush message: unexpected body';
const COPY_DONE_BODY = 'CopyDone message: unexpected body';
const TERMINATE_BODY = 'Terminate message: unexpected body';
const PASSWORD_EMPTY = 'Password message: body is empty';

/** Why a client message is malformed, or null when it is well-formed. */
export function frontendMessageProblem(type: number, message: Buffer): string | null {
  const end = message.length;
  if (end < HEADER || message.readInt32BE(1) !== end - 1) return LENGTH_MISMATCH;
  switch (type) {
    case Frontend.Query:
      return onlyCString(message, QUERY.text, QUERY.trailing);
    case Frontend.Parse:
      return parseProblem(message);
    case Frontend.Bind:
      return bindProblem(message);
    case Frontend.Describe:
      return targetProblem(message, DESCRIBE);
    case Frontend.Close:
      return targetProblem(message, CLOSE);
    case Frontend.Execute:
      return executeProblem(message);
    case Frontend.Sync:
      return end === HEADER ? null : SYNC_BODY;
    case Frontend.Flush:
      return end === HEADER ? null : FLUSH_BODY;
    case Frontend.CopyDone:
      return end === HEADER ? null : COPY_DONE_BODY;
    case Frontend.Terminate:
      return end === HEADER ? null : TERMINATE_BODY;
    case Frontend.CopyData:
      return null;
    case Frontend.CopyFail:
      return onlyCString(message, COPY_FAIL.text, COPY_FAIL.trailing);
    case Frontend.FunctionCall:
      return functionCallProblem(message);
    case Frontend.Password:
      return end > HEADER ? null : PASSWORD_EMPTY;
    default:
      return unknownType(type);
  }
}

/** The offset just past the NUL that ends the string at `offset`, or -1 if the message has none. */
function afterCString(message: Buffer, offset: number): number {
  if (offset >= message.length) return -1;
  const nul = message.indexOf(0, offset);
  return nul < 0 ? -1 : nul + 1;
}

/** A body that is one NUL-terminated string (Query, CopyFail). */
function onlyCString(message: Buffer, unterminated: string, trailing: string): string | null {
  const end = afterCString(message, HEADER);
  if (end < 0) return unterminated;
  return end === message.length ? null : trailing;
}

function parseProblem(message: Buffer): string | null {
  const end = message.length;
  let at = afterCString(message, HEADER);
  if (at < 0) return PARSE.name;
  at = afterCString(message, at);
  if (at < 0) return PARSE.text;
  if (end - at < 2) return PARSE.count;
  const types = message.readUInt16BE(at) * 4;
  at += 2;
  if (end - at < types) return PARSE.types;
  return end - at === types ? null : PARSE.trailing;
}

/**
 * Skips `count` (int32 length, bytes) values starting at `at`; returns the offset after them or a
 * problem. A length of -1 is NULL; any other negative length is invalid.
 */
function skipValues(
  message: Buffer,
  at: number,
  count: number,
  problems: { readonly argLength: string; readonly badLength: string; readonly value: string },
): number | string {
  const end = message.length;
  for (let i = 0; i < count; i++) {
    if (end - at < 4) return problems.argLength;
    const length = message.readInt32BE(at);
    at += 4;
    if (length === -1) continue;
    if (length < 0) return problems.badLength;
    if (end - at < length) return problems.value;
    at += length;
  }
  return at;
}

const BIND_VALUES = { argLength: BIND.paramLength, badLength: BIND.badLength, value: BIND.value } as const;

function bindProblem(message: Buffer): string | null {
  const end = message.length;
  let at = afterCString(message, HEADER);
  if (at < 0) return BIND.portal;
  at = afterCString(message, at);
  if (at < 0) return BIND.statement;
  if (end - at < 2) return BIND.formatCount;
  const formats = message.readUInt16BE(at) * 2;
  at += 2;
  if (end - at < formats) return BIND.formats;
  at += formats;
  if (end - at < 2) return BIND.paramCount;
  const params = message.readUInt16BE(at);
  const afterValues = skipValues(message, at + 2, params, BIND_VALUES);
  if (typeof afterValues === 'string') return afterValues;
  at = afterValues;
  if (end - at < 2) return BIND.resultCount;
  const results = message.readUInt16BE(at) * 2;
  at += 2;
  if (end - at < results) return BIND.results;
  return end - at === results ? null : BIND.trailing;
}

/** Describe and Close: 'S' or 'P', then a name. */
function targetProblem(message: Buffer, problems: TargetProblems): string | null {
  if (message.length === HEADER) return problems.noKind;
  const kind = message[HEADER];
  if (kind !== S && kind !== P) return problems.kind;
  const end = afterCString(message, HEADER + 1);
  if (end < 0) return problems.name;
  return end === message.length ? null : problems.trailing;
}

function executeProblem(message: Buffer): string | null {
  const at = afterCString(message, HEADER);
  if (at < 0) return EXECUTE.portal;
  const rest = message.length - at;
  if (rest < 4) return EXECUTE.rows;
  return rest === 4 ? null : EXECUTE.trailing;
}

const FUNCTION_CALL_VALUES = {
  argLength: FUNCTION_CALL.argLength,
  badLength: FUNCTION_CALL.badLength,
  value: FUNCTION_CALL.value,
} as const;

function functionCallProblem(message: Buffer): string | null {
  const end = message.length;
  let at = HEADER;
  if (end - at < 4) return FUNCTION_CALL.oid;
  at += 4;
  if (end - at < 2) return FUNCTION_CALL.formatCount;
  const formats = message.readUInt16BE(at) * 2;
  at += 2;
  if (end - at < formats) return FUNCTION_CALL.formats;
  at += formats;
  if (end - at < 2) return FUNCTION_CALL.argCount;
  const args = message.readUInt16BE(at);
  const afterValues = skipValues(message, at + 2, args, FUNCTION_CALL_VALUES);
  if (typeof afterValues === 'string') return afterValues;
  at = afterValues;
  if (end - at < 2) return FUNCTION_CALL.result;
  return end - at === 2 ? null : FUNCTION_CALL.trailing;
}

function unknownType(type: number): string {
  if (type >= 0x21 && type <= 0x7e) return `unknown message type "${String.fromCharCode(type)}"`;
  return `unknown message type 0x${type.toString(16).padStart(2, '0')}`;
}
