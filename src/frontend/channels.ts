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

/** The rewritten SQL text, or the name of a channel that would be too long once mapped. */
export function rewriteChannelStatements(sql: Buffer, statements: readonly ChannelStatement[], tenant: string): Buffer | { tooLong: string } {
  const parts: Buffer[] = [];
  let at = 0;
  for (const st of statements) {
    const mapped = st.channel === null ? null : serverChannel(tenant, st.channel);
    if (mapped !== null && Buffer.byteLength(mapped) > NAMEDATALEN) return { tooLong: st.channel as string };
    let text: string;
    if (st.kind === 'listen') text = `LISTEN ${quoteIdent(mapped as string)}`;
    else if (st.kind === 'unlisten') text = mapped === null ? 'UNLISTEN *' : `UNLISTEN ${quoteIdent(mapped)}`;
    else text = `NOTIFY ${quoteIdent(mapped as string)}${st.payload === null ? '' : `, ${quoteLiteral(st.payload)}`}`;
    parts.push(sql.subarray(at, st.start), Buffer.from(` ${text}`, 'utf8'));
    at = st.end;
  }
  parts.push(sql.subarray(at));
  return Buffer.concat(parts);
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

/** A Query or Parse message with its SQL text (bytes [start, end) of the message) replaced. */
export function withSqlText(message: Buffer, start: number, end: number, sql: Buffer): Buffer {
  const out = Buffer.concat([message.subarray(0, start), sql, message.subarray(end)]);
  out.writeInt32BE(out.length - 1, 1);
  return out;
}
