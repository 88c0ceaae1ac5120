import type { ChannelStatement } from '../guard/index.js';
import { message as buildMessage } from '../protocol/build.js';
import { readCString } from '../protocol/decode.js';
import { quoteIdent, quoteLiteral } from '../tenancy/index.js';

/**
 * Tenant-private LISTEN/NOTIFY. Channels are database-wide, so the client's channel names are
 * mapped to `<tenant>.<channel>` on the way in and back on the way out; a tenant id has no dot,
 * so one tenant can never name another's channel (acme's "globex.jobs" is "acme.globex.jobs").
 */
const NAMEDATALEN = 63;

export function serverChannel(tenant: string, channel: string): string {
  return `${tenant}.${channel}`;
}

/** A channel name the tenant's prefix makes longer than Postgres allows. */
export interface ChannelTooLong {
  tooLong: string;
}

/** The server channel for a client's channel, or why it cannot have one. */
export function mappedChannel(tenant: string, channel: string): string | ChannelTooLong {
  const mapped = serverChannel(tenant, channel);
  return Buffer.byteLength(mapped) > NAMEDATALEN ? { tooLong: channel } : mapped;
}

/** Each LISTEN/UNLISTEN/NOTIFY statement rewritten to the tenant's channel, as text edits. */
export function channelEdits(statements: readonly ChannelStatement[], tenant: string): TextEdit[] | ChannelTooLong {
  const edits: TextEdit[] = [];
  for (const st of statements) {
    const mapped = st.channel === null ? null : mappedChannel(tenant, st.channel);
    if (mapped !== null && typeof mapped !== 'string') return mapped;
    let text: string;
    if (st.kind === 'listen') text = `LISTEN ${quoteIdent(mapped as string)}`;
    else if (st.kind === 'unlisten') text = mapped === null ? 'UNLISTEN *' : `UNLISTEN ${quoteIdent(mapped)}`;
    else text = `NOTIFY ${quoteIdent(mapped as string)}${st.payload === null ? '' : `, ${quoteLiteral(st.payload)}`}`;
    edits.push({ start: st.start, end: st.end, text: ` ${text}` });
  }
  return edits;
}

/**
 * A NotificationResponse as the client must see it: its own channel name, and pgfence's process
 * id for its own notifications (the one it got in BackendKeyData). Null for a channel that is not
 * the tenant's (it cannot be listening there; dropped all the same).
 */
export function clientNotification(message: Buffer, tenant: string, backendPid: number, clientPid: number): Buffer | null {
  const pid = message.readInt32BE(5);
  const [channel, afterChannel] = readCString(message, 9);
  const prefix = `${tenant}.`;
  if (!channel.startsWith(prefix)) return null;
  const processId = Buffer.allocUnsafe(4);
  processId.writeInt32BE(pid === backendPid ? clientPid : pid);
  const name = Buffer.from(`${channel.slice(prefix.length)}\0`, 'utf8');
  return buildMessage('A', Buffer.concat([processId, name, message.subarray(afterChannel)]));
}

/** A replacement of bytes [start, end) of a SQL text. */
export interface TextEdit {
  start: number;
  end: number;
  text: string;
}

/** A Query or Parse message with edits applied to its SQL text (bytes [start, end) of the message). */
export function withSqlEdits(message: Buffer, start: number, end: number, edits: readonly TextEdit[]): Buffer {
  const sql = message.subarray(start, end);
  const parts: Buffer[] = [message.subarray(0, start)];
  let at = 0;
  for (const edit of [...edits].sort((a, b) => a.start - b.start)) {
    parts.push(sql.subarray(at, edit.start), Buffer.from(edit.text, 'utf8'));
    at = edit.end;
  }
  parts.push(sql.subarray(at), message.subarray(end));
  const out = Buffer.concat(parts);
  out.writeInt32BE(out.length - 1, 1);
  return out;
}

/** A Query or Parse message with its SQL text replaced whole. */
export function withSqlText(message: Buffer, start: number, end: number, sql: Buffer): Buffer {
  return withSqlEdits(message, start, end, [{ start: 0, end: end - start, text: sql.toString('utf8') }]);
}
