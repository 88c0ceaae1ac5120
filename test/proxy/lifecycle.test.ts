import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { describe, expect, it, onTestFinished } from 'vitest';
import { mintToken } from '../../src/auth/index.js';
import { configSchema } from '../../src/config/schema.js';
import { pollUntil } from '../support/helpers.js';
import { startTestProxy } from '../support/proxy.js';
import { ServeProcess } from '../support/serve-process.js';

/** Resolves when a client's connection ends (pg emits 'error' first for a FATAL; that is expected here). */
function ended(client: pg.Client): Promise<void> {
  return new Promise((resolve) => client.once('end', () => resolve()));
}

describe('reload', () => {
  it('suspends a tenant for new connections without dropping its existing client, and reports what cannot change live', async () => {
    const proxy = await startTestProxy();
    try {
      const existing = await proxy.connect('globex');
      const next = configSchema.parse({
        ...proxy.config,
        listen: { ...proxy.config.listen, port: 1 },
        tenancy: { ...proxy.config.tenancy, tenants: [{ id: 'acme' }, { id: 'globex', status: 'suspended' }] },
        pool: { ...proxy.config.pool, size: 7 },
      });
      const result = await proxy.running.reload(next);
      expect(result.applied).toEqual(expect.arrayContaining(['pool.size', 'tenancy.tenants']));
      expect(result.notApplied).toEqual(['listen.port']);
      const refused = await proxy.connect('globex').catch((e: pg.DatabaseError) => e);
      expect((refused as pg.DatabaseError).message).toContain('suspended');
      expect((await existing.query('SELECT count(*)::int AS n FROM items')).rows[0].n).toBe(2);
      await existing.end();
    } finally {
      await proxy.close();
    }
  });

  it('takes a new JWT key: old tokens stop working, new ones work', async () => {
    const proxy = await startTestProxy();
    try {
      const oldToken = await proxy.token('acme');
      const next = configSchema.parse({ ...proxy.config, jwt: { ...proxy.config.jwt, secret: 'n'.repeat(48) } });
      await proxy.running.reload(next);
      const refused = await proxy.connect('acme', { password: oldToken }).catch((e: pg.DatabaseError) => e);
      expect((refused as pg.DatabaseError).code).toBe('28P01');
      const fresh = await mintToken(next.jwt, { tenantId: 'acme', ttlSeconds: 60 });
      const client = await proxy.connect('acme', { password: fresh });
      await client.end();
    } finally {
      await proxy.close();
    }
  });
});

describe('shutdown and admin actions', () => {
  it('drains: a transaction in flight finishes, idle clients are told, then everything closes', async () => {
    const proxy = await startTestProxy({ listen: { host: '127.0.0.1', port: 0, shutdownTimeoutMs: 5_000 } });
    const busy = await proxy.connect('acme');
    const idle = await proxy.connect('globex');
    const idleEnded = ended(idle);
    await busy.query('BEGIN');
    await busy.query("INSERT INTO items (note) VALUES ('in flight')");
    const closing = proxy.running.close();
    await idleEnded;
    // The open transaction still works and commits.
    await busy.query("INSERT INTO items (note) VALUES ('still in flight')");
    await busy.query('COMMIT');
    await closing;
    const r = await proxy.direct("SELECT count(*)::int AS n FROM tenant_acme.items WHERE note LIKE '%in flight'");
    expect(r.rows[0]?.n).toBe(2);
    await busy.end().catch(() => undefined);
    await proxy.close();
  });

  it('finishes even when a client has stopped reading', async () => {
    const proxy = await startTestProxy({ listen: { host: '127.0.0.1', port: 0, shutdownTimeoutMs: 1_000 } });
    const stalled = await proxy.connect('acme');
    const pid = (await stalled.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]?.pid;
    // The client reads nothing more while 64 MB come its way: socket buffers fill, pgfence pauses the backend.
    (stalled as unknown as { connection: { stream: { pause(): void } } }).connection.stream.pause();
    void stalled.query("SELECT repeat('x', 64 * 1024 * 1024)").catch(() => undefined);
    // Close only once that has happened: the backend is blocked writing to pgfence.
    await pollUntil('the backend blocked writing its result', async () => {
      const r = await proxy.direct<{ n: number }>("SELECT count(*)::int AS n FROM pg_stat_activity WHERE pid = $1 AND wait_event = 'ClientWrite'", [pid]);
      return r.rows[0]?.n === 1 ? true : undefined;
    });
    const started = Date.now();
    await proxy.running.close();
    expect(Date.now() - started).toBeLessThan(15_000);
    await stalled.end().catch(() => undefined);
    await proxy.close();
  });

  it('kills the sessions of one tenant only', async () => {
    const proxy = await startTestProxy();
    try {
      const a = await proxy.connect('acme');
      const b = await proxy.connect('acme');
      const c = await proxy.connect('globex');
      const both = Promise.all([ended(a), ended(b)]);
      expect(proxy.running.killTenant('acme')).toBe(2);
      await both;
      expect((await c.query('SELECT 1 AS one')).rows[0].one).toBe(1);
      await c.end();
    } finally {
      await proxy.close();
    }
  });

  it('requireTls refuses plaintext even from loopback', async () => {
    const { execFile } = await import('node:child_process');
    const dir = await mkdtemp(path.join(os.tmpdir(), 'pgfence-requiretls-'));
    try {
      await new Promise<void>((resolve, reject) =>
        execFile(
          'openssl',
          ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '1', '-subj', '/CN=localhost', '-keyout', path.join(dir, 'k.pem'), '-out', path.join(dir, 'c.pem')],
          (error) => (error ? reject(error) : resolve()),
        ),
      );
      const proxy = await startTestProxy({
        listen: { host: '127.0.0.1', port: 0, requireTls: true, tls: { cert: path.join(dir, 'c.pem'), key: path.join(dir, 'k.pem') } },
      });
      try {
        const plain = await proxy.connect('acme').catch((e: pg.DatabaseError) => e);
        expect((plain as pg.DatabaseError).code).toBe('28000');
        const secure = await proxy.connect('acme', { ssl: { rejectUnauthorized: false } });
        await secure.end();
      } finally {
        await proxy.close();
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('the pgfence command', () => {
  it('serves from a config file, reloads on SIGHUP, and exits 0 on SIGTERM', async () => {
    const proxy = await startTestProxy();
    const yaml = (status: string): string => `
listen: { host: 127.0.0.1, port: 0 }
backend: { url: "${proxy.directUrl}" }
jwt: { secret: "\${TEST_JWT_SECRET}", issuer: pgfence-test }
tenancy: { tenants: [{ id: acme, status: ${status} }] }
log: { level: info }
`;
    const serve = await ServeProcess.start(yaml('active'), { TEST_JWT_SECRET: proxy.config.jwt.secret as string });
    // Also when the test times out waiting for its output (then the finally below does not run).
    onTestFinished(() => void serve.child.kill('SIGKILL'));
    try {
      const port = (await serve.logged((r) => r.msg === 'pgfence listening'))['port'] as number;
      const connect = async (): Promise<pg.Client> => {
        const c = new pg.Client({ host: '127.0.0.1', port, user: 'acme', database: 'app', password: await proxy.token('acme') });
        c.on('error', () => undefined);
        await c.connect();
        return c;
      };
      const first = await connect();
      await writeFile(serve.file, yaml('suspended'));
      serve.child.kill('SIGHUP');
      await serve.logged((r) => r.msg === 'configuration reloaded');
      const refused = await connect().catch((e: pg.DatabaseError) => e);
      expect((refused as pg.DatabaseError).message).toContain('suspended');
      expect((await first.query('SELECT 1 AS one')).rows[0].one).toBe(1);
      await first.end();
      serve.child.kill('SIGTERM');
      expect(await serve.exited).toBe(0);
      expect(serve.output).not.toContain(proxy.config.jwt.secret as string);
    } finally {
      await serve.stop();
      await proxy.close();
    }
  });
});
