/**
 * The floor of a Node server's cost per connection: it speaks just enough of the Postgres protocol
 * for pgbench -C -S and for idle logins, with no backend, no token check, no pool and no fence.
 * It asks for a cleartext password as pgfence does, greets with canned ParameterStatus messages,
 * and answers every Query, and every Execute of the extended protocol, with one canned row (three
 * columns for pgbench's start-up query about pgbench_accounts' partitions, one otherwise). The
 * replies are built once at start-up with pgfence's own message builders. The benchmark's "Node
 * canned server" rows run it as its own process, so pgfence's CPU and memory per connection can be
 * read against what Node alone costs for the same exchange. Usage: canned-server LISTEN_PORT.
 */
import net from 'node:net';
import { commandComplete, dataRow, rowDescription } from '../src/admin/rows.js';
import { AUTHENTICATION_CLEARTEXT, AUTHENTICATION_OK, backendKeyData, ENCRYPTION_NOT_SUPPORTED, message, parameterStatus, readyForQuery } from '../src/protocol/build.js';

const listenPort = process.argv[2];
if (listenPort === undefined) {
  console.error('usage: canned-server LISTEN_PORT');
  process.exit(2);
}

const SSL_REQUEST = 80877103;

const PARAMETERS: ReadonlyArray<readonly [string, string]> = [
  ['application_name', ''],
  ['client_encoding', 'UTF8'],
  ['DateStyle', 'ISO, MDY'],
  ['integer_datetimes', 'on'],
  ['IntervalStyle', 'postgres'],
  ['is_superuser', 'off'],
  ['server_encoding', 'UTF8'],
  ['server_version', '15.0'],
  ['session_authorization', 'bench'],
  ['standard_conforming_strings', 'on'],
  ['TimeZone', 'UTC'],
];
const READY = readyForQuery('I');
const GREETING = Buffer.concat([AUTHENTICATION_OK, ...PARAMETERS.map(([name, value]) => parameterStatus(name, value)), backendKeyData(1, 2), READY]);

/** RowDescription of int4 columns c0, c1, … in text format. */
const int4Columns = (count: number): Buffer => rowDescription(Array.from({ length: count }, (_, i) => ({ name: `c${i}`, type: 'int4' as const })));
/** DataRow and CommandComplete of one row of text values (null where null). */
const oneRow = (values: ReadonlyArray<string | null>): Buffer => Buffer.concat([dataRow(values), commandComplete('SELECT 1')]);

/** pgbench's GetTableInfo: the schema's position in search_path, no partitioning, no partitions. */
const PARTITION_INFO = Buffer.concat([int4Columns(3), oneRow(['1', null, '0']), READY]);
const QUERY_RESULT = Buffer.concat([int4Columns(1), oneRow(['1']), READY]);
/** Answers to the extended protocol's Parse, Bind, Describe (a portal), Execute, Close and Sync. */
const EXTENDED: ReadonlyMap<number, Buffer> = new Map([
  [0x50, message('1', Buffer.alloc(0))],
  [0x42, message('2', Buffer.alloc(0))],
  [0x44, int4Columns(1)],
  [0x45, oneRow(['1'])],
  [0x43, message('3', Buffer.alloc(0))],
  [0x53, READY],
]);

net
  .createServer((socket) => {
    socket.setNoDelay(true);
    let started = false;
    let pending: Buffer | null = null;
    socket.on('data', (chunk: Buffer) => {
      let buf = pending === null ? chunk : Buffer.concat([pending, chunk]);
      pending = null;
      const replies: Buffer[] = [];
      let terminated = false;
      for (;;) {
        if (!started) {
          if (buf.length < 8 || buf.length < buf.readInt32BE(0)) break;
          const code = buf.readInt32BE(4);
          buf = buf.subarray(buf.readInt32BE(0));
          if (code === SSL_REQUEST) replies.push(ENCRYPTION_NOT_SUPPORTED);
          else {
            started = true;
            replies.push(AUTHENTICATION_CLEARTEXT);
          }
          continue;
        }
        if (buf.length < 5 || buf.length < 1 + buf.readInt32BE(1)) break;
        const type = buf[0];
        const end = 1 + buf.readInt32BE(1);
        const body = buf.subarray(5, end);
        buf = buf.subarray(end);
        if (type === 0x70) replies.push(GREETING); // PasswordMessage
        else if (type === 0x51) replies.push(body.includes('partstrat') ? PARTITION_INFO : QUERY_RESULT); // Query
        else if (type === 0x58) {
          terminated = true; // Terminate
          break;
        }
        else {
          const reply = type === undefined ? undefined : EXTENDED.get(type);
          if (reply !== undefined) replies.push(reply);
        }
      }
      // One write per chunk read, as a proxy answers a batch.
      if (replies.length > 0) socket.write(replies.length === 1 ? (replies[0] as Buffer) : Buffer.concat(replies));
      if (terminated) socket.end();
      else if (buf.length > 0) pending = buf;
    });
    socket.on('error', () => socket.destroy());
  })
  .listen(Number(listenPort), '127.0.0.1', () => console.log('listening'));
