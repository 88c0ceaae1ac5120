import { createHash } from 'node:crypto';
import { message } from '../protocol/build.js';
import { readCString } from '../protocol/decode.js';

/**
 * A client's named prepared statements in transaction pooling. The client's names are its own;
 * on the server each statement gets a name derived from the tenant and the Parse body, so any
 * backend pinned to that tenant can hold it once for every client that prepares the same text.
 * Tenants never share one: a tenant switch runs DISCARD ALL, which drops them all.
 */
export interface ServerStatement {
  readonly serverName: string;
  /** The Parse body after the statement name: SQL text and parameter types. */
  readonly body: Buffer;
}

export class ClientStatements {
  /** Null until the client prepares a named statement (an idle client, or one that never does, keeps no map). */
  private byName: Map<string, ServerStatement> | null = null;

  constructor(private readonly tenantId: string) {}

  /** Records a client Parse; returns the server-side name and the Parse body to prepare it with. */
  register(clientName: string, parseMessage: Buffer): ServerStatement {
    const [, bodyStart] = readCString(parseMessage, 5);
    const body = Buffer.from(parseMessage.subarray(bodyStart));
    const digest = createHash('sha256').update(this.tenantId).update('\0').update(body).digest('hex').slice(0, 40);
    const serverName = `pgfence_${digest}`;
    const entry = { serverName, body };
    (this.byName ??= new Map()).set(clientName, entry);
    return entry;
  }

  lookup(clientName: string): ServerStatement | undefined {
    return this.byName?.get(clientName);
  }

  forget(clientName: string): void {
    this.byName?.delete(clientName);
  }

  /** DEALLOCATE ALL or DISCARD ALL: the client has no statement left. */
  clear(): void {
    this.byName = null;
  }
}

const cstring = (s: string): Buffer => Buffer.from(`${s}\0`, 'utf8');

export function parseMessageFor(serverName: string, body: Buffer): Buffer {
  return message('P', Buffer.concat([cstring(serverName), body]));
}

export function closeStatementMessage(name: string): Buffer {
  return message('C', Buffer.concat([Buffer.from('S'), cstring(name)]));
}

/** The statement name a Bind refers to. */
export function bindStatementName(bind: Buffer): string {
  const [, afterPortal] = readCString(bind, 5);
  return readCString(bind, afterPortal)[0];
}

/** The same Bind, naming another statement. */
export function renameBind(bind: Buffer, statement: string): Buffer {
  const [portal, afterPortal] = readCString(bind, 5);
  const [, afterStatement] = readCString(bind, afterPortal);
  return message('B', Buffer.concat([cstring(portal), cstring(statement), bind.subarray(afterStatement)]));
}

/**
 * The same Bind with `prefix` put before the values of the given 1-based parameters (pg_notify
 * channels: the tenant's prefix). A channel is text, whose binary form is its bytes too; a NULL
 * stays NULL (pg_notify refuses it).
 */
export function prefixBindParameters(bind: Buffer, parameters: readonly number[], prefix: string): Buffer {
  const [, afterPortal] = readCString(bind, 5);
  const [, afterStatement] = readCString(bind, afterPortal);
  let at = afterStatement;
  const formats = bind.readInt16BE(at);
  at += 2 + 2 * formats;
  const count = bind.readUInt16BE(at);
  at += 2;
  const head = Buffer.from(prefix, 'utf8');
  const parts: Buffer[] = [bind.subarray(5, at)];
  for (let i = 1; i <= count; i++) {
    const length = bind.readInt32BE(at);
    const value = length < 0 ? null : bind.subarray(at + 4, at + 4 + length);
    at += 4 + Math.max(length, 0);
    if (value === null || !parameters.includes(i)) {
      parts.push(bind.subarray(at - 4 - Math.max(length, 0), at));
      continue;
    }
    const size = Buffer.allocUnsafe(4);
    size.writeInt32BE(head.length + value.length);
    parts.push(size, head, value);
  }
  parts.push(bind.subarray(at));
  return message('B', Buffer.concat(parts));
}

/** Target kind ('S' statement or 'P' portal) and name of a Describe or Close. */
export function describedTarget(message: Buffer): { kind: string; name: string } {
  return { kind: String.fromCharCode(message[5] as number), name: readCString(message, 6)[0] };
}

export function describeStatementMessage(name: string): Buffer {
  return message('D', Buffer.concat([Buffer.from('S'), cstring(name)]));
}
