import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmod, chown, mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mintToken } from '../../src/auth/index.js';
import { configSchema } from '../../src/config/schema.js';
import { type EmbeddedPostgresHandle, startEmbeddedPostgres } from '../../src/embedded/postgres.js';
import { startPgfence } from '../../src/server.js';
import { hasCommand } from '../support/helpers.js';
import { startTestProxy } from '../support/proxy.js';

const run = promisify(execFile);
const haveOpenssl = await hasCommand('openssl');

let dir: string;
let server: EmbeddedPostgresHandle;
let caPem: string;

/** A Postgres of its own with ssl = on and a certificate signed by a throwaway CA. */
beforeAll(async () => {
  if (!haveOpenssl) return;
  dir = await mkdtemp(path.join(os.tmpdir(), 'pgfence-backend-tls-'));
  const f = (name: string): string => path.join(dir, name);
  await run('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '1', '-subj', '/CN=pgfence test CA', '-keyout', f('ca.key'), '-out', f('ca.crt')]);
  await run('openssl', ['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-subj', '/CN=localhost', '-keyout', f('server.key'), '-out', f('server.csr')]);
  await run('sh', ['-c', `printf 'subjectAltName=DNS:localhost' > ${f('ext.cnf')} && openssl x509 -req -in ${f('server.csr')} -CA ${f('ca.crt')} -CAkey ${f('ca.key')} -CAcreateserial -days 1 -extfile ${f('ext.cnf')} -out ${f('server.crt')}`]);
  caPem = await readFile(f('ca.crt'), 'utf8');
  server = await startEmbeddedPostgres({ dataDir: f('data') });
  // Postgres insists on a private key only its OS user can read.
  await chmod(f('server.key'), 0o600);
  if (process.getuid?.() === 0) {
    const uid = Number((await run('id', ['-u', 'postgres'])).stdout.trim());
    for (const file of ['server.key', 'server.crt']) await chown(f(file), uid, 0);
  }
  const admin = new pg.Client({ connectionString: server.url });
  await admin.connect();
  try {
    await admin.query(`ALTER SYSTEM SET ssl_cert_file = '${f('server.crt')}'`);
    await admin.query(`ALTER SYSTEM SET ssl_key_file = '${f('server.key')}'`);
    await admin.query('ALTER SYSTEM SET ssl = on');
    await admin.query('SELECT pg_reload_conf()');
    await admin.query('CREATE SCHEMA tenant_acme; CREATE TABLE tenant_acme.items (id int); INSERT INTO tenant_acme.items VALUES (1)');
  } finally {
    await admin.end();
  }
}, 120_000);

afterAll(async () => {
  await server?.stop();
  if (dir !== undefined) await rm(dir, { recursive: true, force: true });
});

async function viaPgfence(backend: Record<string, unknown>): Promise<{ ssl: boolean; n: number }> {
  const config = configSchema.parse({
    listen: { host: '127.0.0.1', port: 0 },
    backend,
    jwt: { secret: randomBytes(32).toString('hex') },
    tenancy: { tenants: [{ id: 'acme' }] },
  });
  const running = await startPgfence(config, pino({ level: process.env['PGFENCE_TEST_LOG'] ?? 'silent' }), { processMetrics: false });
  try {
    const client = new pg.Client({
      host: '127.0.0.1',
      port: running.port,
      user: 'acme',
      database: 'app',
      password: await mintToken(config.jwt, { tenantId: 'acme', ttlSeconds: 60 }),
    });
    await client.connect();
    try {
      const r = await client.query('SELECT (SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()) AS ssl, (SELECT count(*)::int FROM items) AS n');
      return r.rows[0] as { ssl: boolean; n: number };
    } finally {
      await client.end();
    }
  } finally {
    await running.close();
  }
}

describe.skipIf(!haveOpenssl)('TLS between pgfence and the backend', () => {
  const target = (): Record<string, unknown> => ({ host: 'localhost', port: server.port, user: 'postgres', password: server.password, database: 'postgres' });

  it('verify-full with the CA: encrypted and verified', async () => {
    expect(await viaPgfence({ ...target(), sslmode: 'verify-full', sslRootCert: caPem })).toEqual({ ssl: true, n: 1 });
  });

  it('require: encrypted', async () => {
    expect(await viaPgfence({ ...target(), sslmode: 'require' })).toEqual({ ssl: true, n: 1 });
  });

  it('verify-full without the CA refuses the server, and the client hears 08006', async () => {
    const error = await viaPgfence({ ...target(), sslmode: 'verify-full' }).catch((e: pg.DatabaseError) => e);
    expect((error as pg.DatabaseError).code).toBe('08006');
  });

  it('disable stays plaintext', async () => {
    expect(await viaPgfence({ ...target(), sslmode: 'disable' })).toEqual({ ssl: false, n: 1 });
  });

  it('require against a server without TLS fails instead of falling back', async () => {
    const plain = await startTestProxy();
    const url = new URL(plain.directUrl);
    try {
      const error = await viaPgfence({ host: url.hostname, port: Number(url.port), user: 'postgres', password: decodeURIComponent(url.password), database: url.pathname.slice(1), sslmode: 'require' }).catch(
        (e: pg.DatabaseError) => e,
      );
      expect((error as pg.DatabaseError).code).toBe('08006');
    } finally {
      await plain.close();
    }
  });
});
