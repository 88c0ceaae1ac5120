import { randomBytes } from 'node:crypto';
import net from 'node:net';
import { PassThrough } from 'node:stream';
import pg from 'pg';
import pino from 'pino';
import { afterEach, describe, expect, it, onTestFinished } from 'vitest';
import { mintToken } from '../../src/auth/index.js';
import { configSchema } from '../../src/config/schema.js';
import { type RunningPgfence, startPgfence } from '../../src/server.js';
import { createTestDatabase, getPgUrl, urlAs, withClient } from '../support/db.js';
import { closedPort } from '../support/helpers.js';
import { startTestProxy, type TestProxy } from '../support/proxy.js';

/**
 * /readyz against real outages, and Postgres's 53300 reaching the client. The shared Postgres is
 * never stopped: "down" is a closed port, an outage is a TCP forwarder in front of it that the
 * test cuts and restores, and "out of connection slots" is a role with a CONNECTION LIMIT (which
 * Postgres refuses with 53300, as it does at max_connections).
 */

const ADMIN = { enabled: true, port: 0, readyProbeCacheMs: 1 };

async function readyz(running: RunningPgfence): Promise<{ status: number; body: string }> {
  const res = await fetch(`http://127.0.0.1:${running.adminPort}/readyz`);
  return { status: res.status, body: await res.text() };
}

/** Forwards a local port to `target`; cut() refuses and drops every connection, restore() serves again on the same port. */
class Forwarder {
  private server: net.Server | null = null;
  private readonly sockets = new Set<net.Socket>();
  port = 0;

  constructor(private readonly target: { host: string; port: number }) {}

  async restore(): Promise<void> {
    const server = net.createServer((client) => {
      const upstream = net.connect(this.target);
      for (const s of [client, upstream]) {
        this.sockets.add(s);
        s.on('error', () => undefined);
        s.on('close', () => this.sockets.delete(s));
      }
      client.pipe(upstream).pipe(client);
      client.on('close', () => upstream.destroy());
      upstream.on('close', () => client.destroy());
    });
    await new Promise<void>((resolve) => server.listen(this.port, '127.0.0.1', resolve));
    this.port = (server.address() as net.AddressInfo).port;
    this.server = server;
  }

  async cut(): Promise<void> {
    const server = this.server;
    this.server = null;
    for (const s of this.sockets) s.destroy();
    if (server !== null) await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}

interface Fronted {
  running: RunningPgfence;
  connect(): Promise<pg.Client>;
}

/**
 * pgfence in front of a fresh database with tenant acme's schema, reached at the URL that
 * `backendUrl` makes of the database's superuser URL (another port, another role).
 */
async function frontDatabase(backendUrl: (url: string) => string, overrides: Record<string, unknown> = {}): Promise<Fronted> {
  const db = await createTestDatabase('pgfence');
  onTestFinished(() => db.drop());
  await withClient(db.url, (c) => c.query('CREATE SCHEMA tenant_acme'));
  const config = configSchema.parse({
    listen: { host: '127.0.0.1', port: 0, shutdownTimeoutMs: 2_000 },
    backend: { url: backendUrl(db.url) },
    jwt: { algorithms: ['HS256'], secret: randomBytes(32).toString('hex') },
    tenancy: { tenants: [{ id: 'acme' }] },
    pool: { size: 4 },
    admin: ADMIN,
    ...overrides,
  });
  const running = await startPgfence(config, pino({ level: 'silent' }), { processMetrics: false });
  onTestFinished(() => running.close());
  return {
    running,
    async connect() {
      const client = new pg.Client({ host: '127.0.0.1', port: running.port, user: 'acme', database: 'app', password: await mintToken(config.jwt, { tenantId: 'acme', ttlSeconds: 60 }) });
      client.on('error', () => undefined);
      await client.connect();
      return client;
    },
  };
}

let proxies: TestProxy[] = [];
afterEach(async () => {
  await Promise.all(proxies.map((p) => p.close()));
  proxies = [];
});

async function proxyWith(overrides: Parameters<typeof startTestProxy>[0], logTo?: NodeJS.WritableStream): Promise<TestProxy> {
  const proxy = await startTestProxy(overrides, { logTo });
  proxies.push(proxy);
  return proxy;
}

describe('/readyz', () => {
  it('is 503 with the reason when the backend is down from the start, and clients get 08006 (the failure logged with its stack)', async () => {
    const port = await closedPort();
    let log = '';
    const sink = new PassThrough().on('data', (chunk: Buffer) => (log += chunk.toString()));
    const proxy = await proxyWith({ backend: { url: `postgres://postgres:x@127.0.0.1:${port}/postgres`, connectTimeoutMs: 2_000 }, admin: ADMIN }, sink);
    const { status, body } = await readyz(proxy.running);
    expect(status).toBe(503);
    expect(body).toBe(`not ready: backend 127.0.0.1:${port}/postgres cannot be reached (connect ECONNREFUSED 127.0.0.1:${port})\n`);
    const refused = await proxy.connect('acme').catch((e: pg.DatabaseError) => e);
    expect(refused).toMatchObject({ code: '08006' });
    // Errors are logged as objects under `err`: type, message and stack, not a bare message string.
    const failed = log.split('\n').filter((l) => l.includes('"backend connection failed"')).map((l) => JSON.parse(l) as { err: { type: string; message: string; stack: string } });
    expect(failed.length).toBeGreaterThan(0);
    expect(failed[0]!.err).toMatchObject({ type: 'Error', message: expect.stringContaining('ECONNREFUSED') });
    expect(failed[0]!.err.stack).toMatch(/\n\s+at /);
  });

  it('follows an outage of the backend: 200, 503 while it is cut off, 200 again once it is back', async () => {
    const server = new URL(getPgUrl());
    const forwarder = new Forwarder({ host: server.hostname, port: Number(server.port) });
    await forwarder.restore();
    onTestFinished(() => forwarder.cut());
    const viaForwarder = (url: string): string => {
      const u = new URL(url);
      u.port = String(forwarder.port);
      return u.toString();
    };
    const fronted = await frontDatabase(viaForwarder);

    const up = await readyz(fronted.running);
    expect(up.status).toBe(200);
    expect(up.body).toMatch(new RegExp(`^ready: backend 127\\.0\\.0\\.1:${forwarder.port}/pgfence_\\w+ accepts connections\n$`));
    const client = await fronted.connect();
    await client.query('SELECT 1');

    await forwarder.cut();
    const down = await readyz(fronted.running);
    expect(down.status).toBe(503);
    expect(down.body).toContain(`cannot be reached (connect ECONNREFUSED 127.0.0.1:${forwarder.port})`);

    await forwarder.restore();
    expect((await readyz(fronted.running)).status).toBe(200);
    const again = await fronted.connect();
    expect((await again.query('SELECT 1 AS one')).rows[0].one).toBe(1);
    await again.end();
  });

  it('is 503 "draining" while pgfence shuts down, before the admin endpoint closes', async () => {
    const proxy = await proxyWith({ admin: ADMIN, listen: { host: '127.0.0.1', port: 0, shutdownTimeoutMs: 30_000 } });
    const client = await proxy.connect('acme');
    client.on('error', () => undefined);
    await client.query('BEGIN');
    const closing = proxy.running.close();
    const { status, body } = await readyz(proxy.running);
    expect(status).toBe(503);
    expect(body).toBe('not ready: draining (pgfence is shutting down)\n');
    await client.query('COMMIT');
    await closing;
    await expect(fetch(`http://127.0.0.1:${proxy.running.adminPort}/readyz`)).rejects.toThrow();
  });
});

describe('a backend out of connection slots', () => {
  it('reaches the client as 53300 with the words of Postgres, and /readyz stays ready while the pool holds a connection', async () => {
    const role = `pgfence_limited_${randomBytes(4).toString('hex')}`;
    const password = randomBytes(12).toString('hex');
    await withClient(getPgUrl(), (c) => c.query(`CREATE ROLE ${role} LOGIN PASSWORD '${password}' CONNECTION LIMIT 1`));
    onTestFinished(async () => {
      await withClient(getPgUrl(), (c) => c.query(`DROP ROLE IF EXISTS ${role}`));
    });
    const { running, connect } = await frontDatabase((url) => urlAs(url, { user: role, password }));

    const first = await connect(); // session pooling: holds the role's one connection
    const refused = await connect().catch((e: pg.DatabaseError) => e);
    expect(refused).toBeInstanceOf(pg.DatabaseError);
    expect(refused).toMatchObject({ code: '53300', severity: 'FATAL', message: `too many connections for role "${role}"` });

    const { status, body } = await readyz(running);
    expect(status).toBe(200);
    expect(body).toContain(`ready: serving from 1 pooled server connection(s); backend 127.0.0.1:`);
    expect(body).toContain(`(53300: too many connections for role "${role}")`);
    expect((await first.query('SELECT 1 AS one')).rows[0].one).toBe(1);
    await first.end();
  });
});
