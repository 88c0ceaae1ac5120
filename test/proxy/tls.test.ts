import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hasCommand } from '../support/helpers.js';
import { startTestProxy, type TestProxy } from '../support/proxy.js';
import { errorOfBody, splitMessages, WireClient } from '../support/wire.js';

const run = promisify(execFile);
const haveOpenssl = await hasCommand('openssl');
const havePsql = await hasCommand('psql');

let dir: string;
let cert: string;
let proxy: TestProxy;

beforeAll(async () => {
  if (!haveOpenssl) return;
  dir = await mkdtemp(path.join(os.tmpdir(), 'pgfence-tls-'));
  await run('openssl', [
    'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '1',
    '-subj', '/CN=localhost', '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1',
    '-keyout', path.join(dir, 'server.key'), '-out', path.join(dir, 'server.crt'),
  ]);
  cert = await readFile(path.join(dir, 'server.crt'), 'utf8');
  proxy = await startTestProxy({
    listen: { host: '127.0.0.1', port: 0, tls: { cert: path.join(dir, 'server.crt'), key: path.join(dir, 'server.key') } },
  });
});
afterAll(async () => {
  await proxy?.close();
  if (dir !== undefined) await rm(dir, { recursive: true, force: true });
});

describe.skipIf(!haveOpenssl)('TLS between clients and pgfence', () => {
  it('node-postgres with ssl verifying the certificate (verify-full)', async () => {
    const client = new pg.Client({ ...(await proxy.clientConfig('acme')), host: 'localhost', ssl: { ca: cert, servername: 'localhost' } });
    await client.connect();
    try {
      const r = await client.query('SELECT count(*)::int AS n FROM items');
      expect(r.rows[0].n).toBe(2);
      const socket = (client as unknown as { connection: { stream: { encrypted?: boolean } } }).connection.stream;
      expect(socket.encrypted).toBe(true);
    } finally {
      await client.end();
    }
  });

  it('refuses a certificate the client does not trust', async () => {
    const client = new pg.Client({ ...(await proxy.clientConfig('acme')), ssl: { rejectUnauthorized: true } });
    client.on('error', () => undefined);
    await expect(client.connect()).rejects.toThrow(/self[- ]signed|certificate/i);
  });

  it('plaintext still works from loopback', async () => {
    const client = await proxy.connect('acme');
    expect((await client.query('SELECT 1 AS one')).rows[0].one).toBe(1);
    await client.end();
  });

  it.skipIf(!havePsql)('psql with sslmode=verify-full', async () => {
    const env = {
      ...process.env,
      PGPASSWORD: await proxy.token('globex'),
      PGSSLMODE: 'verify-full',
      PGSSLROOTCERT: path.join(dir, 'server.crt'),
    };
    const { stdout } = await run(
      'psql',
      ['-X', '-A', '-t', '-h', 'localhost', '-p', String(proxy.port), '-U', 'globex-dba', '-d', 'app', '-c', 'SELECT count(*) FROM items'],
      { env },
    );
    // verify-full cannot succeed without TLS and a certificate matching the host name.
    expect(stdout.trim()).toBe('2');
  });

  it('refuses bytes smuggled after SSLRequest before the handshake', async () => {
    const wire = await WireClient.connect(proxy.port);
    const ssl = Buffer.alloc(8);
    ssl.writeInt32BE(8, 0);
    ssl.writeInt32BE(80877103, 4);
    const startup = Buffer.from('0000000800030000', 'hex');
    wire.write(Buffer.concat([ssl, startup]));
    const received = await wire.untilClosed();
    const error = splitMessages(received).find((m) => m.type === 'E');
    expect(error).toBeDefined();
    expect(errorOfBody((error as { body: Buffer }).body).code).toBe('08P01');
  });
});
